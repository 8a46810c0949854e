"""Writes to adverse events: validated, transactional, audited; retraction, never deletion."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from core.audit import audit_context
from core.integrity import save_or_field_error
from events.models import AdverseEvent
from registry import selectors
from registry.models import Procedure


def _require_procedure(actor, procedure_id) -> Procedure:
    procedure = Procedure.objects.select_related("patient").get(pk=procedure_id)
    if actor is not None and not selectors.can_write_clinic(actor, procedure.clinic_id):
        raise PermissionDenied("You may not write data of this clinic.")
    return procedure


def adverse_event_save(*, actor, event: AdverseEvent) -> AdverseEvent:
    """Return the adverse event after validating and saving it."""
    if event.procedure_id is None:
        raise ValidationError({"procedure": "An adverse event belongs to a procedure."})
    # The procedure object the form or serializer already loaded (through the scoped
    # selector) carries its clinic: no second lookup.
    if actor is not None and not selectors.can_write_clinic(actor, event.procedure.clinic_id):
        raise PermissionDenied("You may not write data of this clinic.")
    with transaction.atomic(), audit_context(actor, "adverse_event_save"):
        if event.pk:
            stored = AdverseEvent.objects.select_for_update().get(pk=event.pk)
            _require_procedure(actor, stored.procedure_id)
            if stored.retracted_at is not None:
                raise ValidationError("A retracted adverse event cannot be edited.")
        event.full_clean()
        save_or_field_error(event)
    return event


def adverse_event_create(*, actor, procedure: Procedure, **fields) -> AdverseEvent:
    """Return a new adverse event of ``procedure`` with ``fields``."""
    return adverse_event_save(actor=actor, event=AdverseEvent(procedure=procedure, **fields))


def adverse_event_retract(*, actor, event: AdverseEvent, reason: str) -> AdverseEvent:
    """Return the event retracted with ``reason``: kept for audit, excluded from statistics."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"retraction_reason": "A retraction needs a reason."})
    with transaction.atomic(), audit_context(actor, "adverse_event_retract"):
        locked = AdverseEvent.objects.select_for_update().get(pk=event.pk)
        _require_procedure(actor, locked.procedure_id)
        if locked.retracted_at is not None:
            raise ValidationError("This adverse event is already retracted.")
        locked.retracted_at = timezone.now()
        locked.retracted_by = actor
        locked.retraction_reason = reason
        locked.save(update_fields=["retracted_at", "retracted_by", "retraction_reason", "updated_at"])
    event.refresh_from_db()
    return event
