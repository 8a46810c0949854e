"""Read paths for adverse events, their follow-ups and reviews, limited by registry.selectors."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from core.dates import today
from events.models import AdverseEvent, FollowUpReport, MedicalReview, ReferenceSafetyInformation
from registry import selectors as registry_selectors
from registry.selectors import limit_to_user_clinics

# The attribute with_reviews() fills: the event's reviews, newest first.
REVIEWS_ATTR = "reviews_newest_first"


def adverse_events_for_user(user) -> QuerySet[AdverseEvent]:
    """Return the adverse events ``user`` may see, retracted ones included (for audit)."""
    return limit_to_user_clinics(
        AdverseEvent.objects.select_related("procedure__clinic", "procedure__patient"),
        user,
        "procedure__clinic_id",
    )


def follow_ups_for_user(user) -> QuerySet[FollowUpReport]:
    """Return the follow-up reports of the events ``user`` may see, by event and number."""
    return limit_to_user_clinics(
        FollowUpReport.objects.select_related("event__procedure__clinic", "created_by").order_by("event_id", "number"),
        user,
        "event__procedure__clinic_id",
    )


def reviews_for_user(user) -> QuerySet[MedicalReview]:
    """Return the medical reviews of the events ``user`` may see, newest first per event."""
    return limit_to_user_clinics(
        MedicalReview.objects.select_related("event__procedure__clinic", "reviewer", "expectedness_basis"),
        user,
        "event__procedure__clinic_id",
    )


def may_record_review(user) -> bool:
    """Return True when ``user`` may record a medical review: a safety reviewer or a registry administrator."""
    return registry_selectors.is_safety_reviewer(user) or registry_selectors.is_registry_admin(user)


def with_reviews(events: QuerySet[AdverseEvent]) -> QuerySet[AdverseEvent]:
    """Return ``events`` with their reviews prefetched, newest first (latest_review() then spends no query)."""
    newest_first = MedicalReview.objects.select_related("reviewer").order_by("-reviewed_at", "-id")
    return events.prefetch_related(Prefetch("reviews", queryset=newest_first, to_attr=REVIEWS_ATTR))


def latest_review(event: AdverseEvent) -> MedicalReview | None:
    """Return the event's current medical review (the latest), or None when it has not been reviewed."""
    prefetched = getattr(event, REVIEWS_ATTR, None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    if event.pk is None:
        return None
    return MedicalReview.objects.select_related("reviewer").filter(event=event).order_by("-reviewed_at", "-id").first()


def active_reference_safety_information(on=None) -> QuerySet[ReferenceSafetyInformation]:
    """Return the reference safety information entries in force on ``on`` (today by default)."""
    on = on or today()
    return ReferenceSafetyInformation.objects.filter(added_on__lte=on).filter(
        Q(retired_on__isnull=True) | Q(retired_on__gt=on)
    )


def expected_by_rsi(
    event: AdverseEvent, entries: list[ReferenceSafetyInformation] | None = None
) -> ReferenceSafetyInformation | None:
    """Return the active reference safety information entry that makes ``event`` expected, or None.

    An entry matches when its cell type is blank or the procedure's, and its MedDRA preferred term
    is the event's when it names one (else its category is the event's). The most specific entry
    wins: one naming a preferred term over one naming a category, one naming the cell type over
    one for every cell type. ``entries``: the active entries, loaded once by a caller judging many
    events (the list is short: it is matched here, in one place, not in SQL).
    """
    if entries is None:
        entries = list(active_reference_safety_information())
    cell_type = event.procedure.cell_type
    matching = [
        entry
        for entry in entries
        if entry.cell_type in ("", cell_type)
        and (
            entry.meddra_pt_code == event.meddra_pt_code
            if entry.meddra_pt_code
            else entry.category == event.category
        )
    ]
    return min(
        matching,
        key=lambda entry: (0 if entry.meddra_pt_code else 1, 1 if entry.cell_type == "" else 0, entry.pk),
        default=None,
    )
