"""Writes to adverse events: validated, transactional, audited; retraction, never deletion.

Every write of a case announces itself with events.hooks.case_changed inside its transaction.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from core.audit import audit_context
from core.integrity import save_or_field_error
from events import rules
from events.choices import Outcome
from events.hooks import case_changed
from events.models import AdverseEvent
from events.validators import MEDDRA_CODE_SHAPE
from meddra import selectors as meddra_selectors
from registry import selectors
from registry import services as registry_services
from registry.models import Procedure
from registry.rules import RETRACTED_FROZEN


def _require_procedure(actor, procedure_id) -> Procedure:
    procedure = Procedure.objects.select_related("patient").get(pk=procedure_id)
    if actor is not None and not selectors.can_write_clinic(actor, procedure.clinic_id):
        raise PermissionDenied("You may not write data of this clinic.")
    return procedure


def adverse_event_coding(
    *, event: AdverseEvent, stored: AdverseEvent | None = None, meddra_version: str | None = None
) -> dict[str, str] | None:
    """Return the MedDRA fields coding derives for the event's code, or None when the stored ones stay.

    Coding happens when the code is set or changed (or ``meddra_version`` names another version
    than the stored one): the lowest level term is looked up in ``meddra_version``, else in the
    newest loaded version; its PT and the PT's primary SOC (mdhier) come with it. An unknown or
    non-current code is a ValidationError on meddra_code. Without any loaded dictionary a code is
    only held to its shape (Model.clean()) and nothing is derived, as before MedDRA was loaded.
    """
    blank = dict.fromkeys(rules.MEDDRA_DERIVED_FIELDS, "")
    if not MEDDRA_CODE_SHAPE.fullmatch(event.meddra_code or ""):
        return blank  # not a code at all: Model.clean() says so, nothing is looked up
    stored_code = stored.meddra_code if stored is not None else ""
    if event.meddra_code == stored_code and (
        not meddra_version or stored is None or meddra_version == stored.meddra_version
    ):
        return blank if stored is None else None
    if not event.meddra_code:
        return blank
    if meddra_version:
        version = meddra_selectors.version_named(meddra_version)
        if version is None:
            raise ValidationError(rules.MEDDRA_VERSION_NOT_LOADED.error(version=meddra_version))
    else:
        version = meddra_selectors.latest_version()
        if version is None:
            return blank
    coding = meddra_selectors.llt_coding(version, event.meddra_code)
    errors = rules.adverse_event_coding_errors(event, version=version.version, coding=coding)
    if errors:
        raise ValidationError(errors)
    return {
        "meddra_version": coding.version,
        "meddra_llt_name": coding.llt_name,
        "meddra_pt_code": coding.pt_code,
        "meddra_pt_name": coding.pt_name,
        "meddra_soc_code": coding.soc_code,
        "meddra_soc_name": coding.soc_name,
    }


def adverse_event_check(
    *, event: AdverseEvent, stored: AdverseEvent | None = None, meddra_version: str | None = None
) -> None:
    """Return None when the event agrees with its procedure, its patient and the MedDRA dictionary; else
    raise ValidationError (by field).

    ``stored``: the event as stored (locked by the caller), looked up when not given. The admin
    calls this while validating its form (registry.admin_base); adverse_event_save under its lock.
    """
    if stored is None and event.pk:
        stored = AdverseEvent.objects.filter(pk=event.pk).first()
    errors: dict = {}
    try:
        adverse_event_coding(event=event, stored=stored, meddra_version=meddra_version)
    except ValidationError as exc:
        errors = dict(exc.message_dict)
    for field, message in _across_errors(event=event, stored=stored).items():
        errors.setdefault(field, message)
    if errors:
        raise ValidationError(errors)


def _across_errors(*, event: AdverseEvent, stored: AdverseEvent | None) -> dict[str, str]:
    """Return {field: message} for the event held against its procedure and patient."""
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
    return rules.adverse_event_across_errors(
        event,
        performed_on=procedure.performed_on,
        death_date=patient.death_date,
        enrolled_on=patient.enrolled_on,
        # An onset already on record (say, an imported historical event) may stay where it is.
        allow_historical=stored is not None and stored.onset_on == event.onset_on,
        was_only_unexplained_fatal=was_only_unexplained_fatal,
    )


def adverse_event_save(
    *, actor, event: AdverseEvent, meddra_version: str | None = None, announce: bool = True
) -> AdverseEvent:
    """Return the adverse event after validating, coding (MedDRA) and saving it.

    ``meddra_version``: code against this loaded MedDRA version instead of the newest one.
    ``announce``: send case_changed ("created" or "changed"); a follow-up report applying its
    changes through here says False and announces itself ("follow_up") in the same transaction.
    """
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
        # Coding first (it sets the derived fields clean() holds together); its error is reported with the others.
        errors: dict = {}
        try:
            derived = adverse_event_coding(event=event, stored=stored, meddra_version=meddra_version)
        except ValidationError as exc:
            errors, derived = dict(exc.message_dict), None
        for name in rules.MEDDRA_DERIVED_FIELDS:  # only coding sets them, never a caller
            setattr(event, name, getattr(stored, name, "") if derived is None else derived[name])
        try:
            event.full_clean()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, messages)
        if errors:
            raise ValidationError(errors)
        errors = _across_errors(event=event, stored=stored)
        if errors:
            raise ValidationError(errors)
        save_or_field_error(event)
        if announce:
            send_case_changed(event=event, actor=actor, reason="created" if stored is None else "changed")
    return event


def send_case_changed(*, event: AdverseEvent, actor, reason: str, follow_up=None, review=None) -> None:
    """Return None after telling the floors above (events.hooks.case_changed) that the case changed.

    Called inside the writing transaction: a receiver that fails rolls the change back with it.
    """
    case_changed.send(sender=AdverseEvent, event=event, actor=actor, reason=reason, follow_up=follow_up, review=review)


def adverse_event_create(*, actor, procedure: Procedure, meddra_version: str | None = None, **fields) -> AdverseEvent:
    """Return a new adverse event of ``procedure`` with ``fields`` (coded in ``meddra_version`` when given)."""
    return adverse_event_save(
        actor=actor, event=AdverseEvent(procedure=procedure, **fields), meddra_version=meddra_version
    )


def adverse_event_retract(*, actor, event: AdverseEvent, reason: str) -> AdverseEvent:
    """Return the event retracted with ``reason``: kept for audit, excluded from statistics."""
    with transaction.atomic():
        registry_services.retracted_row_retract(
            actor=actor,
            model=AdverseEvent,
            row=event,
            reason=reason,
            action="adverse_event_retract",
            clinic_path="procedure__clinic_id",
        )
        send_case_changed(event=event, actor=actor, reason="retracted")
    return event


# --- Restore (issue 9): a registry administrator undoes a retraction, as for patients, procedures, visits.


def adverse_event_restore(*, actor, event: AdverseEvent) -> AdverseEvent:
    """Return the adverse event with its retraction cleared: it counts again (registry administrators only)."""
    with transaction.atomic():
        registry_services.retracted_row_restore(
            actor=actor,
            model=AdverseEvent,
            row=event,
            action="adverse_event_restore",
            check=lambda row: adverse_event_check(event=row),
        )
        send_case_changed(event=event, actor=actor, reason="restored")
    return event
