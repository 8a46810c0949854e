"""Rows entered in error leave the statistics: retracted procedures, patients and visits (DESIGN.md 2).

Registry (clinic A, knee / bmac, cut-off 2024-01-01):
  P1 infection on day 10, visit day 100        -> case, 10 days
  P2 visit day 200                             -> censored at 200
  P3 infection on day 5 (its procedure is retracted: entered twice)
"""

from __future__ import annotations

import datetime as dt

import pytest

from registry import services
from reports.engine import IncidenceParams, compute_incidence
from tests.reports.conftest import add_event, complete_visit, make_procedure
from tests.reports.documents_data import finished_run

pytestmark = pytest.mark.django_db

CUTOFF = dt.date(2024, 1, 1)
D0 = dt.date(2023, 1, 15)


def _overall(outcome: str = "infection"):
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=[], outcomes=[outcome])
    (row,) = compute_incidence(params=params)
    return row


@pytest.fixture
def registry(clinic_a):
    p1 = make_procedure(clinic=clinic_a, performed_on=D0)
    add_event(p1, 10)
    complete_visit(p1, 100)
    p2 = make_procedure(clinic=clinic_a, performed_on=D0)
    complete_visit(p2, 200)
    p3 = make_procedure(clinic=clinic_a, performed_on=D0)
    add_event(p3, 5)
    return {"p1": p1, "p2": p2, "p3": p3}


def test_a_retracted_procedure_leaves_the_denominator_and_its_events_the_cases(registry):
    before = _overall()
    assert (before.procedures, before.cases, before.person_days) == (3, 2, 10 + 200 + 5)
    services.procedure_retract(actor=None, procedure=registry["p3"], reason="Entered twice.")
    after = _overall()
    assert (after.procedures, after.cases, after.person_days) == (2, 1, 10 + 200)


def test_the_procedures_of_a_retracted_patient_leave_the_report(registry):
    services.patient_retract(actor=None, patient=registry["p2"].patient, reason="Not our patient.")
    row = _overall()
    assert (row.procedures, row.cases, row.person_days) == (2, 2, 10 + 5)


def test_a_retracted_visit_is_no_contact(registry):
    visit = registry["p2"].visits.get(completed_on__isnull=False)
    services.visit_retract(actor=None, visit=visit, reason="Recorded for the wrong patient.")
    row = _overall()
    assert (row.procedures, row.cases, row.person_days) == (3, 2, 10 + 0 + 5)  # P2 ends on its procedure day


def test_a_runs_counted_events_leave_out_those_of_a_retracted_procedure(root, registry):
    services.procedure_retract(actor=None, procedure=registry["p3"], reason="Entered twice.")
    run = finished_run(actor=root, strata=(), outcomes=["infection"], cutoff_on=CUTOFF)
    assert run.listing_total == 1
    assert list(run.listing_rows.values_list("procedure_id", flat=True)) == [registry["p1"].pk]
