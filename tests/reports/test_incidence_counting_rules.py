"""The counting rules of DESIGN.md 2, on small registries worked out by hand.

Registry (cut-off 2024-01-01; day n = n days after the procedure):

knee, bmac unless noted (clinic A):
  K1 infection on day 0, nothing else                  -> end 0,   infection case t=0
  K2 adipose_svf, visit day 60, no event               -> end 60,  censored 60
  K3 injection-site reaction day 10, infection day 20
     and again day 40, visit day 100                   -> end 100, infection case t=20, any case t=10
  K4 withdrawn day 30, infection day 45, visit day 60  -> end 30 (withdrawal), no case
  K5 performed 2023-06-01, infection 2024-03-01        -> end = cut-off = day 214, no case
  K6 performed 2024-02-01 (after the cut-off)          -> not in the report
hip, bmac:
  H1 died day 45, nothing else                         -> end 45, censored
  H2 visit day 30, retracted infection day 50          -> end 30 (a retracted onset is no contact)
  H3 serious grade-3 infection day 30, nothing else    -> end 30, case t=30 (ties H2's censoring)
"""

from __future__ import annotations

import datetime as dt

import pgtrigger
import pytest

from registry.models import Patient
from reports.engine import IncidenceParams, compute_incidence
from tests.reports.conftest import add_event, complete_visit, make_procedure

CUTOFF = dt.date(2024, 1, 1)
D0 = dt.date(2023, 1, 15)


@pytest.fixture
def registry(clinic_a):
    k1 = make_procedure(clinic=clinic_a, performed_on=D0)
    add_event(k1, 0)
    k2 = make_procedure(clinic=clinic_a, performed_on=D0, cell_type="adipose_svf")
    complete_visit(k2, 60)
    k3 = make_procedure(clinic=clinic_a, performed_on=D0)
    add_event(k3, 10, category="injection_site_reaction")
    add_event(k3, 20)
    add_event(k3, 40)
    complete_visit(k3, 100)
    k4 = make_procedure(clinic=clinic_a, performed_on=D0, withdrawn_on=D0 + dt.timedelta(days=30))
    add_event(k4, 45)
    complete_visit(k4, 60)
    k5 = make_procedure(clinic=clinic_a, performed_on=dt.date(2023, 6, 1))
    add_event(k5, (dt.date(2024, 3, 1) - dt.date(2023, 6, 1)).days)
    k6 = make_procedure(clinic=clinic_a, performed_on=dt.date(2024, 2, 1))
    add_event(k6, 1)
    h1 = make_procedure(clinic=clinic_a, performed_on=D0, site="hip", death_date=D0 + dt.timedelta(days=45))
    h2 = make_procedure(clinic=clinic_a, performed_on=D0, site="hip")
    complete_visit(h2, 30)
    add_event(h2, 50, retracted=True)
    h3 = make_procedure(clinic=clinic_a, performed_on=D0, site="hip")
    add_event(h3, 30, grade=3, serious=True)
    return {"k1": k1, "h1": h1}


def _rows(**kwargs):
    params = IncidenceParams.build(cutoff_on=CUTOFF, **kwargs)
    return {(row.stratum, row.outcome): row for row in compute_incidence(params=params)}


def _get(rows, outcome, **stratum):
    return rows[(tuple(stratum.items()), outcome)]


def test_it_counts_cases_and_days_at_risk_by_the_rules(registry):
    rows = _rows(strata=["site"], outcomes=["infection", "any"])
    knee = _get(rows, "infection", site="knee")
    assert (knee.procedures, knee.cases, knee.person_days) == (5, 2, 0 + 60 + 20 + 30 + 214)
    assert knee.person_years == pytest.approx(324 / 365.25, rel=1e-12)
    hip = _get(rows, "infection", site="hip")
    assert (hip.procedures, hip.cases, hip.person_days) == (3, 1, 45 + 30 + 30)
    any_knee = _get(rows, "any", site="knee")
    # K3's first event of any kind is the reaction on day 10.
    assert (any_knee.cases, any_knee.person_days) == (2, 0 + 60 + 10 + 30 + 214)


def test_it_adds_a_margin_row_for_all_sites(registry):
    rows = _rows(strata=["site"], outcomes=["infection"])
    total = _get(rows, "infection", site="ALL")
    assert (total.procedures, total.cases, total.person_days) == (8, 3, 429)
    assert total.is_margin
    assert len(rows) == 3


