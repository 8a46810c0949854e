"""Interval estimators over arrays of aggregated counts (one element per result row).

Each function is the textbook formula as the reference libraries implement it, so the
registry's numbers can be checked against them to 1e-9:

- Wilson score and Clopper-Pearson intervals for a proportion, as statsmodels'
  ``proportion_confint(method="wilson" | "beta")``;
- the exact Poisson (Garwood) interval for a rate, ``chi2.ppf(a/2, 2k)/2`` and
  ``chi2.ppf(1-a/2, 2k+2)/2`` events, with the lower limit 0 when k = 0 (scipy gives
  NaN for zero degrees of freedom; 0 is the limit of the formula as k -> 0);
- funnel-plot control limits for a clinic's rate (Spiegelhalter 2005, see ``poisson_limit``);
- Kaplan-Meier 1 - S(t) with the "exponential Greenwood" (log(-log) S) interval, as
  lifelines' ``KaplanMeierFitter`` computes ``confidence_interval_cumulative_density_``.

Proportion limits are clipped to [0, 1] (floating-point rounding must not print -8.7e-19).
Undefined values are NaN (the engine stores and prints them as empty).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

ALPHA = 0.05
_Z = float(stats.norm.ppf(1 - ALPHA / 2))

Intervals = tuple[np.ndarray, np.ndarray]


def _arrays(*values) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def wilson_interval(*, cases, n, alpha: float = ALPHA) -> Intervals:
    """Return the Wilson score intervals for cases/n (NaN where n is 0)."""
    cases, n = _arrays(cases, n)
    crit = float(stats.norm.isf(alpha / 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = cases / n
        crit2 = crit**2
        denom = 1 + crit2 / n
        center = (q + crit2 / (2 * n)) / denom
        dist = crit * np.sqrt(q * (1.0 - q) / n + crit2 / (4.0 * n**2)) / denom
    # Rounding can put a limit a hair off its exact value (-8.7e-19 for 0 cases, where it is 0) or outside
    # [0, 1]: the limits at 0 and n cases are exact, and every limit stays within [0, 1].
    low = np.where(cases == 0, 0.0, center - dist)
    high = np.where(cases == n, 1.0, center + dist)
    empty = n == 0
    return _clamp(np.where(empty, np.nan, low)), _clamp(np.where(empty, np.nan, high))


def _clamp(values: np.ndarray) -> np.ndarray:
    """Return ``values`` clipped to [0, 1], NaN kept."""
    return np.clip(values, 0.0, 1.0)


def clopper_pearson_interval(*, cases, n, alpha: float = ALPHA) -> Intervals:
    """Return the exact (Clopper-Pearson) intervals for cases/n (NaN where n is 0)."""
    cases, n = _arrays(cases, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(cases == 0, 0.0, stats.beta.ppf(alpha / 2, cases, n - cases + 1))
        high = np.where(cases == n, 1.0, stats.beta.isf(alpha / 2, cases + 1, n - cases))
    empty = n == 0
    return _clamp(np.where(empty, np.nan, low)), _clamp(np.where(empty, np.nan, high))


def proportion_interval(*, cases, n, method: str) -> Intervals:
    """Return the 95 % intervals for cases/n by ``method`` ("wilson" or "clopper-pearson")."""
    if method == "wilson":
        return wilson_interval(cases=cases, n=n)
    if method == "clopper-pearson":
        return clopper_pearson_interval(cases=cases, n=n)
    raise ValueError(f"Unknown interval method {method!r}.")


def garwood_interval(*, cases, person_years, per: float = 100.0, alpha: float = ALPHA) -> Intervals:
    """Return the exact Poisson (Garwood) intervals for rates per ``per`` person-years.

    NaN where there is no person-time (the rate itself is undefined).
    """
    cases, person_years = _arrays(cases, person_years)
    # Many rows share a case count: evaluate the quantiles once per distinct count.
    counts, inverse = np.unique(cases, return_inverse=True)
    with np.errstate(invalid="ignore"):
        low_events = np.where(counts == 0, 0.0, stats.chi2.ppf(alpha / 2, 2 * counts) / 2)[inverse]
        high_events = (stats.chi2.ppf(1 - alpha / 2, 2 * counts + 2) / 2)[inverse]
    with np.errstate(divide="ignore", invalid="ignore"):
        timed = person_years > 0
        return (
            np.where(timed, low_events / person_years * per, np.nan),
            np.where(timed, high_events / person_years * per, np.nan),
        )


def km_cumulative_incidence(*, log_survival, reached_zero, greenwood) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (1 - S, low, high) from the Kaplan-Meier sums at one time point.

    ``log_survival`` is the sum of log(n - d) - log(n) over event days up to the time,
    ``reached_zero`` whether some day had d = n (S dropped to 0), ``greenwood`` the sum
    of d / (n (n - d)) over days with n > d. The interval is the exponential Greenwood
    one on log(-log S), mapped to 1 - S. Like lifelines, it is (0, 0) while S = 1 (no
    event yet) and (1, 1) once S = 0.
    """
    v, green = _arrays(log_survival, greenwood)
    zero = np.asarray(reached_zero, dtype=bool)
    survival = np.where(zero, 0.0, np.exp(v))
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = _Z * np.sqrt(green) / v
        s_low = np.exp(-np.exp(np.log(-v) - spread))
        s_high = np.exp(-np.exp(np.log(-v) + spread))
    none_yet = ~zero & (v == 0.0)
    low = np.where(zero, 1.0, np.where(none_yet, 0.0, 1.0 - s_high))
    high = np.where(zero, 1.0, np.where(none_yet, 0.0, 1.0 - s_low))
    return 1.0 - survival, low, high


def poisson_limit(mu, p: float) -> np.ndarray:
    """Return Spiegelhalter's interpolated Poisson quantile of probability ``p`` for means ``mu``.

    r_p = Poisson.ppf(p, mu); limit = r_p - (P(X <= r_p) - p) / (P(X <= r_p) - P(X <= r_p - 1))
    ("Funnel plots for comparing institutional performance", Stat Med 2005;24:1185-1202, A.1.2).
    """
    mu = np.asarray(mu, dtype=np.float64)
    r = stats.poisson.ppf(p, mu)
    upper = stats.poisson.cdf(r, mu)
    lower = stats.poisson.cdf(r - 1, mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(upper > lower, (upper - p) / (upper - lower), 0.0)
    return np.where(mu > 0, np.maximum(r - a, 0.0), 0.0)


FUNNEL_LIMITS = ((0.95, 0.025, 0.975), (0.998, 0.001, 0.999))


def control_limits(pooled_rate: float, person_years, per: float = 100.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return {"95": (low, high), "99.8": (low, high)}: funnel limits per ``per`` PY at each person-years value."""
    py = np.asarray(person_years, dtype=np.float64)
    mu = pooled_rate / per * py
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for level, lo, hi in FUNNEL_LIMITS:
            key = f"{level * 100:g}"
            out[key] = (
                np.where(py > 0, poisson_limit(mu, lo) / py * per, np.nan),
                np.where(py > 0, poisson_limit(mu, hi) / py * per, np.nan),
            )
    return out
