"""manage.py compute_signals (DESIGN.md 2b "Signals"): cohort screen and disproportionality.

Every column is checked against an independent computation written here from the per-unit table of
tests/reports/test_compare_providers.py (the DESIGN 2b unit rules by hand) and the planned events:
band splitting and the Mantel-Haenszel sums in plain Python loops, Fisher's exact test
(scipy.stats.fisher_exact), Benjamini-Hochberg (statsmodels multipletests 'fdr_bh'), chi-square with
Yates' correction (scipy.stats.chi2_contingency), PRR, ROR and IC by their formulas; hand-worked
numbers pin the formulas themselves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import math
import random

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy import stats
from statsmodels.stats.multitest import multipletests

from reports.engine.signals import (
    CohortCounts,
    band_split,
    bh_qvalues,
    chi2_yates,
    disproportionality,
    fisher_p,
    mh_rate_ratio,
    risk_ratio,
    signal_rows,
)
from tests.reports.test_compare_providers import (
    CUTOFF,
    OPEN_WINDOWS,
    OUTCOMES,
    REGISTRY_WINDOWS,
    PlannedUnit,
    assert_rows,
    build_registry,
    infection,
    make_clinics,
    run_csv,
    unit_table,
)

ATTRIBUTES = (
    "cell_type",
    "cell_source",
    "processing",
    "carrier",
    "guidance",
    "site",
    "clinic",
    "country",
    "product_lot",
)
SIGNAL_COLUMNS = [
    *("attribute", "value", "outcome", "basis", "procedures", "cases", "person_years"),
    *("rest_procedures", "rest_cases", "rest_person_years", "ratio", "ratio_ci_low", "ratio_ci_high"),
    *("p_value", "q_value", "events_a", "events_b", "events_c", "events_d", "prr", "prr_ci_low", "prr_ci_high"),
    *("ror", "ror_ci_low", "ror_ci_high", "chi2_yates", "ic", "ic025", "signal", "evans_signal"),
]
BANDS = ((0, 30), (30, 365), (365, 1826), (1826, math.inf))


# ---------------------------------------------------------------------------------------------
# The independent screen


def _bands_of(units) -> tuple[list[float], list[int]]:
    """Return (days, cases) per band of units given as (d, y): plain loops, DESIGN 2b's band rule."""
    days, cases = [0.0] * 4, [0] * 4
    for d, y in units:
        for j, (lo, hi) in enumerate(BANDS):
            days[j] += max(0, min(d, hi) - lo)
            if y == 1 and lo <= d < hi:
                cases[j] += 1
    return days, cases


def _mh(one, rest):
    """Return (R, low, high, p) of the Mantel-Haenszel rate ratio, one against rest, over the bands."""
    d1, c1 = _bands_of(one)
    d0, c0 = _bands_of(rest)
    num = den = grv = obs = exp = var = 0.0
    for j in range(4):
        py1, py0 = d1[j] / 365.25, d0[j] / 365.25
        py = py1 + py0
        if py <= 0:
            continue
        num += c1[j] * py0 / py
        den += c0[j] * py1 / py
        grv += py1 * py0 * (c1[j] + c0[j]) / py**2
        obs += c1[j]
        exp += (c1[j] + c0[j]) * py1 / py
        var += (c1[j] + c0[j]) * py1 * py0 / py**2
    ratio = low = high = p = None
    if num > 0 and den > 0:
        ratio = num / den
        se = math.sqrt(grv / (num * den))
        low, high = math.exp(math.log(ratio) - 1.96 * se), math.exp(math.log(ratio) + 1.96 * se)
    if var > 0:
        p = float(stats.chi2.sf((obs - exp) ** 2 / var, 1))
    return ratio, low, high, p


def _rr(c1, n1, c0, n0):
    if not (c1 and c0 and n1 and n0):
        return None, None, None
    ratio = (c1 / n1) / (c0 / n0)
    se = math.sqrt(1 / c1 - 1 / n1 + 1 / c0 - 1 / n0)
    return ratio, math.exp(math.log(ratio) - 1.96 * se), math.exp(math.log(ratio) + 1.96 * se)


