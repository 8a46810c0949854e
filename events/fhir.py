"""HL7 FHIR R4 (4.0.1) AdverseEvent resources built from registry rows."""

from __future__ import annotations

from core.text import strip_unsafe
from events.choices import Causality, Outcome
from events.models import AdverseEvent

CATEGORY_SYSTEM = "urn:stemcell-registry:adverse-event-category"
EVENT_ID_SYSTEM = "urn:stemcell-registry:adverse-event"
PATIENT_ID_SYSTEM = "urn:stemcell-registry:patient"
PROCEDURE_ID_SYSTEM = "urn:stemcell-registry:procedure"
CTCAE_SYSTEM = "urn:stemcell-registry:ctcae-grade"
MEDDRA_SYSTEM = "http://terminology.hl7.org/CodeSystem/mdr"
SERIOUSNESS_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
SEVERITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
OUTCOME_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
CAUSALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess"

SEVERITY = {1: "mild", 2: "moderate", 3: "severe", 4: "severe", 5: "severe"}
OUTCOME = {
    Outcome.RECOVERED: "resolved",
    Outcome.RECOVERING: "recovering",
    Outcome.NOT_RECOVERED: "ongoing",
    Outcome.RECOVERED_WITH_SEQUELAE: "resolvedWithSequelae",
    Outcome.FATAL: "fatal",
    Outcome.UNKNOWN: "unknown",
}
CAUSALITY = {
    Causality.CERTAIN: "Certain",
    Causality.PROBABLE: "Probably-Likely",
    Causality.POSSIBLE: "Possible",
    Causality.UNLIKELY: "Unlikely",
    Causality.UNASSESSABLE: "Unassessable-Unclassifiable",
}


def _coding(system: str, code: str, display: str | None = None, version: str | None = None) -> dict:
    coding = {"system": system}
    if version:
        coding["version"] = version
    coding["code"] = code
    if display:
        coding["display"] = display
    return coding


def meddra_codings(ae: AdverseEvent) -> list[dict]:
    """Return the event's MedDRA codings: the LLT, then its PT, in the version they were coded with.

    An event coded while no dictionary was loaded carries its code alone (nothing was derived).
    """
    if not ae.meddra_code:
        return []
    if not ae.meddra_version:
        return [_coding(MEDDRA_SYSTEM, ae.meddra_code)]
    return [
        _coding(MEDDRA_SYSTEM, ae.meddra_code, strip_unsafe(ae.meddra_llt_name), ae.meddra_version),
        _coding(MEDDRA_SYSTEM, ae.meddra_pt_code, strip_unsafe(ae.meddra_pt_name), ae.meddra_version),
    ]


def adverse_event_resource(ae: AdverseEvent) -> dict:
    """Return the FHIR R4 AdverseEvent for a (non-retracted) registry event."""
    procedure = ae.procedure
    event_codings = meddra_codings(ae)
    # Free text entered before it was checked at input may still hide bidi or zero-width characters.
    term = strip_unsafe(ae.term)
    resource = {
        "resourceType": "AdverseEvent",
        "id": str(ae.pk),
        "meta": {"versionId": str(ae.version)},
        "identifier": {"system": EVENT_ID_SYSTEM, "value": ae.external_id},
        "actuality": "actual",
        "category": [
            {"coding": [_coding(CATEGORY_SYSTEM, ae.category, ae.get_category_display())]},
        ],
        "event": {"coding": event_codings, "text": term} if event_codings else {"text": term},
        "subject": {
            "type": "Patient",
            "identifier": {"system": PATIENT_ID_SYSTEM, "value": procedure.patient.registry_id},
        },
        "date": ae.onset_on.isoformat(),
        "detected": ae.onset_on.isoformat(),
        "recordedDate": ae.recorded_at.isoformat(),
        "seriousness": {
            "coding": [
                _coding(
                    SERIOUSNESS_SYSTEM,
                    "serious" if ae.serious else "non-serious",
                    "Serious" if ae.serious else "Non-serious",
                )
            ]
        },
        "severity": {
            "coding": [_coding(SEVERITY_SYSTEM, SEVERITY[ae.grade], SEVERITY[ae.grade].capitalize())],
            "text": f"CTCAE grade {ae.grade}",
        },
        "outcome": {"coding": [_coding(OUTCOME_SYSTEM, OUTCOME[ae.outcome], ae.get_outcome_display())]},
        "suspectEntity": [
            {
                "instance": {
                    "type": "Procedure",
                    "identifier": {"system": PROCEDURE_ID_SYSTEM, "value": procedure.external_id},
                    "display": (
                        f"{procedure.get_cell_type_display()} ({procedure.get_cell_source_display()}), "
                        f"{procedure.get_site_display()} {procedure.laterality}, {procedure.performed_on.isoformat()}"
                        + (f", lot {procedure.product_lot}" if procedure.product_lot else "")
                    ),
                },
                **(
                    {
                        "causality": [
                            {
                                "assessment": {
                                    "coding": [_coding(CAUSALITY_SYSTEM, CAUSALITY[ae.causality_procedure])]
                                },
                                "productRelatedness": ae.get_causality_product_display() or "not assessed",
                            }
                        ]
                    }
                    if ae.causality_procedure
                    else {}
                ),
            }
        ],
    }
    return resource


def search_bundle(events, *, base_url: str) -> dict:
    """Return a FHIR R4 searchset Bundle of ``events``."""
    entries = [
        {
            "fullUrl": f"{base_url.rstrip('/')}/{ae.pk}",
            "resource": adverse_event_resource(ae),
            "search": {"mode": "match"},
        }
        for ae in events
    ]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
