"""Writes to the registry: validated, transactional, audited, permission-checked."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from core.audit import audit_context as _audit
from core.dates import today
from core.integrity import save_or_field_error
from core.models import related_or_none
from core.rules import RETRACTION_REASON
from core.text import validate_safe_free_text
from registry import rules, selectors
from registry.choices import VISIT_SCHEDULE, visit_window
from registry.models import Clinic, ContactAttempt, FollowUpVisit, Membership, Patient, Procedure
from registry.roles import ROLE_TO_GROUP


def _require_clinic(actor, clinic_id) -> None:
    if actor is not None and not selectors.can_write_clinic(actor, clinic_id):
        raise PermissionDenied("You may not write data of this clinic.")


def membership_create(*, user, role: str, clinic: Clinic | None = None, actor=None) -> Membership:
    """Return a new membership, granting the role's group and admin-site access.

    ``actor`` None means a trusted caller (a migration, a command, the demo loader);
    otherwise only a registry administrator may grant roles.
    """
    if actor is not None and not selectors.is_registry_admin(actor):
        raise PermissionDenied("Only registry administrators grant roles.")
    with transaction.atomic(), _audit(actor, "membership_create"):
        membership = Membership(user=user, clinic=clinic, role=role)
        membership.full_clean()
        save_or_field_error(membership)
        user.groups.add(Group.objects.get(name=ROLE_TO_GROUP[role]))
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    return membership


def clinic_save(*, actor, clinic: Clinic) -> Clinic:
    """Return the clinic after validating and saving it; registry administrators only."""
    if actor is not None and not selectors.is_registry_admin(actor):
        raise PermissionDenied("Only registry administrators manage clinics.")
    with transaction.atomic(), _audit(actor, "clinic_save"):
        clinic.full_clean()
        save_or_field_error(clinic)
    return clinic


def _raise_if(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError(errors)


# --- rules across rows (registry.rules): the values each needs, gathered for one row ---------------
# The save services call these under their locks; the admin calls them while validating its form
# (registry.admin_base), so the message shows against its field; the importer computes the same
# values set-wise (intake.importer.check). A trigger raising the rule's code is the backstop.


def patient_check(*, patient: Patient) -> None:
    """Return None when the patient agrees with its procedures, visits and events; else raise ValidationError."""
    facts = {}
    if patient.pk:
        stored_clinic = Patient.objects.filter(pk=patient.pk).values_list("clinic_id", flat=True).first()
        last_performed_on = Procedure.objects.filter(patient_id=patient.pk).aggregate(last=Max("performed_on"))["last"]
        facts = {
            "moves_clinic_with_procedures": last_performed_on is not None
            and stored_clinic not in (None, patient.clinic_id),
            "last_performed_on": last_performed_on,
            "last_completed_on": FollowUpVisit.objects.filter(procedure__patient_id=patient.pk).aggregate(
                last=Max("completed_on")
            )["last"],
            # The adverse events' onsets and fatal outcomes, from events/ (the layer above).
            **rules.facts_from(rules.patient_facts, Patient, patient=patient),
        }
    _raise_if(rules.patient_across_errors(patient, **facts))


def procedure_check(*, procedure: Procedure) -> None:
    """Return None when the procedure agrees with its patient, events and visits; else raise ValidationError."""
    facts = {}
    if procedure.pk:
        facts = {
            "first_completed_on": FollowUpVisit.objects.filter(procedure_id=procedure.pk).aggregate(
                first=Min("completed_on")
            )["first"],
            **rules.facts_from(rules.procedure_facts, Procedure, procedure=procedure),
        }
    patient = related_or_none(procedure, "patient")  # on an admin page: the patient with the values just typed
    _raise_if(rules.procedure_across_errors(procedure, patient=patient, **facts))


def visit_check(*, visit: FollowUpVisit) -> None:
    """Return None when the visit agrees with its procedure and patient; else raise ValidationError."""
    procedure = related_or_none(visit, "procedure")
    patient = related_or_none(procedure, "patient") if procedure is not None else None
    _raise_if(
        rules.visit_across_errors(
            visit,
            performed_on=procedure.performed_on if procedure is not None else None,
            death_date=patient.death_date if patient is not None else None,
        )
    )


def patient_save(*, actor, patient: Patient) -> Patient:
    """Return the patient after validating and saving it."""
    _require_clinic(actor, patient.clinic_id)
    if patient.pk:
        stored_clinic = Patient.objects.filter(pk=patient.pk).values_list("clinic_id", flat=True).first()
        _require_clinic(actor, stored_clinic)
    with transaction.atomic(), _audit(actor, "patient_save"):
        refuse_if_retracted(patient_id=patient.pk)
        patient.full_clean()
        patient_check(patient=patient)
        save_or_field_error(patient)
    return patient


def followup_schedule_create(*, procedure: Procedure) -> list[FollowUpVisit]:
    """Return the procedure's new visits, day 2 to year 5, with their windows."""
    visits = []
    for label, (days, _early, _late) in VISIT_SCHEDULE.items():
        due = procedure.performed_on + timedelta(days=days)
        start, end = visit_window(label, due)
        visits.append(FollowUpVisit(procedure=procedure, visit=label, due_on=due, window_start=start, window_end=end))
    return FollowUpVisit.objects.bulk_create(visits)


