"""The engine against an independent computation on a generated registry, to 1e-9.

The reference below re-implements the counting rules procedure by procedure in
Python from raw rows, then asks statsmodels (Wilson, Clopper-Pearson = "beta"),
scipy (Garwood chi-square limits) and lifelines (Kaplan-Meier with its exponential
Greenwood interval) for the statistics.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import defaultdict

import pytest
from django.db import transaction
from lifelines import KaplanMeierFitter
from scipy.stats import chi2
from statsmodels.stats.proportion import proportion_confint

from events.models import AdverseEvent
from registry.models import FollowUpVisit, Procedure
from reports.choices import HORIZONS, OUTCOMES
from reports.engine import IncidenceParams, compute_incidence
from tests.reports.generated_registry import build_generated_registry

CUTOFF = dt.date(2024, 6, 30)


@pytest.fixture(scope="module")
def generated(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        clinics = build_generated_registry(procedures=3000)
        yield clinics
        transaction.set_rollback(True)


def _age_band(age: int) -> str:
    for label, low, high in (("<40", -999, 39), ("40-49", 40, 49), ("50-59", 50, 59), ("60-69", 60, 69)):
        if low <= age <= high:
            return label
    return "70-79" if age <= 79 else "80+"


def _qualifies(outcome: str, event: dict) -> bool:
    if outcome == "any":
        return True
    if outcome == "serious":
        return event["serious"]
    if outcome == "grade_3_plus":
        return event["grade"] >= 3
    return event["category"] == outcome


def _aalen_johansen(obs, horizon):
    """Return the Aalen-Johansen cumulative incidence at ``horizon`` of [(days, status)] (1 case, 2 death),
    the textbook sum over days u <= h of S(u-) d1(u) / n(u), written out day by day."""
    days = sorted({d for d, status in obs if status})
    survival, cuminc = 1.0, 0.0
    for u in days:
        if u > horizon:
            break
        at_risk = sum(1 for d, _ in obs if d >= u)
        d1 = sum(1 for d, status in obs if d == u and status == 1)
        d2 = sum(1 for d, status in obs if d == u and status == 2)
        cuminc += survival * d1 / at_risk
        survival *= 1 - (d1 + d2) / at_risk
    return cuminc


def _units(*, unit, clinic_ids):
    """Return the report's units from raw rows: (time zero, procedures, first procedure, patient)."""
    procs = list(
        Procedure.objects.filter(retracted_at=None).values(
            "id",
            "patient_id",
            "performed_on",
            "site",
            "cell_type",
            "cell_source",
            "clinic_id",
            "clinic__code",
            "clinic__country",
            "patient__clinic__code",
            "patient__clinic__country",
            "patient__clinic_id",
            "patient__sex",
            "patient__birth_year",
            "patient__withdrawn_on",
            "patient__death_date",
        )
    )
    if unit == "procedure":
        return [
            (p["performed_on"], [p], p, p)
            for p in procs
            if p["performed_on"] <= CUTOFF and (clinic_ids is None or p["clinic_id"] in clinic_ids)
        ]
    by_patient = defaultdict(list)
    for p in procs:
        by_patient[p["patient_id"]].append(p)
    units = []
    for rows in by_patient.values():
        rows.sort(key=lambda p: (p["performed_on"], p["id"]))
        first = rows[0]
        if first["performed_on"] > CUTOFF:
            continue
        if clinic_ids is not None and first["patient__clinic_id"] not in clinic_ids:
            continue
        clinic = {"clinic__code": first["patient__clinic__code"], "clinic__country": first["patient__clinic__country"]}
        units.append((first["performed_on"], rows, {**first, **clinic}, first))
    return units