def _events(plan, clinics, cutoff=CUTOFF) -> list[tuple[dict, str]]:
    """Return (attributes of the event's own procedure, category) of the events disproportionality counts."""
    out = []
    for u in plan:
        if u.retracted or u.performed > cutoff:
            continue
        clinic = clinics[u.clinic]
        attrs = {
            **{a: getattr(u, a) for a in ATTRIBUTES if a not in ("clinic", "country")},
            "clinic": clinic.code,
            "country": clinic.country,
        }
        for category, day, _grade, _serious, retracted in u.events:
            if not retracted and u.performed + dt.timedelta(days=day) <= cutoff:
                out.append((attrs, category))
    return out


def expected_signal_rows(table, events, *, by=ATTRIBUTES, windows) -> list[dict]:
    outcomes = [o for o in OUTCOMES if o != "any"]
    rows = []
    for attribute in by:
        values = {v for v in table[attribute] if v} | {attrs[attribute] for attrs, _ in events if attrs[attribute]}
        for value in sorted(values):
            for outcome in outcomes:
                basis = "proportion" if windows[outcome][1] is not None else "person_time"
                den = table[table[f"d_{outcome}"].notna()]
                mine, rest = den[den[attribute] == value], den[den[attribute] != value]
                n1, n0 = len(mine), len(rest)
                c1, c0 = int((mine[f"y_{outcome}"] == 1).sum()), int((rest[f"y_{outcome}"] == 1).sum())
                is_tested = c1 + c0 >= 1 and n1 >= 1 and n0 >= 1
                if basis == "person_time":
                    ratio, low, high, p = _mh(
                        list(zip(mine[f"d_{outcome}"], mine[f"y_{outcome}"], strict=True)),
                        list(zip(rest[f"d_{outcome}"], rest[f"y_{outcome}"], strict=True)),
                    )
                else:
                    ratio, low, high = _rr(c1, n1, c0, n0)
                    p = stats.fisher_exact([[c1, n1 - c1], [c0, n0 - c0]]).pvalue if is_tested else None
                row = {
                    "attribute": attribute,
                    "value": value,
                    "outcome": outcome,
                    "basis": basis,
                    "procedures": n1,
                    "cases": c1,
                    "person_years": float(mine[f"d_{outcome}"].sum()) / 365.25,
                    "rest_procedures": n0,
                    "rest_cases": c0,
                    "rest_person_years": float(rest[f"d_{outcome}"].sum()) / 365.25,
                    "ratio": ratio,
                    "ratio_ci_low": low,
                    "ratio_ci_high": high,
                    "p_value": p if is_tested else None,
                }
                row.update(_disproportionality(events, attribute, value, outcome))
                rows.append(row)
    tested = [r for r in rows if r["p_value"] is not None]
    if tested:
        q = multipletests([r["p_value"] for r in tested], method="fdr_bh")[1]
        for r, qv in zip(tested, q, strict=True):
            r["q_value"] = float(qv)
    for r in rows:
        r.setdefault("q_value", None)
        r["signal"] = bool(
            r["ratio"] is not None and r["ratio"] > 1 and r["q_value"] is not None and r["q_value"] < 0.05
        ) and (r["cases"] >= 3)
    return rows


def _disproportionality(events, attribute, value, outcome) -> dict:
    names = ["events_a", "events_b", "events_c", "events_d", "prr", "prr_ci_low", "prr_ci_high"]
    names += ["ror", "ror_ci_low", "ror_ci_high", "chi2_yates", "ic", "ic025"]
    if outcome in ("serious", "grade_3_plus"):
        return {**dict.fromkeys(names), "evans_signal": False}
    a = sum(1 for attrs, cat in events if attrs[attribute] == value and cat == outcome)
    b = sum(1 for attrs, cat in events if attrs[attribute] == value and cat != outcome)
    c = sum(1 for attrs, cat in events if attrs[attribute] != value and cat == outcome)
    d = sum(1 for attrs, cat in events if attrs[attribute] != value and cat != outcome)
    n = a + b + c + d
    out = dict.fromkeys(names)
    out.update(events_a=a, events_b=b, events_c=c, events_d=d)
    if a and c:
        prr = (a / (a + b)) / (c / (c + d))
        se = math.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
        out.update(
            prr=prr, prr_ci_low=math.exp(math.log(prr) - 1.96 * se), prr_ci_high=math.exp(math.log(prr) + 1.96 * se)
        )
    if a and b and c and d:
        ror = a * d / (b * c)
        se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        out.update(
            ror=ror, ror_ci_low=math.exp(math.log(ror) - 1.96 * se), ror_ci_high=math.exp(math.log(ror) + 1.96 * se)
        )
    if (a + b) and (c + d) and (a + c) and (b + d):
        out["chi2_yates"] = float(stats.chi2_contingency([[a, b], [c, d]], correction=True).statistic)
    if n:
        e = (a + b) * (a + c) / n
        out["ic"] = math.log2((a + 0.5) / (e + 0.5))
        out["ic025"] = out["ic"] - 3.3 * (a + 0.5) ** -0.5 - 2 * (a + 0.5) ** -1.5
    out["evans_signal"] = bool(
        a >= 3
        and out["prr"] is not None
        and out["prr"] >= 2
        and out["chi2_yates"] is not None
        and out["chi2_yates"] >= 4
    )
    return out


