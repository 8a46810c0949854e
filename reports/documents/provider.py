"""Provider comparison: each clinic's rate per 100 person-years against the pooled rate.

Funnel-plot control limits (Spiegelhalter, "Funnel plots for comparing institutional
performance", Stat Med 2005;24:1185-1202, appendix A.1.2): the number of cases of a
clinic with T person-years is taken as Poisson with mean mu = pooled rate x T, where the
pooled rate is all cases / all person-years of the run's scope. The limit for a tail
probability p is the exact Poisson quantile r_p = Poisson.ppf(p, mu), interpolated so
the funnel is smooth,

    limit_p = (r_p - a) / T,  a = (P(X <= r_p) - p) / (P(X <= r_p) - P(X <= r_p - 1)),

for p = 0.025 / 0.975 (95 %) and 0.001 / 0.999 (99.8 %), shown per 100 person-years.
A clinic whose rate lies above the 99.8 % upper limit at its person-years is flagged
("alarm"); above the 95 % limit only "alert". No over-dispersion adjustment is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from reports.choices import MARGIN, Stratum
from reports.engine import compute_incidence
from reports.engine.compute import DAYS_PER_YEAR
from reports.models import IncidenceRun
from reports.selectors import results_of_run
from reports.services import run_params

PER = 100.0  # rates per 100 person-years
LIMITS = ((0.95, 0.025, 0.975), (0.998, 0.001, 0.999))
METHOD = (
    "Funnel plot: cases of a clinic with T person-years taken as Poisson with mean pooled rate x T; "
    "control limits are the exact Poisson quantiles with Spiegelhalter's (2005) interpolation, "
    "95 % (p = 0.025, 0.975) and 99.8 % (p = 0.001, 0.999), per 100 person-years. "
    "A clinic above the 99.8 % upper limit is flagged 'alarm', above 95 % 'alert'."
)


@dataclass(frozen=True)
class ClinicRate:
    clinic: str
    outcome: str
    procedures: int
    cases: int
    person_years: float
    rate: float | None
    rate_ci_low: float | None
    rate_ci_high: float | None
    expected: float
    limits: dict[str, tuple[float, float]]  # "95" / "99.8" -> (low, high) per 100 PY
    flag: str  # "alarm" (above 99.8 %), "alert" (above 95 %), "low" (below 95 %), ""


@dataclass(frozen=True)
class Comparison:
    outcome: str
    pooled_rate: float | None  # per 100 PY
    pooled_cases: int
    pooled_person_years: float
    clinics: list[ClinicRate]
    source: str  # "stored" or "computed"


def poisson_limit(mu, p: float) -> np.ndarray:
    """Return Spiegelhalter's interpolated Poisson quantile of probability ``p`` for means ``mu``."""
    mu = np.asarray(mu, dtype=np.float64)
    r = stats.poisson.ppf(p, mu)
    upper = stats.poisson.cdf(r, mu)
    lower = stats.poisson.cdf(r - 1, mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(upper > lower, (upper - p) / (upper - lower), 0.0)
    return np.where(mu > 0, np.maximum(r - a, 0.0), 0.0)


def control_limits(pooled_rate: float, person_years) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return {"95": (low, high), "99.8": (low, high)} per 100 PY at each person-years value."""
    py = np.asarray(person_years, dtype=np.float64)
    mu = pooled_rate / PER * py
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for level, lo, hi in LIMITS:
            key = f"{level * 100:g}"
            out[key] = (
                np.where(py > 0, poisson_limit(mu, lo) / py * PER, np.nan),
                np.where(py > 0, poisson_limit(mu, hi) / py * PER, np.nan),
            )
    return out


def _rows(run: IncidenceRun) -> tuple[list[dict], dict[str, dict], str]:
    """Return (per-clinic rows, pooled row per outcome, source) as dicts of stored-result fields."""
    keys = ("outcome", "procedures", "cases", "person_years", "rate_per_100py", "rate_ci_low", "rate_ci_high")
    if Stratum.CLINIC in run.strata:
        others = [s for s in run.strata if s != Stratum.CLINIC]
        clinic_rows, pooled = [], {}
        for r in results_of_run(run).values("stratum", *keys):
            if any(r["stratum"][s] != MARGIN for s in others):
                continue
            if r["stratum"][Stratum.CLINIC] == MARGIN:
                pooled[r["outcome"]] = r
            else:
                clinic_rows.append({**r, "clinic": r["stratum"][Stratum.CLINIC]})
        return clinic_rows, pooled, "stored"
    params = run_params(run)
    params = type(params).build(
        cutoff_on=params.cutoff_on,
        strata=[Stratum.CLINIC],
        outcomes=params.outcomes,
        onset_window_days=params.onset_window_days,
        ci_method=params.ci_method,
        clinic_ids=params.clinic_ids,
    )
    clinic_rows, pooled = [], {}
    for row in compute_incidence(params=params):
        record = {
            "outcome": row.outcome,
            "procedures": row.procedures,
            "cases": row.cases,
            "person_years": row.person_days / DAYS_PER_YEAR,
            "rate_per_100py": row.rate_per_100py,
            "rate_ci_low": row.rate_ci_low,
            "rate_ci_high": row.rate_ci_high,
        }
        clinic = dict(row.stratum)[Stratum.CLINIC]
        if clinic == MARGIN:
            pooled[row.outcome] = record
        else:
            clinic_rows.append({**record, "clinic": clinic})
    return clinic_rows, pooled, "computed"


def provider_comparison(run: IncidenceRun) -> list[Comparison]:
    """Return one comparison per outcome of ``run``: every clinic in its scope against the pooled rate."""
    clinic_rows, pooled, source = _rows(run)
    out = []
    for outcome in run.outcomes:
        total = pooled.get(outcome)
        rows = sorted((r for r in clinic_rows if r["outcome"] == outcome), key=lambda r: r["clinic"])
        pooled_rate = total["rate_per_100py"] if total else None
        clinics = []
        if rows:
            py = np.array([r["person_years"] for r in rows])
            limits = control_limits(pooled_rate or 0.0, py)
        for i, r in enumerate(rows):
            lim = {key: (float(low[i]), float(high[i])) for key, (low, high) in limits.items()}
            rate = r["rate_per_100py"]
            flag = ""
            if rate is not None and pooled_rate is not None:
                if rate > lim["99.8"][1]:
                    flag = "alarm"
                elif rate > lim["95"][1]:
                    flag = "alert"
                elif rate < lim["95"][0]:
                    flag = "low"
            clinics.append(
                ClinicRate(
                    clinic=r["clinic"],
                    outcome=outcome,
                    procedures=r["procedures"],
                    cases=r["cases"],
                    person_years=r["person_years"],
                    rate=rate,
                    rate_ci_low=r["rate_ci_low"],
                    rate_ci_high=r["rate_ci_high"],
                    expected=(pooled_rate or 0.0) / PER * r["person_years"],
                    limits=lim,
                    flag=flag,
                )
            )
        out.append(
            Comparison(
                outcome=outcome,
                pooled_rate=pooled_rate,
                pooled_cases=total["cases"] if total else 0,
                pooled_person_years=total["person_years"] if total else 0.0,
                clinics=clinics,
                source=source,
            )
        )
    return out
