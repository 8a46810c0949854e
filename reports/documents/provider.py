"""Provider comparison: each clinic's rate per 100 person-years against the pooled rate.

The rates are the run's own, stored with it (reports.snapshot); the control limits are
reports.engine.stats.control_limits.

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

from reports.choices import MARGIN, Stratum
from reports.engine.stats import control_limits, poisson_limit
from reports.models import IncidenceRun
from reports.selectors import provider_rates_of_run

__all__ = ["METHOD", "ClinicRate", "Comparison", "control_limits", "poisson_limit", "provider_comparison"]

PER = 100.0  # rates per 100 person-years
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


def provider_comparison(run: IncidenceRun) -> list[Comparison]:
    """Return one comparison per outcome of ``run``: every clinic in its scope against the pooled rate."""
    clinic_rows, pooled = [], {}
    for r in provider_rates_of_run(run).values():
        if r["clinic"] == MARGIN:
            pooled[r["outcome"]] = r
        else:
            clinic_rows.append(r)
    # Read from the run's own rows when it is stratified by clinic, else counted by clinic for it.
    source = "stored" if Stratum.CLINIC in run.strata else "computed"
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