# ---------------------------------------------------------------------------------------------
# The registry of these tests

SIGNAL_CLINICS = {"S-ES": ("ES", True), "S-DE": ("DE", False), "S-FR": ("FR", True)}


def signal_plan(seed: int = 7) -> list[PlannedUnit]:
    """Return a reproducible plan: a bad product lot (infections), mixed attributes, every unit guided by
    ultrasound (a value with no rest), some with no recorded processing (unknown), a case on day 30."""
    rng = random.Random(seed)
    today = dt.date.today()
    plan = []
    for i in range(90):
        lot = "BAD-LOT" if i % 10 == 0 else rng.choice(["L-1", "L-2", "L-3", "L-4"])
        performed = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(0, 5 * 365))
        limit = (today - performed).days
        events = []
        if rng.random() < (0.8 if lot == "BAD-LOT" else 0.08):
            events.append(("infection", rng.randrange(1, 40), rng.choice([1, 2, 3]), rng.random() < 0.4, False))
        if rng.random() < 0.5:
            events.append(("injection_site_reaction", rng.randrange(0, 4), 1, False, rng.random() < 0.1))
        if rng.random() < 0.2:
            events.append(("systemic_reaction", rng.randrange(0, 9), rng.choice([1, 2]), False, False))
        if rng.random() < 0.12:
            events.append(("neoplasm", rng.randrange(0, 2200), 3, True, False))
        if rng.random() < 0.12:
            events.append(
                ("ectopic_tissue", rng.choice([30, 29, 31, 364, 365, rng.randrange(0, 2000)]), 2, False, False)
            )
        cell_type = rng.choice(["bmac", "adipose_svf", "umbilical_cord_msc"])
        plan.append(
            PlannedUnit(
                clinic=rng.choice(list(SIGNAL_CLINICS)),
                performed=performed,
                site=rng.choice(["knee", "hip", "shoulder"]),
                cell_type=cell_type,
                cell_source="allogeneic" if cell_type == "umbilical_cord_msc" else "autologous",
                processing=rng.choice(["minimally_manipulated", "culture_expanded", ""]),
                carrier=rng.choice(["saline", "platelet_lysate", "hyaluronic_acid"]),
                guidance="ultrasound",
                product_lot=lot,
                sex=rng.choice("FM"),
                visit_day=rng.choice([None, 2, 30, 200, 800, 2000]),
                events=[e for e in events if e[1] <= limit],
            )
        )
    # A case exactly on day 30 (band [30, 365)), and a lot seen only after the cut-off.
    plan.append(
        PlannedUnit(
            clinic="S-ES",
            performed=dt.date(2021, 5, 5),
            product_lot="L-1",
            events=[("ectopic_tissue", 30, 2, False, False)],
        )
    )
    plan.append(
        PlannedUnit(
            clinic="S-DE", performed=dt.date(2024, 9, 1), product_lot="LATE", events=[("infection", 1, 1, False, False)]
        )
    )
    return plan


@pytest.fixture
def registry(db):
    clinics = make_clinics(SIGNAL_CLINICS)
    plan = signal_plan()
    build_registry(clinics, plan)
    return clinics, plan


# ---------------------------------------------------------------------------------------------
# Command output against the independent computation


