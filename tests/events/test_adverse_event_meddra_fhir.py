"""FHIR R4 AdverseEvent.event carries the MedDRA coding (LLT and PT, with the version); it still validates."""

from __future__ import annotations

import json

import pytest
from fhir.resources.adverseevent import AdverseEvent as FhirAdverseEvent

from tests.api.conftest import api_client_for
from tests.factories import AdverseEventFactory

pytestmark = pytest.mark.django_db

MDR = "http://terminology.hl7.org/CodeSystem/mdr"


def _resource(user, event) -> FhirAdverseEvent:
    response = api_client_for(user).get(f"/api/fhir/AdverseEvent/{event.pk}")
    assert response.status_code == 200
    return FhirAdverseEvent.parse_obj(json.loads(response.content))


def test_a_coded_event_carries_its_llt_and_pt_in_the_mdr_system_with_the_version(meddra_27_1, alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, term="Sore at the needle site", meddra_code="94000001")
    resource = _resource(alice, event)
    assert resource.event.text == "Sore at the needle site"
    assert [(c.system, c.version, c.code, c.display) for c in resource.event.coding] == [
        (MDR, "27.1", "94000001", "Synthetic pain at injection site"),
        (MDR, "27.1", "93000001", "Synthetic injection site pain"),
    ]


def test_an_event_coded_without_a_dictionary_carries_its_code_alone(alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, meddra_code="10040047")
    resource = _resource(alice, event)
    assert [(c.system, c.version, c.code) for c in resource.event.coding] == [(MDR, None, "10040047")]


def test_an_uncoded_event_has_only_its_verbatim_term(meddra_27_1, alice, procedure_a):
    event = AdverseEventFactory(procedure=procedure_a, term="Knee pain")
    resource = _resource(alice, event)
    assert resource.event.coding is None
    assert resource.event.text == "Knee pain"