def _reference(
    *, strata, outcomes, window=None, clinic_ids=None, method="wilson", km=True, windows=None, unit="procedure"
):
    """Return {(stratum, outcome): measures} computed without the engine, unit by unit (DESIGN 2 and 2b).

    ``windows`` {outcome: (start, end or None)} (default every window open); ``window`` N ends
    every window on day N.
    """
    visits = defaultdict(list)
    for pid, done in FollowUpVisit.objects.exclude(completed_on=None).values_list("procedure_id", "completed_on"):
        visits[pid].append(done)
    events = defaultdict(list)
    for ev in AdverseEvent.objects.filter(retracted_at=None).values(
        "procedure_id", "onset_on", "category", "serious", "grade"
    ):
        events[ev["procedure_id"]].append(ev)
    groups: dict = defaultdict(lambda: defaultdict(list))  # key -> outcome -> [(days, status)]
    for start, rows, p, patient in _units(unit=unit, clinic_ids=clinic_ids):
        unit_events = [e for r in rows for e in events[r["id"]]]
        contacts = [r["performed_on"] for r in rows] + [v for r in rows for v in visits[r["id"]]]
        contacts += [e["onset_on"] for e in unit_events]
        death = patient["patient__death_date"]
        if death:
            contacts.append(death)
        ends = [max(contacts), CUTOFF]
        if patient["patient__withdrawn_on"]:
            ends.append(patient["patient__withdrawn_on"])
        end = min(ends)
        values = {
            "site": p["site"],
            "cell_type": p["cell_type"],
            "cell_source": p["cell_source"],
            "clinic": p["clinic__code"],
            "country": p["clinic__country"],
            "sex": patient["patient__sex"],
            "age_band": _age_band(start.year - patient["patient__birth_year"]),
            "year": str(start.year),
        }
        for outcome in outcomes:
            s, e = (windows or {}).get(outcome, (0, None))
            if window is not None:
                e = window
            at_risk_from = start + dt.timedelta(days=s)
            at_risk_to = end if e is None else min(end, start + dt.timedelta(days=e))
            onsets = [ev["onset_on"] for ev in unit_events if _qualifies(outcome, ev)]
            if any(o < at_risk_from for o in onsets) or at_risk_to < at_risk_from:
                continue  # a prevalent case, or no time at risk: not in this outcome's denominator
            first = min(onsets) if onsets else None
            if first is not None and first <= at_risk_to:
                obs = ((first - at_risk_from).days, 1)
            elif death and at_risk_from <= death <= at_risk_to:
                obs = ((death - at_risk_from).days, 2)
            else:
                obs = ((at_risk_to - at_risk_from).days, 0)
            for mask in itertools.product([False, True], repeat=len(strata)):
                key = tuple((st, "ALL" if m else values[st]) for st, m in zip(strata, mask, strict=True))
                groups[key][outcome].append(obs)
    result = {}
    for key, by_outcome in groups.items():
        for outcome, obs in by_outcome.items():
            n, k = len(obs), sum(1 for _, status in obs if status == 1)
            days = sum(d for d, _ in obs)
            py = days / 365.25
            low, high = proportion_confint(k, n, alpha=0.05, method="beta" if method != "wilson" else "wilson")
            estimates, aj = {}, {}
            kmf = KaplanMeierFitter().fit([d for d, _ in obs], [st == 1 for _, st in obs]) if km else None
            for label, h in HORIZONS:
                if kmf is None:
                    estimates[label] = (None, None, None)
                    aj[label] = None
                else:
                    ci = kmf.confidence_interval_cumulative_density_.asof(h)
                    estimates[label] = (float(kmf.cumulative_density_at_times([h]).iloc[0]), ci.iloc[0], ci.iloc[1])
                    aj[label] = _aalen_johansen(obs, h)
            result[(key, outcome)] = {
                "procedures": n,
                "cases": k,
                "person_days": days,
                "proportion": k / n,
                "proportion_ci_low": low,
                "proportion_ci_high": high,
                "rate_per_100py": k / py * 100 if py else None,
                "rate_ci_low": (chi2.ppf(0.025, 2 * k) / 2 if k else 0.0) / py * 100 if py else None,
                "rate_ci_high": chi2.ppf(0.975, 2 * k + 2) / 2 / py * 100 if py else None,
                "km": estimates,
                "aj": aj,
            }
    return result


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _compare(params: IncidenceParams, expected: dict, *, km: bool = True) -> int:
    rows = [r for r in compute_incidence(params=params) if r.procedures]
    # A group with no unit in an outcome's denominator has a row of zeros (the reference has none).
    assert {(r.stratum, r.outcome) for r in rows} == set(expected)
    mismatches = []
    for row in rows:
        want = expected[(row.stratum, row.outcome)]
        for name in ("procedures", "cases", "person_days"):
            if getattr(row, name) != want[name]:
                mismatches.append((row.stratum, row.outcome, name, getattr(row, name), want[name]))
        for name in ("proportion", "proportion_ci_low", "proportion_ci_high", "rate_per_100py"):
            if not _close(getattr(row, name), want[name]):
                mismatches.append((row.stratum, row.outcome, name, getattr(row, name), want[name]))
        for name in ("rate_ci_low", "rate_ci_high"):
            if not _close(getattr(row, name), want[name]):
                mismatches.append((row.stratum, row.outcome, name, getattr(row, name), want[name]))
        for label, _ in HORIZONS if km else ():
            got = row.km[label]
            for i, value in enumerate((got.value, got.ci_low, got.ci_high)):
                if not _close(value, want["km"][label][i]):
                    mismatches.append((row.stratum, row.outcome, f"km_{label}[{i}]", value, want["km"][label][i]))
            if not _close(row.aj[label], want["aj"][label]):
                mismatches.append((row.stratum, row.outcome, f"aj_{label}", row.aj[label], want["aj"][label]))
    assert mismatches == []
    return len(rows)