@pytest.mark.parametrize("windows", ["open", "registry"])
def test_every_column_matches_the_independent_screen(registry, windows):
    clinics, plan = registry
    header, rows = run_csv("compute_signals", "--cutoff", "2024-06-30", "--windows", windows, "--format", "csv")
    assert header == SIGNAL_COLUMNS
    chosen = REGISTRY_WINDOWS if windows == "registry" else OPEN_WINDOWS
    table = unit_table(plan, clinics, windows=chosen)
    want = expected_signal_rows(table, _events(plan, clinics), windows=chosen)
    assert_rows(rows, want, ("attribute", "value", "outcome"))
    # Order: attribute as asked, value, outcome in report order; never `any`; unknown is no value.
    keys = [(ATTRIBUTES.index(r["attribute"]), r["value"], OUTCOMES.index(r["outcome"])) for r in rows]
    assert keys == sorted(keys)
    assert "any" not in {r["outcome"] for r in rows}
    assert "" not in {r["value"] for r in rows}
    assert "LATE" not in {r["value"] for r in rows}
    # The screen finds the bad lot.
    bad = next(r for r in rows if (r["value"], r["outcome"]) == ("BAD-LOT", "infection"))
    assert bad["signal"] == "true" and bad["evans_signal"] == "true"


def test_a_value_every_unit_has_is_not_tested(registry):
    _, rows = run_csv("compute_signals", "--by", "guidance", "--cutoff", "2024-06-30")
    assert {r["value"] for r in rows} == {"ultrasound"}
    for r in rows:
        assert r["rest_procedures"] == "0" and r["rest_cases"] == "0"
        assert (r["ratio"], r["p_value"], r["q_value"], r["signal"]) == ("", "", "", "false")
    # Every event is guided by ultrasound: c = d = 0, so PRR, ROR and chi-square are empty; IC is not.
    infection = next(r for r in rows if r["outcome"] == "infection")
    assert (infection["events_c"], infection["events_d"]) == ("0", "0")
    assert (infection["prr"], infection["ror"], infection["chi2_yates"]) == ("", "", "")
    assert infection["ic"] == "0.0"


def test_event_columns_are_empty_for_serious_and_grade_3_plus(registry):
    _, rows = run_csv("compute_signals", "--by", "product_lot", "--cutoff", "2024-06-30")
    for r in rows:
        if r["outcome"] in ("serious", "grade_3_plus"):
            assert all(r[c] == "" for c in SIGNAL_COLUMNS[15:28]), r
            assert r["evans_signal"] == "false"
            assert r["procedures"] != ""
        else:
            assert r["events_a"] != "" and r["ic"] != ""


def test_q_values_are_benjamini_hochberg_over_every_attribute_and_outcome(registry):
    _, alone = run_csv("compute_signals", "--by", "product_lot", "--cutoff", "2024-06-30")
    _, together = run_csv("compute_signals", "--by", "product_lot,carrier,site", "--cutoff", "2024-06-30")
    lots = [r for r in together if r["attribute"] == "product_lot"]
    assert [r["p_value"] for r in lots] == [r["p_value"] for r in alone]
    # More tests in the run: the same p-values get other q-values (over all tested rows together).
    assert [r["q_value"] for r in lots] != [r["q_value"] for r in alone]
    p = [float(r["p_value"]) for r in together if r["p_value"]]
    q = [float(r["q_value"]) for r in together if r["q_value"]]
    assert q == pytest.approx(list(multipletests(p, method="fdr_bh")[1]), rel=1e-12)


