"""What events announces to the floors above it (which it must not import).

``case_changed`` is sent by events.services inside the transaction that changed a case: the
initial report (created=True), an edit, a follow-up report or a medical review. Receivers (the
safety app's expedited-report clocks) run in that transaction, so a due report appears with the
change or not at all; anything leaving the database (email) they defer with transaction.on_commit.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: event (AdverseEvent, as saved), actor (user or None), reason: "created" | "changed" |
# "follow_up" | "review" | "retracted" | "restored", follow_up (FollowUpReport or None),
# review (MedicalReview or None).
case_changed = Signal()
