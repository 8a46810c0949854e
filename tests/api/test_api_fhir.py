"""FHIR R4 view of adverse events: validates with fhir.resources (FHIR 4.0.1)."""

from __future__ import annotations

import json

import fhir.resources
import pytest
from fhir.resources.adverseevent import AdverseEvent as FhirAdverseEvent
from fhir.resources.bundle import Bundle

from events.services import adverse_event_retract
from tests.factories import AdverseEventFactory

pytestmark = pytest.mark.django_db


def test_the_validator_is_fhir_r4():
    assert fhir.resources.__fhir_version__ == "4.0.1"


def test_an_event_reads_as_a_valid_r4_adverse_event(api_alice, world):
    ae = AdverseEventFactory(
        procedure=world["a"].procedure,
        category="infection",
        term="Septic arthritis",
        grade=3,
        serious=True,
        serious_hospitalisation=True,
        outcome="recovered_with_sequelae",
        causality_procedure="probable",
        causality_product="possible",
        meddra_code="10040047",
    )
    response = api_alice.get(f"/api/fhir/AdverseEvent/{ae.pk}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    resource = FhirAdverseEvent.parse_obj(json.loads(response.content))
    assert resource.actuality == "actual"
    assert resource.subject.identifier.value == ae.procedure.patient.registry_id
    assert resource.seriousness.coding[0].code == "serious"
    assert resource.severity.coding[0].code == "severe"
    assert resource.outcome.coding[0].code == "resolvedWithSequelae"
    assert resource.event.text == "Septic arthritis"
    assert resource.event.coding[0].code == "10040047"
    assert resource.suspectEntity[0].causality[0].assessment.coding[0].code == "Probably-Likely"
    assert str(resource.date) == ae.onset_on.isoformat()


def test_a_search_by_patient_returns_a_valid_searchset_bundle(api_alice, world):
    procedure = world["a"].procedure
    AdverseEventFactory(procedure=procedure, term="Second event")
    response = api_alice.get("/api/fhir/AdverseEvent", {"patient": procedure.patient.registry_id})
    assert response.status_code == 200
    bundle = Bundle.parse_obj(json.loads(response.content))
    assert bundle.type == "searchset"
    assert bundle.total == 2
    for entry in bundle.entry:
        FhirAdverseEvent.parse_obj(entry.resource.dict())
        assert entry.search.mode == "match"


def test_fhir_never_serves_another_clinics_or_a_retracted_event(api_charlie, api_alice, alice, world):
    ae = world["a"]
    assert api_charlie.get(f"/api/fhir/AdverseEvent/{ae.pk}").status_code == 404
    search = api_charlie.get("/api/fhir/AdverseEvent", {"patient": ae.procedure.patient.registry_id})
    assert json.loads(search.content)["total"] == 0
    adverse_event_retract(actor=alice, event=ae, reason="Duplicate")
    assert api_alice.get(f"/api/fhir/AdverseEvent/{ae.pk}").status_code == 404


def test_a_search_without_a_patient_is_a_400(api_alice, world):
    assert api_alice.get("/api/fhir/AdverseEvent").status_code == 400