def test_the_rate_ratio_splits_days_into_bands_and_a_day_30_case_falls_in_the_second(db):
    clinics = make_clinics({"B-1": ("ES", True)})
    d = dt.date(2020, 1, 1)
    plan = [
        PlannedUnit(clinic="B-1", performed=d, product_lot="L1", events=[("ectopic_tissue", 30, 1, False, False)]),
        PlannedUnit(clinic="B-1", performed=d, product_lot="L1", visit_day=400),
        PlannedUnit(clinic="B-1", performed=d, product_lot="L2", events=[("ectopic_tissue", 10, 1, False, False)]),
        PlannedUnit(clinic="B-1", performed=d, product_lot="L2", visit_day=100),
    ]
    build_registry(clinics, plan)
    _, rows = run_csv("compute_signals", "--by", "product_lot", "--cutoff", "2024-06-30")
    l1 = next(r for r in rows if (r["value"], r["outcome"]) == ("L1", "ectopic_tissue"))
    # Days per band [0,30) [30,365) [365,1826): L1 30+30, 0+335, 0+35 (the day-30 case in the second band);
    # L2 10+30, 0+70, 0. Cases: L1 one in band 2, L2 one in band 1. Ratios of days are ratios of PY.
    num = 1 * 70 / 405  # band 2: c1 PY0 / PY
    den = 1 * 60 / 100  # band 1: c0 PY1 / PY
    v = (60 * 40 / 100**2 + 335 * 70 / 405**2) / (num * den)
    expected = 60 / 100 + 335 / 405
    variance = 60 * 40 / 100**2 + 335 * 70 / 405**2
    assert float(l1["ratio"]) == pytest.approx(num / den, rel=1e-12)
    assert float(l1["ratio_ci_low"]) == pytest.approx(math.exp(math.log(num / den) - 1.96 * math.sqrt(v)), rel=1e-12)
    assert float(l1["ratio_ci_high"]) == pytest.approx(math.exp(math.log(num / den) + 1.96 * math.sqrt(v)), rel=1e-12)
    assert float(l1["p_value"]) == pytest.approx(stats.chi2.sf((1 - expected) ** 2 / variance, 1), rel=1e-12)
    assert (l1["procedures"], l1["cases"], l1["rest_procedures"], l1["rest_cases"]) == ("2", "1", "2", "1")
    assert float(l1["person_years"]) == pytest.approx(430 / 365.25, rel=1e-15)
    # Had the case counted in the first band, R would have been (1 * 40/100) / (1 * 60/100).
    assert float(l1["ratio"]) != pytest.approx(40 / 60)


def test_proportions_use_fisher_and_the_risk_ratio(db):
    clinics = make_clinics({"F-1": ("ES", True)})
    d = dt.date(2020, 1, 1)
    plan = [PlannedUnit(clinic="F-1", performed=d, product_lot="A", visit_day=100) for _ in range(4)]
    plan += [PlannedUnit(clinic="F-1", performed=d, product_lot="B", visit_day=100) for _ in range(6)]
    for u in plan[:3] + plan[4:5]:
        u.events = [("infection", 5, 1, False, False)]
    build_registry(clinics, plan)
    _, rows = run_csv("compute_signals", "--by", "product_lot", "--cutoff", "2024-06-30", "--windows", "registry")
    a = next(r for r in rows if (r["value"], r["outcome"]) == ("A", "infection"))
    assert a["basis"] == "proportion"
    assert float(a["ratio"]) == pytest.approx((3 / 4) / (1 / 6), rel=1e-14)
    se = math.sqrt(1 / 3 - 1 / 4 + 1 / 1 - 1 / 6)
    assert float(a["ratio_ci_low"]) == pytest.approx(math.exp(math.log(4.5) - 1.96 * se), rel=1e-12)
    assert float(a["p_value"]) == stats.fisher_exact([[3, 1], [1, 5]]).pvalue
    # A value with no case anywhere (neoplasm): untested, empty p and q.
    neo = next(r for r in rows if (r["value"], r["outcome"]) == ("A", "neoplasm"))
    assert (neo["p_value"], neo["q_value"], neo["ratio"]) == ("", "", "")


