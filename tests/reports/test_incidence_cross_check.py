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


def _reference(*, strata, outcomes, window=None, clinic_ids=None, method="wilson", km=True):
    """Return {(stratum, outcome): measures} computed without the engine."""
    procs = Procedure.objects.filter(performed_on__lte=CUTOFF)
    if clinic_ids is not None:
        procs = procs.filter(clinic_id__in=clinic_ids)
    visits = defaultdict(list)
    for pid, done in FollowUpVisit.objects.exclude(completed_on=None).values_list("procedure_id", "completed_on"):
        visits[pid].append(done)
    events = defaultdict(list)
    for ev in AdverseEvent.objects.filter(retracted_at=None).values(
        "procedure_id", "onset_on", "category", "serious", "grade"
    ):
        events[ev["procedure_id"]].append(ev)
    groups: dict = defaultdict(lambda: defaultdict(list))  # key -> outcome -> [(duration, case)]
    for p in procs.values(
        "id",
        "performed_on",
        "site",
        "cell_type",
        "cell_source",
        "clinic__code",
        "clinic__country",
        "patient__sex",
        "patient__birth_year",
        "patient__withdrawn_on",
        "patient__death_date",
    ):
        start = p["performed_on"]
        contacts = [start, *visits[p["id"]], *(e["onset_on"] for e in events[p["id"]])]
        if p["patient__death_date"]:
            contacts.append(p["patient__death_date"])
        ends = [max(contacts), CUTOFF]
        if p["patient__withdrawn_on"]:
            ends.append(p["patient__withdrawn_on"])
        end = min(ends)
        values = {
            "site": p["site"],
            "cell_type": p["cell_type"],
            "cell_source": p["cell_source"],
            "clinic": p["clinic__code"],
            "country": p["clinic__country"],
            "sex": p["patient__sex"],
            "age_band": _age_band(start.year - p["patient__birth_year"]),
            "year": str(start.year),
        }
        for outcome in outcomes:
            onsets = [
                e["onset_on"]
                for e in events[p["id"]]
                if _qualifies(outcome, e) and (window is None or (e["onset_on"] - start).days <= window)
            ]
            first = min(onsets) if onsets else None
            case = first is not None and first <= end
            duration = max(((first if case else end) - start).days, 0)
            for mask in itertools.product([False, True], repeat=len(strata)):
                key = tuple((s, "ALL" if m else values[s]) for s, m in zip(strata, mask, strict=True))
                groups[key][outcome].append((duration, case))
    result = {}
    for key, by_outcome in groups.items():
        for outcome, obs in by_outcome.items():
            n, k = len(obs), sum(c for _, c in obs)
            days = sum(d for d, _ in obs)
            py = days / 365.25
            low, high = proportion_confint(k, n, alpha=0.05, method="beta" if method != "wilson" else "wilson")
            estimates = {}
            kmf = KaplanMeierFitter().fit([d for d, _ in obs], [c for _, c in obs]) if km else None
            for label, h in HORIZONS:
                if kmf is None:
                    estimates[label] = (None, None, None)
                else:
                    ci = kmf.confidence_interval_cumulative_density_.asof(h)
                    estimates[label] = (float(kmf.cumulative_density_at_times([h]).iloc[0]), ci.iloc[0], ci.iloc[1])
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
            }
    return result


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _compare(params: IncidenceParams, expected: dict, *, km: bool = True) -> int:
    rows = compute_incidence(params=params)
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
