"""The FHIR R4 Bundle export: GET /api/v1/exports/adverse-events.fhir.json."""

from __future__ import annotations

import json

import pytest
from django.http import StreamingHttpResponse
from fhir.resources.bundle import Bundle

from events import services as event_services
from reports.choices import ExportKind
from reports.exports.models import ExportLog
from tests.api import conftest as api_conftest
from tests.api.conftest import api_client_for
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db
world = api_conftest.world  # one event at clinic A, one at clinic B (tests/api/conftest.py)

URL = "/api/v1/exports/adverse-events.fhir.json?purpose=Pharmacovigilance+exchange"


def bundle_of(response) -> dict:
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/fhir+json"
    return json.loads(b"".join(response.streaming_content))


def event_ids(bundle: dict) -> list[str]:
    return [entry["resource"]["identifier"]["value"] for entry in bundle.get("entry", [])]


def test_the_bundle_is_a_valid_fhir_r4_collection(world, root):
    AdverseEventFactory(
        procedure=ProcedureFactory(patient__clinic=world["a"].procedure.clinic),
        grade=3,
        serious=True,
        serious_hospitalisation=True,
        meddra_code="10003963",
        causality_procedure="probable",
    )
    data = bundle_of(api_client_for(root).get(URL))
    bundle = Bundle.parse_obj(data)
    assert bundle.type == "collection"
    assert len(bundle.entry) == 3
    assert {entry.resource.resource_type for entry in bundle.entry} == {"AdverseEvent"}
    first = data["entry"][0]
    assert first["fullUrl"].endswith(f"/api/fhir/AdverseEvent/{first['resource']['id']}")


def test_an_empty_bundle_is_valid_too(root):
    data = bundle_of(api_client_for(root).get(URL))
    assert "entry" not in data  # FHIR JSON has no empty arrays
    assert Bundle.parse_obj(data).type == "collection"


def test_it_applies_the_filters_and_leaves_retracted_events_out(world, root):
    event_services.adverse_event_retract(actor=root, event=world["b"], reason="Entered twice")
    assert event_ids(bundle_of(api_client_for(root).get(URL))) == [world["a"].external_id]
    assert event_ids(bundle_of(api_client_for(root).get(URL + "&clinic=B-BER"))) == []


def test_a_clinician_gets_only_her_clinic_and_nothing_by_asking_for_another(world, alice, charlie):
    assert event_ids(bundle_of(api_client_for(alice).get(URL))) == [world["a"].external_id]
    body = b"".join(api_client_for(charlie).get(URL + "&clinic=A-MAD").streaming_content).decode()
    assert world["a"].external_id not in body
    assert world["a"].procedure.patient.registry_id not in body


def test_the_registry_administrator_gets_both_clinics(world, root):
    assert sorted(event_ids(bundle_of(api_client_for(root).get(URL)))) == sorted(
        [world["a"].external_id, world["b"].external_id]
    )


def test_the_bundle_export_is_logged_with_its_entry_count(world, dora):
    bundle_of(api_client_for(dora).get(URL))
    log = ExportLog.objects.get()
    assert (log.kind, log.row_count, log.user) == (ExportKind.FHIR_BUNDLE, 1, dora)
    assert log.purpose == "Pharmacovigilance exchange"


@pytest.mark.parametrize("query", ["", "?purpose=", "?purpose=%20%20"])
def test_a_missing_or_blank_purpose_is_refused_field_by_field_and_logs_nothing(world, root, query):
    response = api_client_for(root).get("/api/v1/exports/adverse-events.fhir.json" + query)
    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == ["purpose"]
    assert not ExportLog.objects.exists()