def test_the_patient_unit_and_registry_windows_change_what_they_should(db):
    clinics = make_clinics({"P-1": ("ES", True), "P-2": ("DE", False)})
    d = dt.date
    plan = [
        PlannedUnit(clinic="P-1", performed=d(2020, 1, 1), product_lot="X", patient="p", visit_day=500),
        PlannedUnit(clinic="P-1", performed=d(2020, 3, 1), product_lot="Y", patient="p", events=[infection(100)]),
        PlannedUnit(clinic="P-2", performed=d(2020, 2, 1), product_lot="Y", events=[infection(2)]),
        PlannedUnit(clinic="P-2", performed=d(2020, 2, 1), product_lot="X", visit_day=50),
        PlannedUnit(clinic="P-1", performed=d(2021, 2, 1), product_lot="Y", visit_day=900),
    ]  # fmt: skip
    build_registry(clinics, plan)
    events = _events(plan, clinics)
    results = {}
    for unit in ("procedure", "patient"):
        for windows, chosen in (("open", OPEN_WINDOWS), ("registry", REGISTRY_WINDOWS)):
            _, rows = run_csv(
                "compute_signals", "--by", "product_lot,clinic", "--cutoff", "2024-06-30", "--unit", unit,
                "--windows", windows,
            )  # fmt: skip
            table = unit_table(plan, clinics, windows=chosen, unit=unit)
            assert_rows(
                rows,
                expected_signal_rows(table, events, by=("product_lot", "clinic"), windows=chosen),
                ("attribute", "value", "outcome"),
            )
            results[unit, windows] = {(r["value"], r["outcome"]): r for r in rows}
    # Patient unit: patient p is one unit with lot X (its first procedure); lot Y's rows count 2 procedures,
    # not 3; the events columns (per event, of the event's own procedure) do not change.
    assert results["procedure", "open"]["Y", "infection"]["procedures"] == "3"
    assert results["patient", "open"]["Y", "infection"]["procedures"] == "2"
    assert results["patient", "open"]["X", "infection"]["cases"] == "1"
    for column in ("events_a", "events_b", "events_c", "events_d", "prr", "ic"):
        assert (
            results["procedure", "open"]["Y", "infection"][column]
            == results["patient", "open"]["Y", "infection"][column]
        )
    # Registry windows: infection (0-90) is compared on proportions; its day-100 onset is outside the window.
    assert results["procedure", "open"]["Y", "infection"]["basis"] == "person_time"
    assert results["procedure", "registry"]["Y", "infection"]["basis"] == "proportion"
    assert results["procedure", "open"]["Y", "infection"]["cases"] == "2"
    assert results["procedure", "registry"]["Y", "infection"]["cases"] == "1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "cell_type,colour"], r"Unknown attribute\(s\): colour"),
        (["--by", "site,site"], "only once"),
        (["--by", "age_band"], r"Unknown attribute\(s\): age_band"),
        (["--unit", "visit"], "invalid choice"),
        (["--windows", "closed"], "invalid choice"),
    ],
)
def test_unknown_names_are_refused_with_a_clear_message(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("compute_signals", "--cutoff", "2024-06-30", *args, stdout=io.StringIO())


# ---------------------------------------------------------------------------------------------
# The statistics, by hand and against the reference libraries


def test_band_split_by_hand():
    days, cases = band_split([0, 29, 30, 365, 2000, 2000], [True, True, True, True, True, False])
    assert days.tolist() == [
        [0, 0, 0, 0],
        [29, 0, 0, 0],
        [30, 0, 0, 0],
        [30, 335, 0, 0],
        [30, 335, 1461, 174],
        [30, 335, 1461, 174],
    ]
    assert cases.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]


def test_mh_rate_ratio_by_hand():
    # Band 1: c1 2, PY1 1, c0 1, PY0 3; band 2: c1 1, PY1 2, c0 2, PY0 2; band 3: no person-time (dropped,
    # although it holds a case); band 4: none.
    # num = 2*3/4 + 1*2/4 = 2; den = 1*1/4 + 2*2/4 = 1.25; R = 1.6.
    # V = (1*3*3/16 + 2*2*3/16) / (2 * 1.25) = 0.525.
    # MH chi-square: sum c1 = 3, E = 3*1/4 + 3*2/4 = 2.25, Var = 3*1*3/16 + 3*2*2/16 = 21/16: X = 3/7.
    ratio, low, high, p = mh_rate_ratio(
        c1=[[2, 1, 1, 0]], c0=[[1, 2, 0, 0]], py1=[[1.0, 2.0, 0.0, 0.0]], py0=[[3.0, 2.0, 0.0, 0.0]]
    )
    assert ratio[0] == pytest.approx(1.6, rel=1e-15)
    assert low[0] == pytest.approx(1.6 * math.exp(-1.96 * math.sqrt(0.525)), rel=1e-14)
    assert high[0] == pytest.approx(1.6 * math.exp(1.96 * math.sqrt(0.525)), rel=1e-14)
    assert p[0] == pytest.approx(stats.chi2.sf(3 / 7, 1), rel=1e-14)


