"""Writes to the registry: validated, transactional, audited, permission-checked."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction

from core.audit import audit_context as _audit
from core.integrity import save_or_field_error
from registry import selectors
from registry.choices import VISIT_SCHEDULE, visit_window
from registry.models import Clinic, FollowUpVisit, Membership, Patient, Procedure
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


def patient_save(*, actor, patient: Patient) -> Patient:
    """Return the patient after validating and saving it."""
    _require_clinic(actor, patient.clinic_id)
    if patient.pk:
        stored_clinic = Patient.objects.filter(pk=patient.pk).values_list("clinic_id", flat=True).first()
        _require_clinic(actor, stored_clinic)
    with transaction.atomic(), _audit(actor, "patient_save"):
        patient.full_clean()
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


def _reschedule_open_visits(procedure: Procedure) -> None:
    for visit in procedure.visits.filter(completed_on__isnull=True):
        visit.due_on = procedure.performed_on + timedelta(days=VISIT_SCHEDULE[visit.visit][0])
        visit.window_start, visit.window_end = visit_window(visit.visit, visit.due_on)
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
        procedure.full_clean()
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
        visit.full_clean()
        save_or_field_error(visit)
    return visit


def visit_record_completion(
    *, actor, visit: FollowUpVisit, completed_on: dt.date, contact_method: str = ""
) -> FollowUpVisit:
    """Return the visit marked completed on ``completed_on``."""
    visit.completed_on = completed_on
    visit.contact_method = contact_method
    return visit_save(actor=actor, visit=visit)
