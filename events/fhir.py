"""HL7 FHIR R4 (4.0.1) AdverseEvent resources built from registry rows.

How the case maps onto R4 (issue 10):
- ``seriousness`` is the R4 value set's serious / non-serious. R4 has no element for the ICH E2B
  seriousness criteria, so each criterion met is an extension *on the seriousness element*
  (SERIOUSNESS_CRITERION_URL, a valueCoding in SERIOUSNESS_CRITERION_SYSTEM: death,
  life_threatening, hospitalisation, disability, congenital_anomaly, medically_important). Extra
  codings in ``seriousness.coding`` would claim to mean the same thing as "serious", which they do not.
- ``outcome``, ``event`` (MedDRA LLT and PT when coded) and the dates: the event's current values,
  which carry the latest follow-up's changes (a follow-up is applied to the event).
- ``detected`` is the awareness date (when the clinic learned of it); ``date`` the onset.
- ``suspectEntity``: the procedure, then the cell product (a Substance, by lot). Each carries its
  causality assessments: the site's (the event's causality_procedure / causality_product, author the
  reporting clinic) and the latest medical review's (author the safety reviewer), assessment coded
  in R4's adverse-event-causality-assess (its codes are the WHO-UMC categories), method WHO-UMC
  (CAUSALITY_METHOD_SYSTEM), and whose assessment it is in the CAUSALITY_ASSESSOR_URL extension
  (valueCode "site" or "reviewer"). A disagreement shows as two assessments of one entity.
"""

from __future__ import annotations

from core.text import strip_unsafe
from events.choices import SERIOUS_CRITERIA, Causality, Outcome
from events.models import AdverseEvent, MedicalReview
from events.selectors import latest_review

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
CAUSALITY_METHOD_SYSTEM = "urn:stemcell-registry:causality-method"
CAUSALITY_ASSESSOR_URL = "urn:stemcell-registry:fhir:extension:causality-assessor"
SERIOUSNESS_CRITERION_URL = "urn:stemcell-registry:fhir:extension:seriousness-criterion"
SERIOUSNESS_CRITERION_SYSTEM = "urn:stemcell-registry:ich-e2b-seriousness-criterion"
PRODUCT_LOT_SYSTEM = "urn:stemcell-registry:product-lot"
CLINIC_ID_SYSTEM = "urn:stemcell-registry:clinic"
USER_ID_SYSTEM = "urn:stemcell-registry:user"
WHO_UMC = {
    "coding": [{"system": CAUSALITY_METHOD_SYSTEM, "code": "who-umc", "display": "WHO-UMC causality assessment"}],
    "text": "WHO-UMC system for standardised case causality assessment",
}

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


def _seriousness(ae: AdverseEvent) -> dict:
    """Return AdverseEvent.seriousness, with each ICH E2B criterion met as an extension of the element."""
    seriousness = {
        "coding": [
            _coding(
                SERIOUSNESS_SYSTEM,
                "serious" if ae.serious else "non-serious",
                "Serious" if ae.serious else "Non-serious",
            )
        ]
    }
    criteria = [
        {
            "url": SERIOUSNESS_CRITERION_URL,
            "valueCoding": _coding(
                SERIOUSNESS_CRITERION_SYSTEM, code, str(AdverseEvent._meta.get_field(field).verbose_name).capitalize()
            ),
        }
        for code, field in SERIOUS_CRITERIA.items()
        if getattr(ae, field)
    ]
    if criteria:
        seriousness["extension"] = criteria
    return seriousness


def _assessment(causality: str, *, assessor: str, author: dict) -> dict:
    return {
        "extension": [{"url": CAUSALITY_ASSESSOR_URL, "valueCode": assessor}],
        "assessment": {
            "coding": [_coding(CAUSALITY_SYSTEM, CAUSALITY[causality], Causality(causality).label)],
        },
        "author": author,
        "method": WHO_UMC,
    }


def _causality(ae: AdverseEvent, review: MedicalReview | None, field: str) -> dict:
    """Return {"causality": [...]} for one suspect entity: the site's assessment, then the reviewer's."""
    assessments = []
    site = getattr(ae, field)
    if site:
        clinic = ae.procedure.clinic
        reporter = strip_unsafe(ae.reporter)
        author = {
            "type": "PractitionerRole",
            "identifier": {"system": CLINIC_ID_SYSTEM, "value": clinic.code},
            "display": f"Reporting clinic {clinic.code}" + (f" ({reporter})" if reporter else ""),
        }
        assessments.append(_assessment(site, assessor="site", author=author))
    if review is not None:
        reviewer = review.reviewer
        author = {
            "type": "Practitioner",
            "identifier": {"system": USER_ID_SYSTEM, "value": reviewer.get_username()},
            "display": f"Safety reviewer {reviewer.get_full_name() or reviewer.get_username()}, medical review of "
            f"{review.reviewed_at.date().isoformat()}",
        }
        assessments.append(_assessment(getattr(review, field), assessor="reviewer", author=author))
    return {"causality": assessments} if assessments else {}


_LOOK_UP = object()


def adverse_event_resource(ae: AdverseEvent, *, review=_LOOK_UP) -> dict:
    """Return the FHIR R4 AdverseEvent for a (non-retracted) registry event.

    ``review``: the event's current medical review (MedicalReview or None); by default looked up
    (events.selectors.latest_review, which reads the reviews events.selectors.with_reviews() prefetched).
    """
    if review is _LOOK_UP:
        review = latest_review(ae)
    procedure = ae.procedure
    event_codings = meddra_codings(ae)
    # Free text entered before it was checked at input may still hide bidi or zero-width characters.
    term = strip_unsafe(ae.term)
    product = f"{procedure.get_cell_type_display()} ({procedure.get_cell_source_display()})"
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
        "detected": (ae.aware_on or ae.onset_on).isoformat(),
        "recordedDate": ae.recorded_at.isoformat(),
        "seriousness": _seriousness(ae),
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
                        f"{product}, "
                        f"{procedure.get_site_display()} {procedure.laterality}, {procedure.performed_on.isoformat()}"
                        + (f", lot {procedure.product_lot}" if procedure.product_lot else "")
                    ),
                },
                **_causality(ae, review, "causality_procedure"),
            },
            {
                "instance": {
                    "type": "Substance",
                    **(
                        {"identifier": {"system": PRODUCT_LOT_SYSTEM, "value": procedure.product_lot}}
                        if procedure.product_lot
                        else {}
                    ),
                    "display": f"Cell product: {product}"
                    + (f", lot {procedure.product_lot}" if procedure.product_lot else ""),
                },
                **_causality(ae, review, "causality_product"),
            },
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
