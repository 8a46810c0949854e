"""Writes to adverse events: validated, transactional, audited; retraction, never deletion."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from core.audit import audit_context
from core.integrity import save_or_field_error
from events import rules
from events.choices import Outcome
from events.models import AdverseEvent
from registry import selectors
from registry import services as registry_services
from registry.models import Procedure
from registry.rules import RETRACTED_FROZEN


def _require_procedure(actor, procedure_id) -> Procedure:
    procedure = Procedure.objects.select_related("patient").get(pk=procedure_id)
    if actor is not None and not selectors.can_write_clinic(actor, procedure.clinic_id):
        raise PermissionDenied("You may not write data of this clinic.")
    return procedure


def adverse_event_check(*, event: AdverseEvent, stored: AdverseEvent | None = None) -> None:
    """Return None when the event agrees with its procedure and patient; else raise ValidationError (by field).

    ``stored``: the event as stored (locked by the caller), looked up when not given. The admin
    calls this while validating its form (registry.admin_base); adverse_event_save under its lock.
    """
    if stored is None and event.pk:
        stored = AdverseEvent.objects.filter(pk=event.pk).first()
    procedure = event.procedure
    patient = procedure.patient
    was_only_unexplained_fatal = (
        stored is not None
        and stored.outcome == Outcome.FATAL
        and stored.retracted_at is None
        and patient.death_date is not None
        and not patient.death_cause.strip()
        and not AdverseEvent.objects.active()
        .filter(procedure__patient_id=patient.pk, outcome=Outcome.FATAL)
        .exclude(pk=stored.pk)
        .exists()
    )
    errors = rules.adverse_event_across_errors(
        event,
        performed_on=procedure.performed_on,
        death_date=patient.death_date,
        enrolled_on=patient.enrolled_on,
        # An onset already on record (say, an imported historical event) may stay where it is.
        allow_historical=stored is not None and stored.onset_on == event.onset_on,
        was_only_unexplained_fatal=was_only_unexplained_fatal,
    )
    if errors:
        raise ValidationError(errors)


def adverse_event_save(*, actor, event: AdverseEvent) -> AdverseEvent:
    """Return the adverse event after validating and saving it."""
    if event.procedure_id is None:
        raise ValidationError({"procedure": "An adverse event belongs to a procedure."})
    # The procedure object the form or serializer already loaded (through the scoped
    # selector) carries its clinic: no second lookup.
    if actor is not None and not selectors.can_write_clinic(actor, event.procedure.clinic_id):
        raise PermissionDenied("You may not write data of this clinic.")
    with transaction.atomic(), audit_context(actor, "adverse_event_save"):
        stored = None
        if event.pk:
            stored = AdverseEvent.objects.select_for_update().get(pk=event.pk)
            stored_procedure = _require_procedure(actor, stored.procedure_id)
            if stored.retracted_at is not None:
                raise ValidationError(RETRACTED_FROZEN.message.format(kind=AdverseEvent._meta.verbose_name))
            if stored.procedure_id != event.procedure_id:  # moved: the procedure it leaves changes too
                registry_services.refuse_if_retracted(
                    procedure_id=stored_procedure.pk, patient_id=stored_procedure.patient_id, under=True
                )
        # Nothing is added to, or changed under, a retracted procedure or a procedure of a retracted patient.
        registry_services.refuse_if_retracted(
            procedure_id=event.procedure_id, patient_id=event.procedure.patient_id, under=True
        )
        event.full_clean()
        adverse_event_check(event=event, stored=stored)
        save_or_field_error(event)
    return event


def adverse_event_create(*, actor, procedure: Procedure, **fields) -> AdverseEvent:
    """Return a new adverse event of ``procedure`` with ``fields``."""
    return adverse_event_save(actor=actor, event=AdverseEvent(procedure=procedure, **fields))


def adverse_event_retract(*, actor, event: AdverseEvent, reason: str) -> AdverseEvent:
    """Return the event retracted with ``reason``: kept for audit, excluded from statistics."""
    return registry_services.retracted_row_retract(
        actor=actor,
        model=AdverseEvent,
        row=event,
        reason=reason,
        action="adverse_event_retract",
        clinic_path="procedure__clinic_id",
    )


# --- Restore (issue 9): a registry administrator undoes a retraction, as for patients, procedures, visits.


def adverse_event_restore(*, actor, event: AdverseEvent) -> AdverseEvent:
    """Return the adverse event with its retraction cleared: it counts again (registry administrators only)."""
    return registry_services.retracted_row_restore(
        actor=actor,
        model=AdverseEvent,
        row=event,
        action="adverse_event_restore",
        check=lambda row: adverse_event_check(event=row),
    )
