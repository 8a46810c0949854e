"""The CIOMS I form of a case: its boxes, filled from the event as it stands (follow-ups applied), its
MedDRA coding, its follow-ups and its latest medical review. safety.pdf draws them.

Box 1 carries the registry's pseudonymous patient id, never initials; boxes 14-19 ("suspect drug")
describe the cell product; 20-21 (dechallenge, rechallenge) do not apply to a single administration;
22-23 (concomitant drugs, history) are not collected by the registry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.dates import today
from events.choices import SERIOUS_CRITERIA
from events.models import AdverseEvent, FollowUpReport
from events.selectors import latest_review
from safety.facts import case_facts

NOT_COLLECTED = "Not collected by the registry"
NOT_APPLICABLE = "Not applicable (single administration of the cell product)"

# Boxes 8-12 (ICH seriousness criteria), as CIOMS I words them.
SERIOUSNESS_BOXES = {
    "death": "Patient died",
    "hospitalisation": "Involved or prolonged inpatient hospitalisation",
    "disability": "Involved persistent or significant disability or incapacity",
    "life_threatening": "Life threatening",
    "congenital_anomaly": "Congenital anomaly / birth defect",
    "medically_important": "Other medically important condition",
}


@dataclass(frozen=True)
class Box:
    number: str
    label: str
    value: str


def _date(value: dt.date | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "Unknown"


def _change_text(follow_up: FollowUpReport) -> str:
    changes = follow_up.changes or {}
    return "; ".join(f"{field}: {'-' if old in (None, '') else old} -> {new}" for field, (old, new) in changes.items())


def _reaction(event: AdverseEvent, follow_ups: list[FollowUpReport]) -> list[str]:
    """Return the paragraphs of boxes 7 + 13: the reaction, its coding, narrative, course and follow-ups."""
    coded = (
        f"MedDRA {event.meddra_version}: LLT {event.meddra_llt_name} ({event.meddra_code}); "
        f"PT {event.meddra_pt_name} ({event.meddra_pt_code}); SOC {event.meddra_soc_name} ({event.meddra_soc_code})"
        if event.meddra_version
        else ("MedDRA LLT code " + event.meddra_code if event.meddra_code else "Not coded to MedDRA")
    )
    paragraphs = [
        f"Reaction (verbatim): {event.term}. Registry category: {event.get_category_display()}. "
        f"Grade: {event.get_grade_display()}.",
        f"Coding: {coded}.",
        f"Narrative: {event.narrative or 'none given'}",
        f"Outcome: {event.get_outcome_display()}; resolved on {_date(event.resolved_on)}. "
        f"Action taken: {event.get_action_taken_display() or 'not recorded'}. "
        f"Communicable disease involved: {'yes' if event.communicable_disease else 'no'}.",
    ]
    for follow_up in follow_ups:
        changes = _change_text(follow_up)
        paragraphs.append(
            f"Follow-up {follow_up.number} (received {_date(follow_up.received_on)}): {follow_up.narrative}"
            + (f" Changes: {changes}." if changes else "")
        )
    return paragraphs


def cioms_boxes(event: AdverseEvent, *, on: dt.date | None = None) -> list[Box]:
    """Return the CIOMS I boxes of ``event``, filled from the case as it stands."""
    procedure = event.procedure
    patient, clinic = procedure.patient, procedure.clinic
    follow_ups = list(event.follow_ups.order_by("number"))
    review = latest_review(event)
    facts = case_facts(event, review)
    criteria = facts.outcomes & set(SERIOUS_CRITERIA)
    checks = [f"[{'X' if key in criteria else ' '}] {label}" for key, label in SERIOUSNESS_BOXES.items()]
    site_causality = (
        f"site: procedure {event.get_causality_procedure_display() or 'not assessed'}, "
        f"product {event.get_causality_product_display() or 'not assessed'}"
    )
    if review is not None:
        site_causality += (
            f"; reviewer: procedure {review.get_causality_procedure_display()}, "
            f"product {review.get_causality_product_display()}, {review.get_expectedness_display().lower()}"
        )
    product = (
        f"{procedure.get_cell_type_display()} ({procedure.get_cell_source_display()}, "
        f"{procedure.get_processing_display().lower() or 'processing not recorded'}); "
        f"carrier {procedure.get_carrier_display() or 'not recorded'}; lot {procedure.product_lot or 'not recorded'}"
    )
    report_type = f"Follow-up {follow_ups[-1].number}" if follow_ups else "Initial"
    dose = f"{procedure.cell_dose_millions} million cells" if procedure.cell_dose_millions is not None else "Unknown"
    if procedure.volume_ml is not None:
        dose += f" in {procedure.volume_ml} mL"
    route = ", ".join(
        part
        for part in (
            f"Injection into {procedure.get_site_display().lower()} ({procedure.get_laterality_display().lower()})",
            procedure.get_target_display(),
            f"{procedure.get_guidance_display().lower()} guidance" if procedure.guidance else "",
        )
        if part
    )
    return [
        Box("1", "Patient (registry pseudonym, not initials)", patient.registry_id),
        Box("1a", "Country", clinic.country),
        Box("2", "Year of birth", str(patient.birth_year)),
        Box("2a", "Age at onset (years, from birth year)", str(event.onset_on.year - patient.birth_year)),
        Box("3", "Sex", patient.get_sex_display()),
        Box("4-6", "Reaction onset", _date(event.onset_on) + (" (estimated)" if event.onset_estimated else "")),
        Box("7+13", "Describe reaction(s)", "\n".join(_reaction(event, follow_ups))),
        Box("8-12", "Check all appropriate to adverse reaction", "\n".join(checks)),
        Box("14", "Suspect product", product),
        Box("15", "Dose", dose),
        Box("16", "Route of administration", route),
        Box("17", "Indication for use", procedure.indication or "Not recorded"),
        Box("18", "Therapy dates", f"{_date(procedure.performed_on)} (procedure {procedure.external_id})"),
        Box("19", "Therapy duration", "Single administration"),
        Box("19a", "Causality", site_causality),
        Box("20", "Did reaction abate after stopping drug?", NOT_APPLICABLE),
        Box("21", "Did reaction reappear after reintroduction?", NOT_APPLICABLE),
        Box("22", "Concomitant drug(s) and dates of administration", NOT_COLLECTED),
        Box("23", "Other relevant history", NOT_COLLECTED),
        Box(
            "24a",
            "Name and address of manufacturer (cell source)",
            f"{clinic.name}, {clinic.city}, {clinic.country} (clinic {clinic.code})",
        ),
        Box("24b", "Manufacturer control number", event.external_id),
        Box("24c", "Date received by manufacturer", _date(event.aware_on)),
        Box("24d", "Report source", event.get_reporter_type_display()),
        Box("", "Date of this report", _date(on or today())),
        Box("25a", "Report type", report_type),
    ]
