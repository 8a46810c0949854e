"""Interval estimators, applied to aggregated counts only.

Each function is the textbook formula as the reference libraries implement it, so the
registry's numbers can be checked against them to 1e-9:

- Wilson score and Clopper-Pearson intervals for a proportion, as statsmodels'
  ``proportion_confint(method="wilson" | "beta")``;
- the exact Poisson (Garwood) interval for a rate, ``chi2.ppf(a/2, 2k)/2`` and
  ``chi2.ppf(1-a/2, 2k+2)/2`` events, with the lower limit 0 when k = 0 (scipy gives
  NaN for zero degrees of freedom; 0 is the limit of the formula as k -> 0);
- Kaplan-Meier 1 - S(t) with the "exponential Greenwood" (log(-log S)) interval, as
  lifelines' ``KaplanMeierFitter`` computes ``confidence_interval_cumulative_density_``.
"""

from __future__ import annotations

import math

from scipy import stats

ALPHA = 0.05
_Z = float(stats.norm.ppf(1 - ALPHA / 2))

Interval = tuple[float | None, float | None]


def wilson_interval(*, cases: int, n: int, alpha: float = ALPHA) -> Interval:
    """Return the Wilson score interval for cases/n (None, None when n is 0)."""
    if n == 0:
        return None, None
    crit = float(stats.norm.isf(alpha / 2.0))
    q = cases / n
    crit2 = crit**2
    denom = 1 + crit2 / n
    center = (q + crit2 / (2 * n)) / denom
    dist = crit * math.sqrt(q * (1.0 - q) / n + crit2 / (4.0 * n**2)) / denom
    return center - dist, center + dist


def clopper_pearson_interval(*, cases: int, n: int, alpha: float = ALPHA) -> Interval:
    """Return the exact (Clopper-Pearson) interval for cases/n (None, None when n is 0)."""
    if n == 0:
        return None, None
    low = 0.0 if cases == 0 else float(stats.beta.ppf(alpha / 2, cases, n - cases + 1))
    high = 1.0 if cases == n else float(stats.beta.isf(alpha / 2, cases + 1, n - cases))
    return low, high


def proportion_interval(*, cases: int, n: int, method: str) -> Interval:
    """Return the 95 % interval for cases/n by ``method`` ("wilson" or "clopper-pearson")."""
    if method == "wilson":
        return wilson_interval(cases=cases, n=n)
    if method == "clopper-pearson":
        return clopper_pearson_interval(cases=cases, n=n)
    raise ValueError(f"Unknown interval method {method!r}.")


def garwood_interval(*, cases: int, person_years: float, per: float = 100.0, alpha: float = ALPHA) -> Interval:
    """Return the exact Poisson (Garwood) interval for the rate per ``per`` person-years.

    None, None when there is no person-time (the rate itself is undefined).
    """
    if person_years <= 0:
        return None, None
    low = 0.0 if cases == 0 else float(stats.chi2.ppf(alpha / 2, 2 * cases)) / 2
    high = float(stats.chi2.ppf(1 - alpha / 2, 2 * cases + 2)) / 2
    return low / person_years * per, high / person_years * per


def km_cumulative_incidence(*, log_survival: float, reached_zero: bool, greenwood: float) -> tuple[float, float, float]:
    """Return (1 - S, low, high) from the Kaplan-Meier sums at one time point.

    ``log_survival`` is the sum of log(n - d) - log(n) over event days up to the time,
    ``reached_zero`` says whether some day had d = n (S dropped to 0), ``greenwood``
    the sum of d / (n (n - d)) over days with n > d. The interval is the exponential
    Greenwood one on log(-log S), mapped to 1 - S. Like lifelines, it is (0, 0) while
    S = 1 (no event yet) and (1, 1) once S = 0.
    """
    if reached_zero:
        return 1.0, 1.0, 1.0
    survival = math.exp(log_survival)
    if log_survival == 0.0:
        return 1.0 - survival, 0.0, 0.0
    v = log_survival
    spread = _Z * math.sqrt(greenwood) / v
    s_low = math.exp(-math.exp(math.log(-v) - spread))
    s_high = math.exp(-math.exp(math.log(-v) + spread))
    return 1.0 - survival, 1.0 - s_high, 1.0 - s_low