def test_mh_rate_ratio_of_one_band_is_the_crude_rate_ratio_and_empties():
    ratio, low, high, p = mh_rate_ratio(
        c1=[[4, 0, 0, 0], [0, 0, 0, 0], [3, 0, 0, 0], [2, 0, 0, 0]],
        c0=[[2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]],
        py1=[[2.0, 0, 0, 0], [1.0, 0, 0, 0], [1.0, 0, 0, 0], [0.0, 0, 0, 0]],
        py0=[[8.0, 0, 0, 0], [1.0, 0, 0, 0], [1.0, 0, 0, 0], [0.0, 0, 0, 0]],
    )
    assert ratio[0] == pytest.approx((4 / 2) / (2 / 8), rel=1e-15)
    assert low[0] == pytest.approx(8 * math.exp(-1.96 * math.sqrt(1 / 4 + 1 / 2)), rel=1e-14)
    # One band: the conditional binomial score test, (4 - 6 * 0.2)^2 / (6 * 0.2 * 0.8).
    assert p[0] == pytest.approx(stats.chi2.sf((4 - 1.2) ** 2 / 0.96, 1), rel=1e-14)
    # No cases: no ratio and no variance; no case in the rest: no ratio, but a p-value; no person-time: nothing.
    assert np.isnan([ratio[1], low[1], high[1], p[1]]).all()
    assert np.isnan(ratio[2]) and p[2] == pytest.approx(stats.chi2.sf((3 - 1.5) ** 2 / 0.75, 1), rel=1e-14)
    assert np.isnan([ratio[3], p[3]]).all()


def test_risk_ratio_by_hand():
    ratio, low, high = risk_ratio(c1=[3, 0, 2], n1=[10, 5, 4], c0=[2, 1, 0], n0=[20, 5, 4])
    se = math.sqrt(1 / 3 - 1 / 10 + 1 / 2 - 1 / 20)
    assert ratio[0] == pytest.approx(3.0, rel=1e-15)
    assert (low[0], high[0]) == pytest.approx((3 * math.exp(-1.96 * se), 3 * math.exp(1.96 * se)), rel=1e-14)
    assert np.isnan(ratio[1:]).all() and np.isnan(low[1:]).all() and np.isnan(high[1:]).all()


def test_fisher_is_scipys_two_sided_test_bit_for_bit():
    rng = np.random.default_rng(0)
    parts = [np.array([[3, 4, 1, 6], [0, 10, 5, 20], [7, 7, 0, 3], [12, 400, 30, 5000], [1, 1, 1, 1], [0, 0, 2, 5]])]
    for scale in (5, 40, 600, 50000):
        n1, n0 = rng.integers(0, scale, 400), rng.integers(0, 5 * scale, 400)
        c1 = np.minimum((rng.random(400) * (n1 + 1)).astype(int), n1)
        c0 = np.minimum((rng.random(400) ** 3 * (n0 + 1)).astype(int), n0)
        parts.append(np.stack([c1, n1, c0, n0], axis=1))
    tables = np.vstack(parts)
    got = fisher_p(c1=tables[:, 0], n1=tables[:, 1], c0=tables[:, 2], n0=tables[:, 3])
    for (c1, n1, c0, n0), p in zip(tables.tolist(), got.tolist(), strict=True):
        assert p == stats.fisher_exact([[c1, n1 - c1], [c0, n0 - c0]], alternative="two-sided").pvalue


def test_bh_is_statsmodels_fdr_bh_and_skips_the_untested():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=200) ** 3
    p[::9] = np.nan
    q = bh_qvalues(p)
    present = ~np.isnan(p)
    assert np.isnan(q[~present]).all()
    assert q[present] == pytest.approx(multipletests(p[present], method="fdr_bh")[1], rel=1e-13)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_chi2_yates_is_scipys_chi2_contingency_bit_for_bit():
    rng = np.random.default_rng(5)
    tables = rng.integers(0, 30, size=(3000, 4))
    tables[::13, 0] = 0
    tables[::17, 1] = 0
    tables[::19, 2:] = 0
    tables = np.vstack([tables, rng.integers(0, 10**6, size=(200, 4)), [[5, 5, 5, 5], [0, 0, 0, 0]]])
    got = chi2_yates(a=tables[:, 0], b=tables[:, 1], c=tables[:, 2], d=tables[:, 3])
    for (a, b, c, d), value in zip(tables.tolist(), got.tolist(), strict=True):
        if min(a + b, c + d, a + c, b + d) == 0:
            assert math.isnan(value)
            # scipy refuses a zero expected count (and gives NaN for the empty table).
            with contextlib.suppress(ValueError):
                assert math.isnan(stats.chi2_contingency([[a, b], [c, d]], correction=True).statistic)
        else:
            assert value == stats.chi2_contingency([[a, b], [c, d]], correction=True).statistic