def test_it_gives_the_wilson_interval_and_the_garwood_rate(registry):
    knee = _get(_rows(strata=["site"], outcomes=["infection"]), "infection", site="knee")
    assert knee.proportion == pytest.approx(0.4, rel=1e-12)
    assert knee.proportion_ci_low == pytest.approx(0.11762077423264788, rel=1e-9)
    assert knee.proportion_ci_high == pytest.approx(0.7692757187239871, rel=1e-9)
    assert knee.rate_per_100py == pytest.approx(225.46296296296293, rel=1e-9)
    assert knee.rate_ci_low == pytest.approx(27.304610798821976, rel=1e-9)
    assert knee.rate_ci_high == pytest.approx(814.4497440235111, rel=1e-9)


def test_it_gives_the_clopper_pearson_interval_on_request(registry):
    rows = _rows(strata=["site"], outcomes=["infection"], ci_method="clopper-pearson")
    knee = _get(rows, "infection", site="knee")
    assert knee.proportion_ci_low == pytest.approx(0.052744950526316906, rel=1e-9)
    assert knee.proportion_ci_high == pytest.approx(0.8533672003653269, rel=1e-9)


def test_it_estimates_kaplan_meier_with_a_time_zero_event(registry):
    knee = _get(_rows(strata=["site"], outcomes=["infection"]), "infection", site="knee")
    # Day 0: 1 of 5 at risk; day 20: 1 of 4. S(30) = 4/5 * 3/4.
    assert knee.km["30d"].value == pytest.approx(0.4, rel=1e-12)
    assert knee.km["30d"].ci_low == pytest.approx(0.11824359260646766, rel=1e-9)
    assert knee.km["30d"].ci_high == pytest.approx(0.8742698170055687, rel=1e-9)


def test_it_counts_an_event_before_a_censoring_on_the_same_day(registry):
    hip = _get(_rows(strata=["site"], outcomes=["infection"]), "infection", site="hip")
    # Day 30: H3's event and H2's censoring; all three still at risk, so S = 2/3.
    assert hip.km["30d"].value == pytest.approx(1 / 3, rel=1e-12)
    total = _get(_rows(strata=["site"], outcomes=["infection"]), "infection", site="ALL")
    # 7/8 * 6/7 * 5/6 (day 30: K4, H2, H3, H1, K2, K5 at risk).
    assert total.km["30d"].value == pytest.approx(3 / 8, rel=1e-12)
    assert total.km["30d"].ci_low == pytest.approx(0.13930172308646127, rel=1e-9)
    assert total.km["30d"].ci_high == pytest.approx(0.7706666775708684, rel=1e-9)


def test_it_carries_the_last_value_beyond_the_longest_follow_up_as_lifelines_does(registry):
    rows = _rows(strata=["site"], outcomes=["infection"])
    knee, hip = _get(rows, "infection", site="knee"), _get(rows, "infection", site="hip")
    # The longest knee time is 214 days: 1, 2 and 5 years repeat the estimate reached by then.
    assert knee.km["1y"] == knee.km["2y"] == knee.km["5y"]
    assert knee.km["1y"].value is not None
    # H1 is followed to day 45 and nobody else longer: the 30-day figure carries on.
    assert hip.km["1y"] == hip.km["5y"]
    assert hip.km["30d"].value is not None


def test_it_counts_serious_and_grade_3_events(registry):
    rows = _rows(strata=["site"], outcomes=["serious", "grade_3_plus"])
    for outcome in ("serious", "grade_3_plus"):
        assert _get(rows, outcome, site="hip").cases == 1
        assert _get(rows, outcome, site="knee").cases == 0
        assert _get(rows, outcome, site="knee").person_days == 0 + 60 + 100 + 30 + 214


def test_a_stratum_without_cases_has_zero_incidence_and_a_zero_lower_limit(registry):
    knee = _get(_rows(strata=["site"], outcomes=["neoplasm"]), "neoplasm", site="knee")
    assert (knee.cases, knee.proportion, knee.rate_per_100py, knee.rate_ci_low) == (0, 0.0, 0.0, 0.0)
    assert knee.km["30d"].value == 0.0
    assert (knee.km["30d"].ci_low, knee.km["30d"].ci_high) == (0.0, 0.0)


def test_the_onset_window_lets_only_early_events_qualify_and_ends_person_time(registry):
    knee = _get(_rows(strata=["site"], outcomes=["infection"], onset_window_days=15), "infection", site="knee")
    # K3's first infection (day 20) is outside the window: K3 is at risk to day 15 without a case
    # (DESIGN 2b: B = min(O, T + N)); so is everyone followed beyond day 15 (60, 100, 30, 214 days).
    assert (knee.cases, knee.person_days) == (1, 0 + 15 + 15 + 15 + 15)
    edge = _get(_rows(strata=["site"], outcomes=["infection"], onset_window_days=20), "infection", site="knee")
    assert edge.cases == 2  # onset - performed_on <= N is inclusive


