"""The same refusals as the admin's (tests/registry/test_rules_refusals.py), over the API: 400 on the field."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.registry.test_rules_refusals import DEATH, IDS, REFUSALS, prepare, scenario, snapshot

pytestmark = pytest.mark.django_db

URLS = {
    "patient": "/api/v1/patients/",
    "procedure": "/api/v1/procedures/",
    "event": "/api/v1/adverse-events/",
    "visit": "/api/v1/follow-up-visits/",
}


def _json(value):
    return value.isoformat() if isinstance(value, dt.date) else value


@pytest.mark.parametrize("refusal", REFUSALS, ids=IDS)
def test_the_api_answers_400_on_the_field_and_changes_nothing(api_alice, clinic_a, refusal):
    obj = prepare(clinic_a, refusal)
    before = snapshot()

    response = api_alice.patch(
        f"{URLS[refusal.target]}{obj.pk}/",
        {name: _json(value) for name, value in refusal.change.items()},
        format="json",
        HTTP_IF_MATCH=f'"{obj.version}"',
    )

    assert response.status_code == 400, response.json()
    errors = {e["attr"]: e["detail"] for e in response.json()["errors"]}
    assert refusal.field in errors, errors
    assert refusal.fragment.lower() in errors[refusal.field].lower()
    assert snapshot() == before


def test_the_api_records_a_death_with_its_cause(api_alice, clinic_a):
    patient = scenario(clinic_a).procedure.patient

    response = api_alice.patch(
        f"/api/v1/patients/{patient.pk}/",
        {"death_date": DEATH.isoformat(), "death_cause": "Unrelated: stroke"},
        format="json",
        HTTP_IF_MATCH=f'"{patient.version}"',
    )

    assert response.status_code == 200, response.json()
    assert response.json()["death_cause"] == "Unrelated: stroke"
    patient.refresh_from_db()
    assert (patient.death_date, patient.death_cause) == (DEATH, "Unrelated: stroke")
