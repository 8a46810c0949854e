"""Follow-up reports: dated news of a case, applied to its event through the event's own service."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from core.audit import audit_context
from core.integrity import save_or_field_error
from core.rules import add
from events import rules
from events.choices import FOLLOW_UP_FIELDS
from events.models import AdverseEvent, FollowUpReport
from events.services.adverse_events import adverse_event_save, send_case_changed
from registry import selectors
from registry import services as registry_services


def follow_up_value(value) -> str | None:
    """Return ``value`` as a follow-up stores it in ``changes``: JSON-safe text, or None for "not set".

    Dates are ISO 8601, booleans "true"/"false", grades their digit, codes themselves.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _parsed_changes(changes: dict, errors: dict) -> dict:
    """Return {field: value} of ``changes`` parsed as the event's fields; problems go to ``errors``."""
    unknown = sorted(str(name) for name in changes if name not in FOLLOW_UP_FIELDS)
    if unknown:
        add(errors, rules.FOLLOW_UP_FIELD_NOT_CHANGEABLE, fields=", ".join(unknown))
    parsed = {}
    for name in FOLLOW_UP_FIELDS:
        if name not in changes:
            continue
        field = AdverseEvent._meta.get_field(name)
        value = changes[name]
        if value is None and not field.null:
            value = "" if field.get_internal_type() == "CharField" else value
        is_date = field.get_internal_type() == "DateField"
        accepted = (str, dt.date) if is_date else (str, int, bool)
        if value is not None and not isinstance(value, accepted):
            errors.setdefault(name, "Not a value this field takes.")
            continue
        if isinstance(value, str) and field.get_internal_type() == "BooleanField":
            value = {"true": True, "false": False}.get(value.strip().lower(), value)  # as changes spells them
        try:
            parsed[name] = field.to_python(value)
        except ValidationError as exc:
            errors.setdefault(name, exc.messages[0])
    return parsed


def follow_up_report_create(
    *, actor, event: AdverseEvent, received_on: dt.date, narrative: str, changes: dict | None = None
) -> FollowUpReport:
    """Return the event's next follow-up report, its ``changes`` applied to the event.

    ``changes``: {field: new value} over events.choices.FOLLOW_UP_FIELDS (another field is an error
    on "changes"). They are applied to the event through adverse_event_save, under a lock of the
    event, so its validation, audit and version bump hold: a change the event's rules refuse is a
    ValidationError on that field and nothing is stored. The report keeps {field: [old, new]} of
    what actually changed (follow_up_value()), is numbered max + 1 under the same lock, and is
    announced with case_changed(reason="follow_up"). Writers of the event's clinic only (a safety
    reviewer writes no clinical data).
    """
    if actor is not None and not selectors.can_write_clinic(actor, event.procedure.clinic_id):
        raise PermissionDenied("You may not write data of this clinic.")
    with transaction.atomic(), audit_context(actor, "follow_up_report_create"):
        stored = AdverseEvent.objects.select_for_update().select_related("procedure__patient").get(pk=event.pk)
        if actor is not None and not selectors.can_write_clinic(actor, stored.procedure.clinic_id):
            raise PermissionDenied("You may not write data of this clinic.")  # moved since the caller read it
        if stored.retracted_at is not None:
            raise ValidationError(rules.FOLLOW_UP_ON_RETRACTED.error())
        registry_services.refuse_if_retracted(
            procedure_id=stored.procedure_id, patient_id=stored.procedure.patient_id, under=True
        )
        errors: dict = {}
        parsed = _parsed_changes(dict(changes or {}), errors)
        report = FollowUpReport(
            event=stored,
            number=1,  # the real number is taken under the lock, once everything else holds
            received_on=received_on,
            narrative=narrative,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        try:
            report.full_clean(exclude=["number"], validate_constraints=False)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, messages)
        if errors:
            raise ValidationError(errors)
        diff = {
            name: [follow_up_value(getattr(stored, name)), follow_up_value(value)]
            for name, value in parsed.items()
            if getattr(stored, name) != value
        }
        if diff:
            for name in diff:
                setattr(stored, name, parsed[name])
            adverse_event_save(actor=actor, event=stored, announce=False)
        last = FollowUpReport.objects.filter(event_id=stored.pk).aggregate(last=Max("number"))["last"]
        report.number = (last or 0) + 1
        report.changes = diff
        save_or_field_error(report)
        send_case_changed(event=stored, actor=actor, reason="follow_up", follow_up=report)
    event.refresh_from_db()
    return report