def test_it_crosses_site_and_cell_type_with_every_margin(registry):
    rows = _rows(strata=["site", "cell_type"], outcomes=["infection"])
    keys = {dict(stratum)["site"] + "/" + dict(stratum)["cell_type"] for stratum, _ in rows}
    assert keys == {
        "knee/bmac",
        "knee/adipose_svf",
        "hip/bmac",
        "knee/ALL",
        "hip/ALL",
        "ALL/bmac",
        "ALL/adipose_svf",
        "ALL/ALL",
    }
    svf = _get(rows, "infection", site="knee", cell_type="adipose_svf")
    assert (svf.procedures, svf.cases, svf.person_days) == (1, 0, 60)
    bmac = _get(rows, "infection", site="ALL", cell_type="bmac")
    assert (bmac.procedures, bmac.cases, bmac.person_days) == (7, 3, 369)


def test_it_bands_ages_and_years(registry, clinic_a):
    make_procedure(clinic=clinic_a, performed_on=D0, birth_year=1990)  # 33 at procedure
    make_procedure(clinic=clinic_a, performed_on=D0, birth_year=1943)  # 80
    rows = _rows(strata=["age_band", "year"], outcomes=["any"])
    assert _get(rows, "any", age_band="<40", year="ALL").procedures == 1
    assert _get(rows, "any", age_band="80+", year="2023").procedures == 1
    assert _get(rows, "any", age_band="50-59", year="2023").procedures == 8
    order = [dict(stratum)["age_band"] for stratum, _ in rows if dict(stratum)["year"] == "ALL"]
    assert order == ["<40", "50-59", "80+", "ALL"]


def test_a_report_without_strata_is_one_total_row(registry):
    rows = _rows(strata=[], outcomes=["infection"])
    assert [(r.procedures, r.cases) for r in rows.values()] == [(8, 3)]


def test_a_scoped_report_reads_only_its_clinics(registry, clinic_b):
    other = make_procedure(clinic=clinic_b, performed_on=D0)
    add_event(other, 1)
    everyone = _get(_rows(strata=["site"], outcomes=["infection"]), "infection", site="ALL")
    assert (everyone.procedures, everyone.cases) == (9, 4)
    scoped = _rows(strata=["site"], outcomes=["infection"], clinic_ids=[registry["k1"].clinic_id])
    total = _get(scoped, "infection", site="ALL")
    assert (total.procedures, total.cases) == (8, 3)


def test_an_empty_registry_gives_an_empty_total(db):
    rows = _rows(strata=["site"], outcomes=["any"])
    (total,) = rows.values()
    assert (total.procedures, total.cases, total.proportion, total.rate_per_100py) == (0, 0, None, None)
    assert total.km["30d"].value is None


def test_visits_and_a_death_after_the_cut_off_end_observation_at_the_cut_off(clinic_a):
    performed = dt.date(2023, 6, 1)
    late = make_procedure(clinic=clinic_a, performed_on=performed, death_date=dt.date(2024, 3, 1))
    complete_visit(late, (dt.date(2024, 2, 1) - performed).days)
    (row,) = _rows(strata=[], outcomes=["any"]).values()
    assert (row.procedures, row.cases, row.person_days) == (1, 0, 214)


def test_a_procedure_after_the_patients_withdrawal_leaves_the_denominator(clinic_a):
    # Entry and the database refuse such a procedure now; rows stored before those rules have no time at
    # risk (B < A) and leave the denominator (DESIGN 2b, its one exception to the figures of section 2).
    proc = make_procedure(clinic=clinic_a, performed_on=D0)
    add_event(proc, 0)
    complete_visit(proc, 30)
    with pgtrigger.ignore("registry.Patient:patient_dates_match_its_rows"):
        Patient.objects.filter(pk=proc.patient_id).update(withdrawn_on=dt.date(2023, 1, 12))
    (row,) = _rows(strata=[], outcomes=["infection"]).values()
    assert (row.procedures, row.cases, row.person_days) == (0, 0, 0)


def test_a_retracted_first_event_leaves_the_next_one_as_the_case(clinic_a):
    proc = make_procedure(clinic=clinic_a, performed_on=D0)
    add_event(proc, 5, retracted=True)
    add_event(proc, 12)
    complete_visit(proc, 90)
    (row,) = _rows(strata=[], outcomes=["infection"]).values()
    assert (row.cases, row.person_days) == (1, 12)


def test_an_event_on_the_horizon_day_counts_at_that_horizon(clinic_a):
    on_day_30 = make_procedure(clinic=clinic_a, performed_on=D0)
    add_event(on_day_30, 30)
    complete_visit(on_day_30, 60)
    followed = make_procedure(clinic=clinic_a, performed_on=D0)
    complete_visit(followed, 60)
    (row,) = _rows(strata=[], outcomes=["infection"]).values()
    assert row.km["30d"].value == pytest.approx(0.5, rel=1e-12)
