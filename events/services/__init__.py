"""Writes to adverse events and their case life (follow-ups, medical reviews, reference safety information).

One import path for every caller (``from events import services``); the writes live in the modules
of this package, each validated, transactional and audited (DESIGN.md 4.1).
"""

from events.services.adverse_events import (
    adverse_event_check,
    adverse_event_coding,
    adverse_event_create,
    adverse_event_restore,
    adverse_event_retract,
    adverse_event_save,
    send_case_changed,
)
from events.services.follow_ups import follow_up_report_create, follow_up_value
from events.services.reviews import medical_review_record, reference_safety_information_save

__all__ = [
    "adverse_event_check",
    "adverse_event_coding",
    "adverse_event_create",
    "adverse_event_restore",
    "adverse_event_retract",
    "adverse_event_save",
    "follow_up_report_create",
    "follow_up_value",
    "medical_review_record",
    "reference_safety_information_save",
    "send_case_changed",
]
