"""The adverse-event API codes with MedDRA: it takes the LLT code and answers the PT, primary SOC and version."""

from __future__ import annotations

import pytest

from events.models import AdverseEvent
from tests.api.conftest import api_client_for

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/adverse-events/"


def _body(procedure, **changes) -> dict:
    return {
        "procedure": procedure.external_id,
        "category": "infection",
        "term": "Hot swollen knee, fever",
        "onset_on": procedure.performed_on.isoformat(),
        "grade": 3,
        "serious": True,
        "serious_hospitalisation": True,
        "outcome": "recovering",
        **changes,
    }


def test_it_takes_an_llt_code_and_answers_its_pt_and_primary_soc(meddra_27_1, alice, procedure_a):
    response = api_client_for(alice).post(EVENTS, _body(procedure_a, meddra_code="94000003"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: v for k, v in body.items() if k.startswith("meddra_")} == {
        "meddra_code": "94000003",
        "meddra_version": "27.1",
        "meddra_llt_name": "Synthetic bacterial joint infection",
        "meddra_pt_code": "93000002",
        "meddra_pt_name": "Synthetic septic arthritis",
        "meddra_soc_code": "90000002",
        "meddra_soc_name": "Synthetic infections and infestations",
    }
    assert AdverseEvent.objects.get().meddra_soc_code == "90000002"


@pytest.mark.parametrize("code", ["99999999", "94000002"], ids=["unknown", "non-current"])
def test_an_unknown_or_non_current_code_is_a_400_on_the_field_and_creates_nothing(
    meddra_27_1, alice, procedure_a, code
):
    response = api_client_for(alice).post(EVENTS, _body(procedure_a, meddra_code=code), format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "invalid",
            "detail": "Not a current lowest level term of the MedDRA dictionary (MedDRA 27.1).",
            "attr": "meddra_code",
        }
    ]
    assert not AdverseEvent.objects.exists()


def test_derived_fields_are_read_only_and_a_changed_code_is_coded_again(meddra_27_1, alice, procedure_a):
    api = api_client_for(alice)
    created = api.post(EVENTS, _body(procedure_a, meddra_code="94000003"), format="json")
    url = f"{EVENTS}{created.json()['id']}/"

    forged = api.patch(url, {"meddra_pt_code": "93000001"}, format="json", HTTP_IF_MATCH=created["ETag"])
    assert forged.status_code == 200
    assert forged.json()["meddra_pt_code"] == "93000002"

    recoded = api.patch(url, {"meddra_code": "93000002"}, format="json", HTTP_IF_MATCH=forged["ETag"])
    assert recoded.status_code == 200, recoded.json()
    assert recoded.json()["meddra_llt_name"] == "Synthetic septic arthritis"
    assert recoded.json()["meddra_pt_code"] == "93000002"

    refused = api.patch(url, {"meddra_code": "94000002"}, format="json", HTTP_IF_MATCH=recoded["ETag"])
    assert refused.status_code == 400
    assert [e["attr"] for e in refused.json()["errors"]] == ["meddra_code"]
    assert AdverseEvent.objects.get().meddra_code == "93000002"


def test_without_a_dictionary_a_well_shaped_code_is_taken_as_before(alice, procedure_a):
    response = api_client_for(alice).post(EVENTS, _body(procedure_a, meddra_code="10040047"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["meddra_code"] == "10040047"
    assert body["meddra_version"] == body["meddra_pt_code"] == body["meddra_soc_code"] == ""


def test_the_schema_marks_the_derived_fields_read_only(alice):
    schema = api_client_for(alice).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    event = schema["components"]["schemas"]["AdverseEvent"]["properties"]
    for name in ("meddra_version", "meddra_pt_code", "meddra_pt_name", "meddra_soc_code", "meddra_soc_name"):
        assert event[name]["readOnly"] is True
    assert "readOnly" not in event["meddra_code"]
