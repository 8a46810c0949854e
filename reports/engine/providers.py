"""Provider comparison adjusted for case mix: indirect standardisation (DESIGN.md 2b), to the letter.

Per outcome k and adjustment stratum z (default site x cell_type x age_band x sex), the
reference is the report's whole scope:

- basis ``person_time`` (open window, end day None): r_z = cases_z / PY_z and
  E_g = sum_z PY_{g,z} r_z (a z with no person-time adds nothing);
- basis ``proportion`` (closed window, end day set): p_z = cases_z / n_z and
  E_g = sum_z n_{g,z} p_z.

For each group g (clinic code, country code, or GMP status 'true'/'false'): O_g observed
cases; SIR = O / E; 95 % interval chi2.ppf(0.025, 2 O)/2 / E and chi2.ppf(0.975, 2 O + 2)/2 / E
(lower 0 when O = 0); p_high = P(X >= O) and p_low = P(X <= O) for X ~ Poisson(E);
flag "above 99.8 %" (p_high < 0.001), else "above 95 %" (p_high < 0.025), "below 99.8 %"
(p_low < 0.001), else "below 95 %" (p_low < 0.025), else empty.

Choices where 2b leaves one (stated once, here):

- Rows: every group with at least one unit in the report, for every outcome of the report,
  as compute_incidence keeps a stratum whose units all left an outcome's denominator. Such a
  row has procedures 0, observed 0, expected 0.
- E = 0 (no units, or none with person-time in a stratum that has cases): SIR and its
  interval are empty (division by E); p_high and p_low are those of Poisson(0), the point
  mass at 0 (scipy's ``poisson`` with mu = 0, the limit as E -> 0): p_low = 1, and
  p_high = 1 when O = 0, else 0, which flags "above 99.8 %": cases where none were
  expected (possible only on the person-time basis, for a group whose cases all came on
  the day at risk began, 0 days, in strata where nobody else has person-time).
- person_years = the group's days at risk in the outcome's denominator / 365.25, printed on
  both bases (the proportion basis does not use it).
- Row order: outcome (report order), then group (byte order; gmp: false, true).

The counting is one GROUP BY (group, strata) over the lead's per-unit SELECT
(reports.engine.sql.build_units_sql), with per-outcome n, cases and days as columns;
Python touches only those aggregated cells.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from django.db import connections, transaction
from scipy import stats

from reports.engine.compute import DAYS_PER_YEAR
from reports.engine.params import IncidenceParams
from reports.engine.sql import build_units_sql

GROUPS: tuple[str, ...] = ("clinic", "country", "gmp")
# Attributes of a unit the expected counts may be adjusted for (build_units_sql's names).
ADJUSTABLE: tuple[str, ...] = (
    "site",
    "cell_type",
    "cell_source",
    "processing",
    "carrier",
    "guidance",
    "age_band",
    "sex",
    "year",
    "clinic",
    "country",
    "gmp",
)
DEFAULT_ADJUST: tuple[str, ...] = ("site", "cell_type", "age_band", "sex")

BASIS_PERSON_TIME = "person_time"
BASIS_PROPORTION = "proportion"

COLUMNS: tuple[str, ...] = (
    "group",
    "outcome",
    "basis",
    "procedures",
    "observed",
    "person_years",
    "expected",
    "sir",
    "sir_ci_low",
    "sir_ci_high",
    "p_high",
    "p_low",
    "flag",
)

FLAG_ABOVE_998 = "above 99.8 %"
FLAG_ABOVE_95 = "above 95 %"
FLAG_BELOW_998 = "below 99.8 %"
FLAG_BELOW_95 = "below 95 %"

WORK_MEM = "256MB"


def basis_of(window: tuple[int, int | None]) -> str:
    """Return the comparison basis of an outcome's risk window: proportion when it ends, else person-time."""
    return BASIS_PERSON_TIME if window[1] is None else BASIS_PROPORTION


