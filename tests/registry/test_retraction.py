"""Patients, procedures and visits entered in error are retracted with a reason, never deleted, and restorable."""

from __future__ import annotations

import datetime as dt

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from events.models import AdverseEvent
from events.services import adverse_event_restore, adverse_event_retract
from registry import services
from registry.models import FollowUpVisit, Patient, Procedure
from tests.conftest import PASSWORD
from tests.factories import AdverseEventFactory, PatientFactory, ProcedureFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def procedure(clinic_a):
    return ProcedureFactory(patient__clinic=clinic_a)


def _stored(row):
    return type(row).objects.values().get(pk=row.pk)


def test_a_clinician_retracts_a_patient_of_her_clinic_with_a_reason_and_the_row_stays(alice, procedure):
    patient = procedure.patient
    services.patient_retract(actor=alice, patient=patient, reason="Entered twice, see P-2")
    patient.refresh_from_db()
    assert patient.retracted_at is not None
    assert patient.retracted_by == alice
    assert patient.retraction_reason == "Entered twice, see P-2"
    assert Patient.objects.filter(pk=patient.pk).exists()
    last = pghistory.models.Events.objects.tracks(patient).order_by("pgh_created_at", "pgh_id").last()
    assert last.pgh_context["action"] == "patient_retract"
    assert last.pgh_context["user"] == alice.pk


@pytest.mark.parametrize("reason", ["", "   ", "dup\u202elicate"])
def test_a_retraction_without_a_safe_reason_is_refused(alice, procedure, reason):
    before = _stored(procedure)
    with pytest.raises(ValidationError) as info:
        services.procedure_retract(actor=alice, procedure=procedure, reason=reason)
    assert "retraction_reason" in info.value.message_dict
    assert _stored(procedure) == before


def test_a_clinician_of_another_clinic_cannot_retract(charlie, procedure):
    before = _stored(procedure.patient)
    with pytest.raises(PermissionDenied):
        services.patient_retract(actor=charlie, patient=procedure.patient, reason="Malicious")
    assert _stored(procedure.patient) == before


def test_a_coordinator_retracts_a_visit_and_a_second_retraction_is_refused(dora, procedure):
    visit = procedure.visits.get(visit="day_2")
    services.visit_retract(actor=dora, visit=visit, reason="Scheduled twice")
    before = _stored(visit)
    with pytest.raises(ValidationError, match="already retracted"):
        services.visit_retract(actor=dora, visit=visit, reason="Again")
    assert _stored(visit) == before


def test_a_retracted_patient_cannot_be_edited_nor_get_a_new_procedure(alice, procedure):
    patient = procedure.patient
    services.patient_retract(actor=alice, patient=patient, reason="Wrong clinic")
    before = _stored(patient)
    patient.refresh_from_db()
    patient.sex = "M"
    with pytest.raises(ValidationError, match="retracted"):
        services.patient_save(actor=alice, patient=patient)
    assert _stored(patient) == before
    with pytest.raises(ValidationError, match="retracted"):
        ProcedureFactory(patient=patient)
    assert Procedure.objects.filter(patient=patient).count() == 1


def test_the_visits_of_a_retracted_procedure_are_frozen_with_it(alice, procedure):
    services.procedure_retract(actor=alice, procedure=procedure, reason="Duplicate procedure")
    visit = procedure.visits.get(visit="day_2")
    before = _stored(visit)
    with pytest.raises(ValidationError, match="procedure this record belongs to is retracted"):
        services.visit_record_completion(actor=alice, visit=visit, completed_on=dt.date(2023, 1, 17))
    assert _stored(visit) == before


