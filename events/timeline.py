"""Return a case's life as the people reading it need it: the initial report, its follow-ups, its reviews.

Shared by the admin's event page and anything else that prints a case (a form, a letter): values come
with their display labels ("Recovered / resolved", not "recovered"), dates in ISO 8601.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pghistory.models

from events.choices import FOLLOW_UP_FIELDS, SERIOUS_CRITERIA
from events.models import AdverseEvent, FollowUpReport, MedicalReview

# The event's fields an initial report shows, besides the ones a follow-up may change.
INITIAL_FIELDS = ("category", "term", "onset_on", *FOLLOW_UP_FIELDS)
NOT_SET = "not set"


def field_label(name: str) -> str:
    """Return the event field's label as the admin shows it ("causality to the procedure")."""
    return str(AdverseEvent._meta.get_field(name).verbose_name)


def display_value(name: str, value) -> str:
    """Return an event field's value (as stored, or as follow_up_value() spelt it) as a reader wants it."""
    if value is None or value == "":
        return NOT_SET
    model_field = AdverseEvent._meta.get_field(name)
    if model_field.get_internal_type() == "BooleanField":
        return "yes" if value in (True, "true", "True") else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    labels = {str(code): str(label) for code, label in model_field.flatchoices}
    return labels.get(str(value), str(value))


@dataclass
class Change:
    field: str
    label: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.label}: {self.old} → {self.new}"


def follow_up_changes(report: FollowUpReport) -> list[Change]:
    """Return the report's changes in the order of events.choices.FOLLOW_UP_FIELDS, with display labels."""
    order = {name: index for index, name in enumerate(FOLLOW_UP_FIELDS)}
    return [
        Change(name, field_label(name), display_value(name, old), display_value(name, new))
        for name, (old, new) in sorted(report.changes.items(), key=lambda item: order.get(item[0], len(order)))
    ]


def initial_values(event: AdverseEvent, follow_ups: list[FollowUpReport]) -> dict[str, object]:
    """Return the event's values as first reported: its audit trail's first row, else its values now with
    the follow-ups' changes undone (newest first)."""
    first = pghistory.models.Events.objects.tracks(event).filter(pgh_label="insert").order_by("pgh_id").first()
    if first is not None:
        return {name: first.pgh_data.get(name) for name in INITIAL_FIELDS}
    values = {name: getattr(event, name) for name in INITIAL_FIELDS}
    for report in sorted(follow_ups, key=lambda r: r.number, reverse=True):
        for name, (old, _new) in report.changes.items():
            values[name] = old
    return values


@dataclass
class Assessment:
    """One line of a review beside the site's assessment: agreement is said in words, not only in colour."""

    label: str
    site: str
    reviewer: str

    @property
    def agrees(self) -> bool:
        return self.site == self.reviewer

    @property
    def verdict(self) -> str:
        return "Agrees with the site" if self.agrees else "Differs from the site"


def _seriousness(row) -> str:
    if not row.serious:
        return "Non-serious"
    criteria = [field_label(f) for f in SERIOUS_CRITERIA.values() if getattr(row, f)]
    return "Serious: " + ", ".join(criteria)


def review_assessments(review: MedicalReview, event: AdverseEvent) -> list[Assessment]:
    """Return the reviewer's assessments side by side with the site's (the event's current values)."""
    return [
        Assessment("Seriousness", _seriousness(event), _seriousness(review)),
        Assessment(
            field_label("causality_procedure"),
            display_value("causality_procedure", event.causality_procedure),
            display_value("causality_procedure", review.causality_procedure),
        ),
        Assessment(
            field_label("causality_product"),
            display_value("causality_product", event.causality_product),
            display_value("causality_product", review.causality_product),
        ),
        Assessment(
            "expectedness",
            display_value("expectedness", event.expectedness),
            display_value("expectedness", review.expectedness),
        ),
    ]


@dataclass
class Entry:
    kind: str  # "initial", "follow_up" or "review"
    at: dt.datetime
    title: str
    item: object = None
    details: list = field(default_factory=list)


def case_timeline(event: AdverseEvent) -> list[Entry]:
    """Return the event's initial report, then its follow-ups and medical reviews in the order they came."""
    follow_ups = list(event.follow_ups.select_related("created_by").order_by("number"))
    reviews = list(event.reviews.select_related("reviewer", "expectedness_basis").order_by("reviewed_at", "id"))
    initial = initial_values(event, follow_ups)
    entries = [
        Entry(
            "initial",
            event.recorded_at,
            "Initial report",
            event,
            [(field_label(name), display_value(name, value)) for name, value in initial.items()],
        )
    ]
    later = [Entry("follow_up", r.created_at, f"Follow-up {r.number}", r, follow_up_changes(r)) for r in follow_ups]
    later += [Entry("review", r.reviewed_at, "Medical review", r, review_assessments(r, event)) for r in reviews]
    return entries + sorted(later, key=lambda entry: entry.at)
