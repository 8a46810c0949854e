"""Patients, procedures and follow-up visits over the API, through the admin's services."""

from __future__ import annotations

import datetime as dt

import pytest

from registry.models import FollowUpVisit, Patient, Procedure

pytestmark = pytest.mark.django_db


def test_a_clinician_of_one_clinic_registers_a_patient_without_naming_the_clinic(api_alice, clinic_a):
    response = api_alice.post(
        "/api/v1/patients/", {"sex": "M", "birth_year": 1961, "enrolled_on": "2024-05-02"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["clinic"] == clinic_a.code
    assert body["registry_id"].startswith("P-")
    assert Patient.objects.get(registry_id=body["registry_id"]).birth_year == 1961


def test_a_patient_cannot_be_put_in_another_clinic(api_alice, clinic_b):
    response = api_alice.post(
        "/api/v1/patients/",
        {"clinic": clinic_b.code, "sex": "M", "birth_year": 1961, "enrolled_on": "2024-05-02"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "clinic"
    assert not Patient.objects.exists()


def test_a_patient_rule_comes_back_on_its_field(api_alice, clinic_a):
    response = api_alice.post(
        "/api/v1/patients/", {"sex": "F", "birth_year": 1850, "enrolled_on": "2024-05-02"}, format="json"
    )
    assert response.status_code == 400
    assert {e["attr"] for e in response.json()["errors"]} == {"birth_year"}


def test_a_procedure_created_over_the_api_gets_its_schedule(api_alice, world):
    patient = world["a"].procedure.patient
    response = api_alice.post(
        "/api/v1/procedures/",
        {
            "procedure_id": "EMR-77",
            "patient": patient.registry_id,
            "performed_on": "2024-06-01",
            "site": "hip",
            "laterality": "right",
            "cell_source": "allogeneic",
            "cell_type": "umbilical_cord_msc",
            "processing": "culture_expanded",
            "cell_dose_millions": "50.00",
            "carrier": "plasma_lyte",
            "guidance": "fluoroscopy",
            "product_lot": "UC-2024-9",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    procedure = Procedure.objects.get(external_id="EMR-77")
    assert procedure.clinic == patient.clinic
    assert procedure.visits.count() == 10


def test_donor_cells_must_be_allogeneic(api_alice, world):
    body = {
        "patient": world["a"].procedure.patient.registry_id,
        "performed_on": "2024-06-01",
        "site": "knee",
        "laterality": "left",
        "cell_source": "autologous",
        "cell_type": "umbilical_cord_msc",
    }
    response = api_alice.post("/api/v1/procedures/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "cell_source"


def test_a_visit_completion_is_recorded_with_if_match(api_alice, world):
    visit = world["a"].procedure.visits.get(visit="month_1")
    url = f"/api/v1/follow-up-visits/{visit.pk}/"
    etag = api_alice.get(url)["ETag"]
    response = api_alice.patch(
        url, {"completed_on": "2023-02-14", "contact_method": "phone"}, format="json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 200, response.json()
    assert response.json()["overdue"] is False
    assert FollowUpVisit.objects.get(pk=visit.pk).completed_on == dt.date(2023, 2, 14)
    early = api_alice.patch(url, {"completed_on": "2020-01-01"}, format="json", HTTP_IF_MATCH=response["ETag"])
    assert early.status_code == 400
    assert early.json()["errors"][0]["attr"] == "completed_on"


def test_the_visit_schedule_is_not_editable_over_the_api(api_alice, world):
    visit = world["a"].procedure.visits.get(visit="month_1")
    url = f"/api/v1/follow-up-visits/{visit.pk}/"
    response = api_alice.patch(url, {"due_on": "2030-01-01", "visit": "year_5"}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 200
    stored = FollowUpVisit.objects.get(pk=visit.pk)
    assert (stored.visit, stored.due_on) == ("month_1", visit.due_on)


def test_overdue_filters_find_missed_visits(api_alice, world):
    rows = api_alice.get("/api/v1/follow-up-visits/", {"overdue": "true", "page_size": 100}).json()["results"]
    assert rows and all(r["overdue"] for r in rows)
    procedures = api_alice.get("/api/v1/procedures/", {"overdue": "true"}).json()["results"]
    assert [p["procedure_id"] for p in procedures] == [world["a"].procedure.external_id]
