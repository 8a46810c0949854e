"""The patient unit and Aalen-Johansen, against independent computations (DESIGN 2b).

The patient unit on a generated registry where a third of the patients have a later procedure
(some after the cut-off) is checked against the unit-by-unit reference of
test_incidence_cross_check; the Aalen-Johansen column against lifelines' AalenJohansenFitter
on a registry built without ties.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from lifelines import AalenJohansenFitter

from registry.models import Patient
from reports.choices import HORIZONS, OUTCOMES
from reports.engine import IncidenceParams, compute_incidence, iter_km_curves
from tests.reports.conftest import add_event, complete_visit, make_procedure
from tests.reports.generated_registry import build_generated_registry
from tests.reports.test_incidence_counting_rules import D0
from tests.reports.test_incidence_cross_check import CUTOFF, DEFAULT_WINDOWS, _compare, _reference


@pytest.fixture(scope="module")
def repeated(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        clinics = build_generated_registry(procedures=1500, repeat_share=0.35, seed=7)
        yield clinics
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_the_patient_unit_matches_the_reference(repeated):
    strata = ["site", "clinic"]
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=strata, unit="patient")
    checked = _compare(params, _reference(strata=strata, outcomes=OUTCOMES, unit="patient"))
    assert checked > 100
    patients = Patient.objects.filter(procedures__performed_on__lte=CUTOFF).distinct().count()
    total = {r.outcome: r for r in compute_incidence(params=params) if all(v == "ALL" for _, v in r.stratum)}
    assert total["any"].procedures == patients
    by_procedure = {
        r.outcome: r
        for r in compute_incidence(params=IncidenceParams.build(cutoff_on=CUTOFF, strata=strata))
        if all(v == "ALL" for _, v in r.stratum)
    }
    assert by_procedure["any"].procedures > patients  # the later procedures are units of their own there


@pytest.mark.django_db
def test_the_patient_unit_with_registry_windows_and_a_scope_matches_the_reference(repeated):
    strata = ["age_band"]
    scope = [repeated[1].pk]
    params = IncidenceParams.build(
        cutoff_on=CUTOFF, strata=strata, unit="patient", windows=DEFAULT_WINDOWS, clinic_ids=scope
    )
    _compare(
        params,
        _reference(strata=strata, outcomes=OUTCOMES, unit="patient", windows=DEFAULT_WINDOWS, clinic_ids=scope),
    )


@pytest.mark.django_db
def test_aalen_johansen_matches_lifelines_on_tie_free_data(clinic_a):
    # Durations all different: 20 units, cases, competing deaths and censorings on distinct days.
    durations, status = [], []
    for i in range(20):
        proc = make_procedure(clinic=clinic_a, performed_on=D0)
        day = 11 + 37 * i  # 11, 48, ..., 714: distinct, some past 1 year
        kind = i % 3
        if kind == 0:
            add_event(proc, day)
            status.append(1)
        elif kind == 1:
            complete_visit(proc, day - 1)
            Patient.objects.filter(pk=proc.patient_id).update(death_date=D0 + dt.timedelta(days=day))
            status.append(2)
        else:
            complete_visit(proc, day)
            status.append(0)
        durations.append(day)
    (row,) = compute_incidence(
        params=IncidenceParams.build(
            # Only clinic A: the module's generated registry may still be in the database.
            cutoff_on=dt.date(2026, 1, 1),
            strata=[],
            outcomes=["infection"],
            clinic_ids=[clinic_a.pk],
        )
    )
    ajf = AalenJohansenFitter(calculate_variance=False).fit(durations, status, event_of_interest=1)
    curve = ajf.cumulative_density_
    for label, horizon in HORIZONS:
        expected = float(curve[curve.index <= horizon].iloc[-1, 0])
        assert row.aj[label] == pytest.approx(expected, abs=1e-12), label
    # Kaplan-Meier censors the deaths, so it overstates the cumulative incidence past the first death.
    assert row.km["2y"].value > row.aj["2y"]


@pytest.mark.django_db
def test_the_curves_pass_through_every_kaplan_meier_and_aalen_johansen_figure(repeated):
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=["site"], windows=DEFAULT_WINDOWS, unit="patient")
    rows = {(r.stratum, r.outcome): r for r in compute_incidence(params=params)}
    checked = 0
    for outcome, curves in iter_km_curves(params=params):
        for curve in curves:
            row = rows[(curve.stratum, outcome)]
            assert curve.procedures == row.procedures
            for label, horizon in HORIZONS:
                if row.km[label].value is None:
                    continue
                assert curve.at(horizon) == pytest.approx(row.km[label].value, abs=1e-12)
                assert curve.at(horizon, aj=True) == pytest.approx(row.aj[label], abs=1e-12)
                checked += 1
    assert checked > 100
