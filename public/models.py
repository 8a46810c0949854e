"""Publications: the record that a succeeded incidence run is public (DESIGN 2b "Publication").

A publication is made once (who, when, which run, a note) and never edited; it can be withdrawn
once, with a reason, and is never deleted. The database enforces all three with triggers, so no
code path (a shell, a migration, a bug) can rewrite what the public was shown.
"""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import CleanConstraintsMixin
from core.text import validate_safe_free_text
from reports.models import IncidenceRun

# The columns a publication is made with; an UPDATE may never change them.
_MADE_WITH = ("run_id", "published_by_id", "published_at", "note")
_WITHDRAWAL = ("withdrawn_at", "withdrawn_by_id", "withdrawal_reason")

_IMMUTABLE_FUNC = """
IF {made_changed} THEN
    RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
        MESSAGE = 'A publication cannot be edited: withdraw it and publish again.';
END IF;
IF OLD.withdrawn_at IS NOT NULL AND ({withdrawal_changed}) THEN
    RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
        MESSAGE = 'A publication is withdrawn once; its withdrawal cannot be changed.';
END IF;
RETURN NEW;
""".format(
    made_changed=" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _MADE_WITH),
    withdrawal_changed=" OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _WITHDRAWAL),
)

_RUN_SUCCEEDED_FUNC = """
IF NOT EXISTS (SELECT 1 FROM reports_incidencerun r WHERE r.id = NEW.run_id AND r.status = 'succeeded') THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation',
        MESSAGE = 'Only a succeeded incidence run can be published.';
END IF;
RETURN NEW;
"""


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class Publication(CleanConstraintsMixin):
    """A succeeded incidence run made public: immutable once made, withdrawable once, never deleted."""

    run = models.ForeignKey(IncidenceRun, on_delete=models.PROTECT, related_name="+")
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    published_at = models.DateTimeField(default=timezone.now, editable=False)
    note = models.TextField(
        blank=True,
        max_length=2000,
        validators=[validate_safe_free_text],
        help_text="Shown on the public page: what this publication is (e.g. 'Annual comparison 2024').",
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True, editable=False)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+"
    )
    withdrawal_reason = models.TextField(blank=True, max_length=2000, validators=[validate_safe_free_text])

    class Meta:
        ordering = ["-published_at", "-id"]
        indexes = [
            # The public index lists the publications not withdrawn, newest first (selectors.publications_current).
            models.Index(
                fields=["-published_at"], condition=Q(withdrawn_at__isnull=True), name="publication_current_idx"
            ),
        ]
        constraints = [
            # A withdrawal names when, who and why, or nothing at all.
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True, withdrawn_by__isnull=True, withdrawal_reason="")
                | (Q(withdrawn_at__isnull=False, withdrawn_by__isnull=False) & ~Q(withdrawal_reason="")),
                name="publication_withdrawal_complete",
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="publication_never_deleted", operation=pgtrigger.Delete),
            pgtrigger.Trigger(
                name="publication_immutable",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                func=_IMMUTABLE_FUNC,
            ),
            pgtrigger.Trigger(
                name="publication_run_succeeded",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func=_RUN_SUCCEEDED_FUNC,
            ),
        ]

    def __str__(self) -> str:
        state = " (withdrawn)" if self.withdrawn_at else ""
        return f"Publication #{self.pk} of run #{self.run_id}{state}"

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None