def _schedule_from(visit: FollowUpVisit, performed_on: dt.date) -> None:
    visit.due_on = performed_on + timedelta(days=VISIT_SCHEDULE[visit.visit][0])
    visit.window_start, visit.window_end = visit_window(visit.visit, visit.due_on)


def _reschedule_open_visits(procedure: Procedure) -> None:
    for visit in procedure.visits.filter(completed_on__isnull=True, retracted_at__isnull=True):
        _schedule_from(visit, procedure.performed_on)
        visit.save(update_fields=["due_on", "window_start", "window_end", "updated_at"])


def procedure_save(*, actor, procedure: Procedure) -> Procedure:
    """Return the procedure after validating and saving it.

    A new procedure gets its follow-up schedule; moving the procedure date moves
    the visits not yet completed.
    """
    if procedure.patient_id and not procedure.clinic_id:
        procedure.clinic_id = procedure.patient.clinic_id
    _require_clinic(actor, procedure.clinic_id)
    with transaction.atomic(), _audit(actor, "procedure_save"):
        previous = None
        if procedure.pk:
            previous = Procedure.objects.select_for_update().filter(pk=procedure.pk).first()
            if previous:
                _require_clinic(actor, previous.clinic_id)
        refuse_if_retracted(procedure_id=procedure.pk, patient_id=procedure.patient_id)
        if previous is not None and previous.patient_id != procedure.patient_id:
            # Nor may a procedure leave a retracted patient (it would take its visits and events along).
            refuse_if_retracted(patient_id=previous.patient_id, under=True)
        procedure.full_clean()
        procedure_check(procedure=procedure)
        save_or_field_error(procedure)
        if previous is None:
            followup_schedule_create(procedure=procedure)
        elif previous.performed_on != procedure.performed_on:
            _reschedule_open_visits(procedure)
    return procedure


def visit_save(*, actor, visit: FollowUpVisit) -> FollowUpVisit:
    """Return the follow-up visit after validating and saving it (e.g. recording completion)."""
    _require_clinic(actor, visit.procedure.clinic_id)
    with transaction.atomic(), _audit(actor, "visit_save"):
        refuse_if_retracted(visit_id=visit.pk, procedure_id=visit.procedure_id, patient_id=visit.procedure.patient_id)
        visit.full_clean()
        visit_check(visit=visit)
        save_or_field_error(visit)
    return visit


def visit_record_completion(
    *, actor, visit: FollowUpVisit, completed_on: dt.date, contact_method: str = ""
) -> FollowUpVisit:
    """Return the visit marked completed on ``completed_on``."""
    visit.completed_on = completed_on
    visit.contact_method = contact_method
    return visit_save(actor=actor, visit=visit)


# --- Retraction, contact attempts, lost to follow-up (issue 9) -------------------------------------
# Rows entered in error are retracted with a reason, never deleted; a registry administrator may
# restore them. The save services above call refuse_if_retracted() so a retracted row stays as it was.