def test_disproportionality_by_hand():
    # a=6, b=14, c=20, d=160: PRR = (6/20)/(20/180) = 2.7, ROR = 6*160/(14*20) = 24/7,
    # E = 20 * 26 / 200 = 2.6, IC = log2(6.5 / 3.1).
    m = disproportionality(a=[6, 0, 4, 2], b=[14, 5, 0, 0], c=[20, 3, 1, 0], d=[160, 50, 9, 0])
    assert m["prr"][0] == pytest.approx(2.7, rel=1e-14)
    se = math.sqrt(1 / 6 - 1 / 20 + 1 / 20 - 1 / 180)
    assert m["prr_ci_low"][0] == pytest.approx(2.7 * math.exp(-1.96 * se), rel=1e-13)
    assert m["ror"][0] == pytest.approx(24 / 7, rel=1e-14)
    se = math.sqrt(1 / 6 + 1 / 14 + 1 / 20 + 1 / 160)
    assert m["ror_ci_high"][0] == pytest.approx(24 / 7 * math.exp(1.96 * se), rel=1e-13)
    # Yates: N (|ad - bc| - N/2)^2 / ((a+b)(c+d)(a+c)(b+d)) = 200 * (960 - 280 - 100)^2 / (20*180*26*174).
    assert m["chi2_yates"][0] == pytest.approx(200 * 580**2 / (20 * 180 * 26 * 174), rel=1e-13)
    assert m["ic"][0] == pytest.approx(math.log2(6.5 / 3.1), rel=1e-14)
    assert m["ic025"][0] == pytest.approx(math.log2(6.5 / 3.1) - 3.3 / math.sqrt(6.5) - 2 / 6.5**1.5, rel=1e-14)
    # Row 3: a = 4, PRR = 10, chi2 = 14 * (36 - 7)^2 / (4 * 10 * 5 * 9) = 6.54: an Evans signal.
    assert m["chi2_yates"][2] == pytest.approx(14 * 29**2 / (4 * 10 * 5 * 9), rel=1e-13)
    assert m["evans_signal"].tolist() == [True, False, True, False]
    # a = 0: PRR and ROR empty; IC = log2(0.5 / (E + 0.5)) with E = 5 * 3 / 58.
    assert np.isnan([m["prr"][1], m["prr_ci_low"][1], m["ror"][1]]).all()
    assert m["ic"][1] == pytest.approx(math.log2(0.5 / (15 / 58 + 0.5)), rel=1e-14)
    # b = 0: PRR defined (4/4 over 1/10), ROR empty; c = d = 0 (a margin 0): PRR, ROR and chi-square empty.
    assert m["prr"][2] == pytest.approx(10.0) and np.isnan(m["ror"][2])
    assert np.isnan([m["prr"][3], m["ror"][3], m["chi2_yates"][3]]).all()


def test_signal_needs_ratio_above_one_q_below_005_and_three_cases():
    # Proportion basis; the rest of a value is every other unit of the report (223 units, 23 cases).
    rows = signal_rows(
        attributes=["product_lot"],
        outcomes=["infection"],
        windows=[(0, 90)],
        cohort={
            ("product_lot", "A"): _counts(n=10, c=8),
            ("product_lot", "B"): _counts(n=10, c=2),
            ("product_lot", "C"): _counts(n=3, c=3),
        },
        total=_counts(n=223, c=23),
        events={},
        event_totals={},
    )
    by = {r["value"]: r for r in rows}
    assert by["A"]["signal"] is True  # RR (8/10)/(15/213), Fisher p tiny, 8 cases
    assert by["B"]["signal"] is False  # RR > 1 but p large
    assert by["C"]["ratio"] > 1 and by["C"]["q_value"] < 0.05 and by["C"]["signal"] is True
    for r in rows:
        assert (
            r["p_value"]
            == stats.fisher_exact(
                [[r["cases"], r["procedures"] - r["cases"]], [r["rest_cases"], r["rest_procedures"] - r["rest_cases"]]]
            ).pvalue
        )
        assert (r["events_a"], r["prr"], r["evans_signal"]) == (0, None, False)


def _counts(*, n: int, c: int) -> CohortCounts:
    zeros = np.zeros((1, 4), dtype=np.int64)
    return CohortCounts(np.array([n]), np.array([c]), np.array([10 * n]), zeros, zeros)
