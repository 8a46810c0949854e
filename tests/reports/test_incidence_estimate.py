"""reports.engine.estimate_result_rows: the size of a report, known before it runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from reports.engine import IncidenceParams, compute_incidence, estimate_result_rows
from tests.reports.generated_registry import build_generated_registry

CUTOFF = dt.date(2024, 6, 30)
EIGHT = ["site", "cell_type", "cell_source", "clinic", "country", "sex", "age_band", "year"]


@pytest.fixture(scope="module")
def generated(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        clinics = build_generated_registry(procedures=1500)
        yield clinics
        transaction.set_rollback(True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("strata", "outcomes", "scoped"),
    [
        ([], ["any"], False),
        (["site"], None, False),
        (["site", "cell_type"], ["any", "infection"], True),
        (["clinic", "country", "sex"], ["neoplasm"], False),
        (["age_band", "year", "cell_source"], ["any", "serious", "grade_3_plus"], True),
        (EIGHT, ["any"], False),
    ],
)
def test_the_estimate_is_exactly_the_number_of_rows_the_engine_returns(generated, strata, outcomes, scoped):
    clinic_ids = [generated[0].pk] if scoped else None
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=strata, outcomes=outcomes, clinic_ids=clinic_ids)
    estimate = estimate_result_rows(params=params)
    assert estimate.exact
    assert estimate.rows == len(compute_incidence(params=params)) == estimate.groups * len(params.outcomes)


@pytest.mark.django_db
def test_far_over_the_limit_it_stops_at_a_lower_bound_that_is_still_over_it(generated):
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=EIGHT)
    exact = estimate_result_rows(params=params)
    bounded = estimate_result_rows(params=params, limit=1000)
    assert not bounded.exact
    assert 1000 < bounded.rows <= exact.rows


@pytest.mark.django_db
def test_a_report_of_no_procedures_has_its_empty_total_rows(db):
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=["site", "sex"], outcomes=["any", "infection"])
    estimate = estimate_result_rows(params=params)
    assert (estimate.rows, estimate.exact) == (len(compute_incidence(params=params)), True)
