"""The incidence engine counts adverse events only: a patient's unconfirmed report never counts, and the
same report confirmed by a clinician (an adverse event reported by the patient) does."""

from __future__ import annotations

import pytest

from core.dates import today
from patients import services
from reports.engine import IncidenceParams, compute_incidence
from tests.patients.conftest import procedure_of

pytestmark = pytest.mark.django_db


def _infection_cases():
    params = IncidenceParams.build(cutoff_on=today(), strata=[], outcomes=["infection"])
    (row,) = [r for r in compute_incidence(params=params) if r.outcome == "infection"]
    return row.procedures, row.cases


def test_an_unconfirmed_report_does_not_count_and_a_confirmed_one_does(alice, clinic_a, link_x):
    procedure_of(clinic_a)  # a second procedure with nothing reported
    link, _ = link_x
    report = services.patient_diary_save(link=link, data={"pain": 4, "swelling": "moderate", "discharge": True})
    assert report.urgent
    assert _infection_cases() == (2, 0)
    services.patient_report_confirm(
        actor=alice,
        report=report,
        category="infection",
        term="Discharge at the injection site",
        grade=2,
        onset_on=today(),
    )
    assert _infection_cases() == (2, 1)


def test_a_rejected_report_does_not_count(alice, link_x):
    link, _ = link_x
    report = services.patient_diary_save(link=link, data={"pain": 4, "swelling": "none", "discharge": True})
    services.patient_report_reject(actor=alice, report=report, reason="Dressing fluid, seen at the clinic")
    assert _infection_cases() == (1, 0)
