"""The events app's models: the adverse event (adverse_event.py) and its case's life (case.py)."""

from events.models.adverse_event import AdverseEvent, AdverseEventQuerySet, new_event_id
from events.models.case import FollowUpReport, MedicalReview, ReferenceSafetyInformation

__all__ = [
    "AdverseEvent",
    "AdverseEventQuerySet",
    "FollowUpReport",
    "MedicalReview",
    "ReferenceSafetyInformation",
    "new_event_id",
]