def validate(*, group: str, adjust: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Return (group, adjust) checked, or raise ValueError with a message naming the allowed names."""
    if group not in GROUPS:
        raise ValueError(f"Unknown group {group!r}. Choose one of {', '.join(GROUPS)}.")
    adjust = tuple(adjust)
    unknown = [a for a in adjust if a not in ADJUSTABLE]
    if unknown:
        raise ValueError(f"Unknown adjustment attribute(s): {', '.join(unknown)}. Choose from {', '.join(ADJUSTABLE)}.")
    if len(set(adjust)) != len(adjust):
        raise ValueError("An adjustment attribute may be named only once.")
    if group in adjust:
        raise ValueError(f"The group ({group}) cannot also be an adjustment attribute.")
    return group, adjust


def expected_cases(*, group_index, stratum_index, n, cases, days, basis: str, groups: int) -> np.ndarray:
    """Return E_g per group (indirect standardisation) from cells (g, z) with n, cases and days.

    ``group_index`` and ``stratum_index`` code each cell's group (0..groups-1) and stratum;
    the reference rates are those of the strata over all cells.
    """
    g = np.asarray(group_index, dtype=np.int64)
    z = np.asarray(stratum_index, dtype=np.int64)
    n = np.asarray(n, dtype=np.float64)
    cases = np.asarray(cases, dtype=np.float64)
    person_years = np.asarray(days, dtype=np.float64) / DAYS_PER_YEAR
    strata = int(z.max()) + 1 if z.size else 0
    cases_z = np.bincount(z, weights=cases, minlength=strata)
    if basis == BASIS_PERSON_TIME:
        exposure = person_years
    elif basis == BASIS_PROPORTION:
        exposure = n
    else:
        raise ValueError(f"Unknown basis {basis!r}.")
    exposure_z = np.bincount(z, weights=exposure, minlength=strata)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A stratum with no exposure adds nothing (its cells have none either).
        reference = np.where(exposure_z > 0, cases_z / np.where(exposure_z > 0, exposure_z, 1.0), 0.0)
    return np.bincount(g, weights=exposure * reference[z], minlength=groups)


def sir_measures(*, observed, expected) -> dict[str, np.ndarray]:
    """Return sir, sir_ci_low, sir_ci_high, p_high, p_low per group (NaN = empty)."""
    o = np.asarray(observed, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    has_e = e > 0
    safe_e = np.where(has_e, e, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        low_events = np.where(o == 0, 0.0, stats.chi2.ppf(0.025, 2 * o) / 2)
        high_events = stats.chi2.ppf(0.975, 2 * o + 2) / 2
    return {
        "sir": np.where(has_e, o / safe_e, np.nan),
        "sir_ci_low": np.where(has_e, low_events / safe_e, np.nan),
        "sir_ci_high": np.where(has_e, high_events / safe_e, np.nan),
        # P(X >= O) = sf(O - 1); with E = 0 scipy's Poisson is the point mass at 0.
        "p_high": stats.poisson.sf(o - 1, e),
        "p_low": stats.poisson.cdf(o, e),
    }


def flag(p_high: float, p_low: float) -> str:
    """Return the funnel flag of a group from its one-sided Poisson tail probabilities."""
    if p_high < 0.001:
        return FLAG_ABOVE_998
    if p_high < 0.025:
        return FLAG_ABOVE_95
    if p_low < 0.001:
        return FLAG_BELOW_998
    if p_low < 0.025:
        return FLAG_BELOW_95
    return ""


def _float(value: float) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def provider_rows(
    *, cells: Sequence[tuple], outcomes: Sequence[str], windows: Sequence[tuple[int, int | None]]
) -> list[dict]:
    """Return the comparison rows from aggregated cells.

    Each cell is (group value, stratum key (hashable), then per outcome k: n_k, cases_k, days_k).
    Rows come per outcome (in the order given), then per group (byte order).
    """
    group_values = sorted({cell[0] for cell in cells})
    group_code = {value: i for i, value in enumerate(group_values)}
    strata: dict = {}
    g = np.array([group_code[cell[0]] for cell in cells], dtype=np.int64)
    z = np.array([strata.setdefault(cell[1], len(strata)) for cell in cells], dtype=np.int64)
    counts = np.array([cell[2:] for cell in cells], dtype=np.int64).reshape(len(cells), 3 * len(outcomes))
    rows = []
    for k, outcome in enumerate(outcomes):
        basis = basis_of(windows[k])
        n, cases, days = counts[:, 3 * k], counts[:, 3 * k + 1], counts[:, 3 * k + 2]
        groups = len(group_values)
        n_g = np.bincount(g, weights=n, minlength=groups).astype(np.int64)
        o_g = np.bincount(g, weights=cases, minlength=groups).astype(np.int64)
        days_g = np.bincount(g, weights=days, minlength=groups).astype(np.int64)
        e_g = expected_cases(group_index=g, stratum_index=z, n=n, cases=cases, days=days, basis=basis, groups=groups)
        measures = sir_measures(observed=o_g, expected=e_g)
        for i, value in enumerate(group_values):
            p_high, p_low = float(measures["p_high"][i]), float(measures["p_low"][i])
            rows.append(
                {
                    "group": value,
                    "outcome": outcome,
                    "basis": basis,
                    "procedures": int(n_g[i]),
                    "observed": int(o_g[i]),
                    "person_years": int(days_g[i]) / DAYS_PER_YEAR,
                    "expected": float(e_g[i]),
                    "sir": _float(measures["sir"][i]),
                    "sir_ci_low": _float(measures["sir_ci_low"][i]),
                    "sir_ci_high": _float(measures["sir_ci_high"][i]),
                    "p_high": p_high,
                    "p_low": p_low,
                    "flag": flag(p_high, p_low),
                }
            )
    return rows


def build_provider_sql(params: IncidenceParams, *, group: str, adjust: Sequence[str]) -> tuple[str, dict]:
    """Return (sql, args): per (group, adjustment stratum), per outcome k, units n{k}, cases c{k}, days d{k}.

    n{k} counts the units in outcome k's denominator (d{k} not NULL); c{k} those that are
    cases (y{k} = 1); d{k} sums their days at risk.
    """
    # The units' attributes are asked for by name: no stratum columns.
    units_sql, args = build_units_sql(dataclasses.replace(params, strata=()), [group, *adjust])
    keys = [f"COALESCE(u.a_{name}::text, '')" for name in (group, *adjust)]
    measures = ", ".join(
        f"count(u.d{k}) AS n{k}, count(*) FILTER (WHERE u.y{k} = 1 AND u.d{k} IS NOT NULL) AS c{k}, "
        f"COALESCE(sum(u.d{k}), 0)::bigint AS d{k}"
        for k in range(len(params.outcomes))
    )
    positions = ", ".join(str(i + 1) for i in range(len(keys)))
    sql = f"SELECT {', '.join(keys)}, {measures} FROM ({units_sql}) u GROUP BY {positions}"  # noqa: S608 - fixed fragments
    return sql, args


def compare_providers(
    *, params: IncidenceParams, group: str, adjust: Sequence[str] = DEFAULT_ADJUST, using: str = "default"
) -> list[dict]:
    """Return the provider comparison of ``params`` by ``group``, adjusted for ``adjust``: one dict per
    (outcome, group) with the keys of COLUMNS (None = empty). Raises ValueError for an unknown name."""
    group, adjust = validate(group=group, adjust=adjust)
    sql, args = build_provider_sql(params, group=group, adjust=adjust)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, args)
        fetched = cursor.fetchall()
    width = 1 + len(adjust)
    cells = [(r[0], tuple(r[1:width]), *r[width:]) for r in fetched]
    return provider_rows(cells=cells, outcomes=params.outcomes, windows=params.windows)