def clean_retraction_reason(reason: str | None) -> str:
    """Return the reason stripped, or raise ValidationError (field retraction_reason) when blank or unsafe."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(RETRACTION_REASON.error())
    try:
        validate_safe_free_text(reason)
    except ValidationError as exc:
        raise ValidationError({"retraction_reason": exc.messages}) from exc
    return reason


def refuse_if_retracted(*, visit_id=..., procedure_id=..., patient_id=..., under: bool = False) -> None:
    """Return None when neither the row written nor a row it belongs to is retracted; else raise ValidationError.

    The first id passed names the row written (None: not saved yet), the others its parents; with
    ``under`` every id passed is a parent (the row written is of an app above, an adverse event). The
    rows are locked (retractions lock the same rows), so a retraction committed while this write waited is seen.
    """
    given = ((FollowUpVisit, visit_id), (Procedure, procedure_id), (Patient, patient_id))
    chain = [(model, pk) for model, pk in given if pk is not ...]
    for position, (model, pk) in enumerate(chain):
        if pk is None:
            continue
        retracted_at = model.objects.select_for_update().filter(pk=pk).values_list("retracted_at", flat=True).first()
        if retracted_at is not None:
            broken = rules.PARENT_RETRACTED if position or under else rules.RETRACTED_FROZEN
            raise ValidationError(broken.message.format(kind=model._meta.verbose_name))


def parents_of(row) -> dict:
    """Return the keyword arguments naming the rows ``row`` belongs to, for refuse_if_retracted(under=True)."""
    if isinstance(row, Patient):
        return {}
    if isinstance(row, Procedure):
        return {"patient_id": row.patient_id}
    procedure = Procedure.objects.only("patient_id").get(pk=row.procedure_id)  # a visit or an adverse event
    return {"procedure_id": procedure.pk, "patient_id": procedure.patient_id}


def retracted_row_retract(*, actor, model, row, reason: str, action: str, clinic_path: str = "clinic_id"):
    """Return ``row`` (any retractable model) retracted with ``reason`` by a writer of its clinic.

    Shared by the retract service of every retractable kind, adverse events included; ``clinic_path``
    leads from the row to its clinic.
    """
    reason = clean_retraction_reason(reason)
    with transaction.atomic(), _audit(actor, action):
        locked = model.objects.select_for_update().get(pk=row.pk)
        _require_clinic(actor, model.objects.filter(pk=row.pk).values_list(clinic_path, flat=True).get())
        # Under a retracted patient or procedure everything is frozen, its own retraction included.
        refuse_if_retracted(**parents_of(locked), under=True)
        if locked.retracted_at is not None:
            raise ValidationError(f"This {model._meta.verbose_name} is already retracted.")
        locked.retracted_at = timezone.now()
        locked.retracted_by = actor
        locked.retraction_reason = reason
        locked.save(update_fields=["retracted_at", "retracted_by", "retraction_reason", "updated_at"])
    row.refresh_from_db()
    return row


def retracted_row_restore(*, actor, model, row, action: str, check=None):
    """Return ``row`` (any retractable model) restored: its retraction cleared; registry administrators only.

    Shared by the restore service of every retractable kind, adverse events included. The row
    comes back only if it still fits the registry as it is now: not under a retracted patient or
    procedure, and passing ``check`` (the kind's rules across rows, e.g. visit_check); a rule it
    breaks answers as a save would, field by field, and nothing changes.
    """
    if actor is not None and not selectors.is_registry_admin(actor):
        raise PermissionDenied("Only registry administrators restore retracted records.")
    with transaction.atomic(), _audit(actor, action):
        locked = model.objects.select_for_update().get(pk=row.pk)
        if locked.retracted_at is None:
            raise ValidationError(f"This {model._meta.verbose_name} is not retracted.")
        refuse_if_retracted(**parents_of(locked), under=True)
        locked.retracted_at = None
        locked.retracted_by = None
        locked.retraction_reason = ""
        fields = ["retracted_at", "retracted_by", "retraction_reason", "updated_at"]
        if isinstance(locked, FollowUpVisit) and locked.completed_on is None:
            # Its procedure may have moved while it was retracted (moves skip retracted visits).
            _schedule_from(locked, Procedure.objects.only("performed_on").get(pk=locked.procedure_id).performed_on)
            fields += ["due_on", "window_start", "window_end"]
        locked.full_clean()
        if check is not None:
            check(locked)
        save_or_field_error(locked, update_fields=fields)
    row.refresh_from_db()
    return row


def patient_retract(*, actor, patient: Patient, reason: str) -> Patient:
    """Return the patient retracted with ``reason``: kept for audit; the patient's procedures leave statistics."""
    return retracted_row_retract(actor=actor, model=Patient, row=patient, reason=reason, action="patient_retract")


def procedure_retract(*, actor, procedure: Procedure, reason: str) -> Procedure:
    """Return the procedure retracted with ``reason``: kept for audit, out of statistics and overdue lists."""
    return retracted_row_retract(actor=actor, model=Procedure, row=procedure, reason=reason, action="procedure_retract")


def visit_retract(*, actor, visit: FollowUpVisit, reason: str) -> FollowUpVisit:
    """Return the follow-up visit retracted with ``reason``: kept for audit, off the overdue list."""
    return retracted_row_retract(
        actor=actor,
        model=FollowUpVisit,
        row=visit,
        reason=reason,
        action="visit_retract",
        clinic_path="procedure__clinic_id",
    )


def patient_restore(*, actor, patient: Patient) -> Patient:
    """Return the patient with its retraction cleared (registry administrators only)."""
    return retracted_row_restore(
        actor=actor, model=Patient, row=patient, action="patient_restore", check=lambda row: patient_check(patient=row)
    )


def procedure_restore(*, actor, procedure: Procedure) -> Procedure:
    """Return the procedure with its retraction cleared (registry administrators only)."""
    return retracted_row_restore(
        actor=actor,
        model=Procedure,
        row=procedure,
        action="procedure_restore",
        check=lambda row: procedure_check(procedure=row),
    )


def visit_restore(*, actor, visit: FollowUpVisit) -> FollowUpVisit:
    """Return the follow-up visit with its retraction cleared (registry administrators only)."""
    return retracted_row_restore(
        actor=actor, model=FollowUpVisit, row=visit, action="visit_restore", check=lambda row: visit_check(visit=row)
    )


def contact_attempt_errors(*, attempted_on: dt.date | None, performed_on: dt.date | None) -> dict[str, str]:
    """Return {field: message} for a contact attempt's date: not in the future, not before the procedure."""
    if attempted_on is None:
        return {}
    if attempted_on > today():
        return rules.NOT_IN_FUTURE.error("attempted_on")
    if performed_on is not None and attempted_on < performed_on:
        return rules.ATTEMPT_BEFORE_PROCEDURE.error()
    return {}


def contact_attempt_log(
    *, actor, visit: FollowUpVisit, attempted_on: dt.date, method: str, outcome: str, notes: str = ""
) -> ContactAttempt:
    """Return a new contact attempt on the open ``visit``, logged by a clinician or coordinator of its clinic."""
    _require_clinic(actor, visit.procedure.clinic_id)
    with transaction.atomic(), _audit(actor, "contact_attempt_log"):
        locked = FollowUpVisit.objects.select_for_update().select_related("procedure").get(pk=visit.pk)
        refuse_if_retracted(
            visit_id=locked.pk, procedure_id=locked.procedure_id, patient_id=locked.procedure.patient_id
        )
        if locked.completed_on is not None:
            raise ValidationError(
                f"Contact attempts are logged on open visits; this one was completed on {locked.completed_on}."
            )
        attempt = ContactAttempt(
            visit=locked, attempted_on=attempted_on, method=method, outcome=outcome, notes=notes, recorded_by=actor
        )
        errors = contact_attempt_errors(attempted_on=attempted_on, performed_on=locked.procedure.performed_on)
        try:
            attempt.full_clean()
        except ValidationError as exc:
            errors = {**exc.message_dict, **errors}
        if errors:
            raise ValidationError(errors)
        save_or_field_error(attempt)
    return attempt


def _require_coordinator(actor, clinic_id) -> None:
    if actor is not None and not selectors.is_coordinator_of(actor, clinic_id):
        raise PermissionDenied(
            "Only a coordinator of this clinic or a registry administrator decides that a patient is lost to follow-up."
        )


def procedure_mark_lost_to_follow_up(*, actor, procedure: Procedure) -> Procedure:
    """Return the procedure marked lost to follow-up today, once enough contact attempts are logged.

    settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS attempts on its open visits are needed; the procedure then
    leaves the overdue list. Clinic coordinators and registry administrators only.
    """
    _require_coordinator(actor, procedure.clinic_id)
    with transaction.atomic(), _audit(actor, "procedure_mark_lost_to_follow_up"):
        locked = Procedure.objects.select_for_update().get(pk=procedure.pk)
        _require_coordinator(actor, locked.clinic_id)
        refuse_if_retracted(procedure_id=locked.pk, patient_id=locked.patient_id)
        if locked.lost_to_follow_up_on is not None:
            raise ValidationError(f"This procedure is already lost to follow-up (since {locked.lost_to_follow_up_on}).")
        needed, logged = settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS, selectors.contact_attempts_on_open_visits(locked)
        if logged < needed:
            raise ValidationError(
                f"A procedure is marked lost to follow-up after {needed} documented contact attempts "
                f"on its open visits; {logged} logged so far."
            )
        locked.lost_to_follow_up_on = today()
        locked.lost_to_follow_up_by = actor
        locked.save(update_fields=["lost_to_follow_up_on", "lost_to_follow_up_by", "updated_at"])
    procedure.refresh_from_db()
    return procedure


def procedure_unmark_lost_to_follow_up(*, actor, procedure: Procedure) -> Procedure:
    """Return the procedure back on follow-up (its open visits count as overdue again); coordinators only."""
    _require_coordinator(actor, procedure.clinic_id)
    with transaction.atomic(), _audit(actor, "procedure_unmark_lost_to_follow_up"):
        locked = Procedure.objects.select_for_update().get(pk=procedure.pk)
        _require_coordinator(actor, locked.clinic_id)
        refuse_if_retracted(procedure_id=locked.pk, patient_id=locked.patient_id)
        if locked.lost_to_follow_up_on is None:
            raise ValidationError("This procedure is not marked lost to follow-up.")
        locked.lost_to_follow_up_on = None
        locked.lost_to_follow_up_by = None
        locked.save(update_fields=["lost_to_follow_up_on", "lost_to_follow_up_by", "updated_at"])
    procedure.refresh_from_db()
    return procedure
