"""The CIOMS I form of a case, read back from the PDF (pdftotext): every box, the follow-up's latest values,
the MedDRA coding, and no patient identifier but the registry's pseudonym."""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest
from django.urls import reverse

from core.dates import today
from events import services as event_services
from tests.safety.conftest import make_case

pytestmark = pytest.mark.django_db


def pdf_text(data: bytes) -> str:
    """Return the text of a PDF as pdftotext (poppler) reads it, whitespace runs collapsed to one space."""
    text = subprocess.run(["pdftotext", "-raw", "-", "-"], input=data, capture_output=True, check=True).stdout
    return re.sub(r"\s+", " ", text.decode())


@pytest.fixture
def case(alice, sam, clinic_a, meddra_27_1):
    """Return a coded case with two follow-ups (the second one recovers it) and a medical review."""
    event = make_case(
        clinic_a,
        meddra_code="94000003",
        narrative="Swollen hot knee on day 5; aspirate grew S. aureus; admitted for IV antibiotics.",
    )
    event_services.follow_up_report_create(
        actor=alice,
        event=event,
        received_on=dt.date(2026, 2, 3),
        narrative="Arthroscopic washout performed.",
        changes={"action_taken": "surgery"},
    )
    event_services.follow_up_report_create(
        actor=alice,
        event=event,
        received_on=dt.date(2026, 2, 20),
        narrative="Discharged; walking without pain.",
        changes={"outcome": "recovered_with_sequelae", "resolved_on": "2026-02-18"},
    )
    event_services.medical_review_record(
        actor=sam,
        event=event,
        serious=True,
        serious_hospitalisation=True,
        causality_procedure="probable",
        causality_product="possible",
        expectedness="unexpected",
    )
    event.refresh_from_db()
    return event


def test_the_form_carries_every_box_filled_from_the_case_as_it_stands(client, alice, case):
    client.force_login(alice)
    response = client.get(reverse("admin:safety_duereport_cioms", args=[case.pk]))
    assert response["Content-Disposition"] == f'attachment; filename="CIOMS-I-{case.external_id}.pdf"'
    text = pdf_text(response.content)
    patient, procedure = case.procedure.patient, case.procedure
    expected = [
        "CIOMS FORM - SUSPECT ADVERSE REACTION REPORT",
        f"Patient (registry pseudonym, not initials) {patient.registry_id}",
        "Country ES",
        "Year of birth 1961",
        "Age at onset (years, from birth year) 65",
        "Sex Female",
        "Reaction onset 2026-01-25",
        "Reaction (verbatim): Septic arthritis of the treated knee",
        "Registry category: Infection",
        "MedDRA 27.1: LLT Synthetic bacterial joint infection (94000003)",
        "PT Synthetic septic arthritis (93000002)",
        "Narrative: Swollen hot knee on day 5",
        # The follow-ups, and the event as they left it (the latest values).
        "Follow-up 1 (received 2026-02-03): Arthroscopic washout performed.",
        "Changes: action_taken: hospitalisation -> surgery",
        "Follow-up 2 (received 2026-02-20): Discharged; walking without pain.",
        "Outcome: Recovered with sequelae; resolved on 2026-02-18",
        "Action taken: Surgery",
        "[X] Involved or prolonged inpatient hospitalisation",
        "[ ] Patient died",
        "[ ] Life threatening",
        "[ ] Involved persistent or significant disability or incapacity",
        "Suspect product Bone marrow aspirate concentrate (Autologous, minimally manipulated)",
        f"lot {procedure.product_lot}",
        "Dose 25.00 million cells",
        "Route of administration Injection into knee (left)",
        "Indication for use Knee osteoarthritis",
        "Therapy dates 2026-01-20",
        "Therapy duration Single administration",
        "reviewer: procedure Probable / likely, product Possible, unexpected",
        "site: procedure Possible, product Unlikely",
        "Did reaction abate after stopping drug? Not applicable",
        "Did reaction reappear after reintroduction? Not applicable",
        "Concomitant drug(s) and dates of administration Not collected by the registry",
        "Other relevant history Not collected by the registry",
        "Name and address of manufacturer (cell source) Clinic A Madrid, Madrid, ES",
        f"Manufacturer control number {case.external_id}",
        "Date received by manufacturer 2026-01-30",
        "Report source Clinician / health professional",
        f"Date of this report {today():%Y-%m-%d}",
        "Report type Follow-up 2",
    ]
    missing = [field for field in expected if field not in text]
    assert missing == [], text


def test_an_uncoded_case_without_follow_ups_is_an_initial_report(client, alice, clinic_a):
    event = make_case(clinic_a)
    client.force_login(alice)
    text = pdf_text(client.get(reverse("admin:safety_duereport_cioms", args=[event.pk])).content)
    assert "Not coded to MedDRA" in text and "Report type Initial" in text and "Follow-up 1" not in text


def test_markup_in_the_narrative_prints_as_itself(client, alice, clinic_a):
    event = make_case(clinic_a, narrative="Temp <39> & rising <b>fast</b>")
    client.force_login(alice)
    text = pdf_text(client.get(reverse("admin:safety_duereport_cioms", args=[event.pk])).content)
    assert "Temp <39> & rising <b>fast</b>" in text


def test_charlie_cannot_download_clinic_as_form(client, charlie, clinic_a):
    event = make_case(clinic_a)
    client.force_login(charlie)
    assert client.get(reverse("admin:safety_duereport_cioms", args=[event.pk])).status_code == 404
