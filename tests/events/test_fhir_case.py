"""FHIR R4 AdverseEvent of a case (issue 10): seriousness criteria, outcome, both suspect entities with the site's
and the reviewer's causality (WHO-UMC), the follow-up's latest values; it still validates with fhir.resources."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fhir.resources.adverseevent import AdverseEvent as FhirAdverseEvent

from events.fhir import CAUSALITY_ASSESSOR_URL, SERIOUSNESS_CRITERION_URL
from events.services import follow_up_report_create, medical_review_record
from tests.api.conftest import api_client_for
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(alice, sam, clinic_a):
    """Return an infection at clinic A, made serious and recovered by a follow-up, then reviewed by sam."""
    procedure = ProcedureFactory(patient__clinic=clinic_a, performed_on=dt.date(2024, 3, 1), product_lot="LOT-77")
    event = AdverseEventFactory(
        procedure=procedure,
        category="infection",
        term="Septic arthritis",
        onset_on=dt.date(2024, 3, 3),
        aware_on=dt.date(2024, 3, 4),
        grade=2,
        outcome="recovering",
        causality_procedure="possible",
        causality_product="unlikely",
        reporter="Dr A",
    )
    follow_up_report_create(
        actor=alice,
        event=event,
        received_on=dt.date(2024, 3, 20),
        narrative="Admitted for arthroscopic washout; recovered.",
        changes={
            "serious": True,
            "serious_hospitalisation": True,
            "grade": 3,
            "outcome": "recovered",
            "resolved_on": "2024-03-18",
            "causality_procedure": "probable",
        },
    )
    medical_review_record(
        actor=sam,
        event=event,
        serious=True,
        serious_hospitalisation=True,
        causality_procedure="certain",
        causality_product="possible",
        expectedness="unexpected",
    )
    event.refresh_from_db()
    return event


def _read(user, event) -> tuple[dict, FhirAdverseEvent]:
    response = api_client_for(user).get(f"/api/fhir/AdverseEvent/{event.pk}")
    assert response.status_code == 200
    data = json.loads(response.content)
    return data, FhirAdverseEvent.parse_obj(data)


def _assessments(entity) -> list[tuple[str, str, str]]:
    return [(c.extension[0].valueCode, c.assessment.coding[0].code, c.method.coding[0].code) for c in entity.causality]


def test_it_carries_the_follow_ups_latest_values_and_the_seriousness_criteria(alice, case):
    _data, resource = _read(alice, case)
    assert resource.meta.versionId == str(case.version)
    assert resource.seriousness.coding[0].code == "serious"
    criteria = [(e.url, e.valueCoding.code) for e in resource.seriousness.extension]
    assert criteria == [(SERIOUSNESS_CRITERION_URL, "hospitalisation")]
    assert resource.severity.coding[0].code == "severe"  # grade 3, from the follow-up
    assert resource.outcome.coding[0].code == "resolved"
    assert str(resource.detected) == "2024-03-04"  # the awareness date
    assert str(resource.date) == "2024-03-03"


def test_each_suspect_entity_has_the_sites_and_the_reviewers_causality(alice, case):
    _data, resource = _read(alice, case)
    procedure, product = resource.suspectEntity
    assert procedure.instance.type == "Procedure"
    assert product.instance.type == "Substance" and product.instance.identifier.value == "LOT-77"
    # The site's assessment as the follow-up left it (probable), beside the reviewer's (certain): both kept.
    assert _assessments(procedure) == [("site", "Probably-Likely", "who-umc"), ("reviewer", "Certain", "who-umc")]
    assert _assessments(product) == [("site", "Unlikely", "who-umc"), ("reviewer", "Possible", "who-umc")]
    assert procedure.causality[0].extension[0].url == CAUSALITY_ASSESSOR_URL
    assert procedure.causality[0].author.display == "Reporting clinic A-MAD (Dr A)"
    assert procedure.causality[1].author.identifier.value == "sam"


def test_an_unreviewed_unassessed_event_still_validates_with_bare_suspect_entities(alice, clinic_a):
    event = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    data, resource = _read(alice, event)
    assert resource.seriousness.extension is None
    assert [entity.causality for entity in resource.suspectEntity] == [None, None]
    assert "extension" not in data["seriousness"]


def test_a_search_bundle_carries_the_reviewers_assessment_too(alice, case):
    response = api_client_for(alice).get("/api/fhir/AdverseEvent", {"patient": case.procedure.patient.registry_id})
    entry = json.loads(response.content)["entry"][0]["resource"]
    resource = FhirAdverseEvent.parse_obj(entry)
    assert [c.extension[0].valueCode for c in resource.suspectEntity[0].causality] == ["site", "reviewer"]