def test_only_a_registry_administrator_restores_and_the_restore_is_audited(alice, root, procedure):
    services.procedure_retract(actor=alice, procedure=procedure, reason="Duplicate procedure")
    before = _stored(procedure)
    with pytest.raises(PermissionDenied):
        services.procedure_restore(actor=alice, procedure=procedure)
    assert _stored(procedure) == before
    services.procedure_restore(actor=root, procedure=procedure)
    procedure.refresh_from_db()
    assert (procedure.retracted_at, procedure.retracted_by, procedure.retraction_reason) == (None, None, "")
    last = pghistory.models.Events.objects.tracks(procedure).order_by("pgh_created_at", "pgh_id").last()
    assert last.pgh_context["action"] == "procedure_restore"
    assert last.pgh_diff["retraction_reason"] == ["Duplicate procedure", ""]
    with pytest.raises(ValidationError, match="not retracted"):
        services.procedure_restore(actor=root, procedure=procedure)


def test_an_adverse_event_is_restored_by_a_registry_administrator_only(alice, root, procedure):
    ae = AdverseEventFactory(procedure=procedure)
    adverse_event_retract(actor=alice, event=ae, reason="Wrong patient")
    with pytest.raises(PermissionDenied):
        adverse_event_restore(actor=alice, event=ae)
    assert AdverseEvent.objects.get(pk=ae.pk).retracted_at is not None
    adverse_event_restore(actor=root, event=ae)
    assert AdverseEvent.objects.active().filter(pk=ae.pk).exists()


# --- admin -------------------------------------------------------------------------------------------


def test_the_patient_list_hides_retracted_patients_unless_the_filter_asks(client, alice, clinic_a):
    kept, gone = PatientFactory(clinic=clinic_a), PatientFactory(clinic=clinic_a)
    services.patient_retract(actor=alice, patient=gone, reason="Entered twice")
    assert client.login(username="alice", password=PASSWORD)
    url = reverse("admin:registry_patient_changelist")
    default = client.get(url).content.decode()
    assert kept.registry_id in default and gone.registry_id not in default
    retracted = client.get(url, {"retracted": "yes"}).content.decode()
    assert gone.registry_id in retracted and kept.registry_id not in retracted
    everything = client.get(url, {"retracted": "all"}).content.decode()
    assert kept.registry_id in everything and gone.registry_id in everything


def test_the_admin_retracts_a_procedure_with_the_reason_typed(client, alice, procedure):
    assert client.login(username="alice", password=PASSWORD)
    url = reverse("admin:registry_procedure_retract", args=[procedure.pk])
    assert b"reason" in client.get(url).content
    response = client.post(url, {"reason": "Duplicate of PR-1"})
    assert response.status_code == 302
    procedure.refresh_from_db()
    assert procedure.retraction_reason == "Duplicate of PR-1"
    assert procedure.retracted_by == alice
    # The change page still shows it (audit), read-only, with a restore button for administrators only.
    page = client.get(reverse("admin:registry_procedure_change", args=[procedure.pk])).content.decode()
    assert "Duplicate of PR-1" in page
    assert 'name="_save"' not in page
    assert "restore-button" not in page


def test_a_clinician_elsewhere_gets_404_from_the_retract_page(client, charlie, procedure):
    before = _stored(procedure)
    assert client.login(username="charlie", password=PASSWORD)
    url = reverse("admin:registry_procedure_retract", args=[procedure.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"reason": "Malicious"}).status_code == 404
    assert _stored(procedure) == before


def test_the_admin_restore_button_works_for_an_administrator_only(client, alice, root, procedure):
    visit = procedure.visits.get(visit="week_1")
    services.visit_retract(actor=alice, visit=visit, reason="Entered in error")
    url = reverse("admin:registry_followupvisit_restore", args=[visit.pk])
    before = _stored(visit)
    assert client.login(username="alice", password=PASSWORD)
    assert client.post(url).status_code == 403
    assert _stored(visit) == before
    client.logout()
    assert client.login(username="root", password=PASSWORD)
    page = client.get(reverse("admin:registry_followupvisit_change", args=[visit.pk])).content.decode()
    assert "restore-button" in page
    assert client.post(url).status_code == 302
    assert FollowUpVisit.objects.get(pk=visit.pk).retracted_at is None