@pytest.mark.django_db
def test_site_by_cell_type_matches_statsmodels_scipy_and_lifelines(generated):
    strata = ["site", "cell_type"]
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=strata)
    checked = _compare(params, _reference(strata=strata, outcomes=OUTCOMES))
    assert checked == (4 * 3 + 4 + 3 + 1) * len(OUTCOMES)


@pytest.mark.django_db
def test_clopper_pearson_and_an_onset_window_match_the_libraries(generated):
    strata = ["clinic", "sex", "age_band"]
    outcomes = ["any", "infection", "serious"]
    params = IncidenceParams.build(
        cutoff_on=CUTOFF, strata=strata, outcomes=outcomes, onset_window_days=30, ci_method="clopper-pearson"
    )
    _compare(params, _reference(strata=strata, outcomes=outcomes, window=30, method="clopper-pearson"))


@pytest.mark.django_db
def test_a_clinic_scoped_report_by_year_country_and_source_matches_the_libraries(generated):
    strata = ["year", "country", "cell_source"]
    outcomes = ["grade_3_plus", "neoplasm"]
    scope = [generated[0].pk]
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=strata, outcomes=outcomes, clinic_ids=scope)
    _compare(params, _reference(strata=strata, outcomes=outcomes, clinic_ids=scope))


@pytest.mark.django_db
def test_all_eight_strata_with_every_margin_match_the_reference_counts(generated):
    strata = ["site", "cell_type", "cell_source", "clinic", "country", "sex", "age_band", "year"]
    outcomes = ["any", "neoplasm"]
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=strata, outcomes=outcomes)
    checked = _compare(params, _reference(strata=strata, outcomes=outcomes, km=False), km=False)
    assert checked > 2000


DEFAULT_WINDOWS = {
    "injection_site_reaction": (0, 7),
    "systemic_reaction": (0, 7),
    "allergic_reaction": (0, 30),
    "neurological": (0, 30),
    "infection": (0, 90),
    "immune_reaction": (0, 90),
    "thromboembolic": (0, 90),
    "ectopic_tissue": (0, None),
    "neoplasm": (180, None),
}


@pytest.mark.django_db
def test_the_registry_windows_match_the_reference_unit_by_unit(generated):
    strata = ["site", "cell_type"]
    params = IncidenceParams.build(cutoff_on=CUTOFF, strata=strata, windows=DEFAULT_WINDOWS)
    checked = _compare(params, _reference(strata=strata, outcomes=OUTCOMES, windows=DEFAULT_WINDOWS))
    assert checked > 200
    # The windows matter: the neoplasm denominator loses the prevalent cases and those followed < 180 days.
    open_rows = {(r.stratum, r.outcome): r for r in compute_incidence(params=IncidenceParams.build(cutoff_on=CUTOFF))}
    total = (("site", "ALL"), ("cell_type", "ALL"))
    windowed = {(r.stratum, r.outcome): r for r in compute_incidence(params=params)}
    assert windowed[(total, "neoplasm")].procedures < open_rows[(total, "neoplasm")].procedures
    assert (
        windowed[(total, "injection_site_reaction")].person_days
        < open_rows[(total, "injection_site_reaction")].person_days
    )


@pytest.mark.django_db
def test_a_window_below_a_start_day_leaves_nobody_at_risk(generated):
    params = IncidenceParams.build(
        cutoff_on=CUTOFF, strata=[], outcomes=["neoplasm"], windows=DEFAULT_WINDOWS, onset_window_days=30
    )
    (row,) = compute_incidence(params=params)
    assert (row.procedures, row.cases, row.person_days, row.proportion) == (0, 0, 0, None)
