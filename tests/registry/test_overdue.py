"""The overdue list chases only patients still followed up: not dead, withdrawn, retracted or lost."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from registry import selectors, services
from registry.models import FollowUpVisit, Procedure
from tests.conftest import PASSWORD
from tests.factories import ProcedureFactory

pytestmark = pytest.mark.django_db


def _overdue_procedures(on=None):
    return set(FollowUpVisit.objects.overdue(on=on).values_list("procedure_id", flat=True))


@pytest.fixture
def followed(clinic_a):
    return ProcedureFactory(patient__clinic=clinic_a)


def test_a_missed_visit_of_a_followed_patient_is_overdue(followed):
    assert followed.pk in _overdue_procedures()


@pytest.mark.parametrize("field", ["death_date", "withdrawn_on"])
def test_a_patient_who_died_or_withdrew_leaves_the_overdue_list(alice, followed, field):
    patient = followed.patient
    setattr(patient, field, dt.date(2023, 6, 1))
    if field == "death_date":
        patient.death_cause = "unrelated: stroke"
    services.patient_save(actor=alice, patient=patient)
    assert followed.pk not in _overdue_procedures()
    # Before that date the missed visits were chased: a past day's list keeps them.
    assert followed.pk in _overdue_procedures(on=dt.date(2023, 5, 1))


def test_retracted_patients_procedures_and_visits_leave_the_overdue_list(alice, clinic_a, followed):
    patient_gone = ProcedureFactory(patient__clinic=clinic_a)
    procedure_gone = ProcedureFactory(patient__clinic=clinic_a)
    services.patient_retract(actor=alice, patient=patient_gone.patient, reason="Entered twice")
    services.procedure_retract(actor=alice, procedure=procedure_gone, reason="Duplicate")
    day_2 = followed.visits.get(visit="day_2")
    services.visit_retract(actor=alice, visit=day_2, reason="Scheduled twice")
    overdue = _overdue_procedures()
    assert followed.pk in overdue
    assert patient_gone.pk not in overdue and procedure_gone.pk not in overdue
    assert not FollowUpVisit.objects.overdue().filter(pk=day_2.pk).exists()


def test_a_procedure_lost_to_follow_up_leaves_the_overdue_list(followed, dora):
    Procedure.objects.filter(pk=followed.pk).update(lost_to_follow_up_on=dt.date(2024, 1, 1), lost_to_follow_up_by=dora)
    assert followed.pk not in _overdue_procedures()
    assert followed.pk in _overdue_procedures(on=dt.date(2023, 12, 1))


def test_the_overdue_filters_of_admin_and_api_and_the_visit_field_agree(client, alice, clinic_a, followed):
    dead = ProcedureFactory(patient__clinic=clinic_a)
    dead.patient.death_date, dead.patient.death_cause = dt.date(2023, 3, 1), "unknown"
    services.patient_save(actor=alice, patient=dead.patient)
    in_filter = selectors.filter_overdue(Procedure.objects.all(), overdue=True, visit_id_field="procedure_id")
    assert set(in_filter.values_list("pk", flat=True)) == {followed.pk}

    assert client.login(username="alice", password=PASSWORD)
    page = client.get(reverse("admin:registry_procedure_changelist"), {"overdue": "yes"}).content.decode()
    assert followed.external_id in page and dead.external_id not in page

    api = APIClient()
    api.force_authenticate(user=alice)
    listed = api.get("/api/v1/procedures/", {"overdue": "true"}).json()
    assert [row["procedure_id"] for row in listed["results"]] == [followed.external_id]
    missed = dead.visits.get(visit="month_6")
    assert api.get(f"/api/v1/follow-up-visits/{missed.pk}/").json()["overdue"] is False
    chased = followed.visits.get(visit="month_6")
    assert api.get(f"/api/v1/follow-up-visits/{chased.pk}/").json()["overdue"] is True
