"""Run the incidence SQL and turn its aggregated rows into result rows with intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from django.db import connections, transaction

from reports import stats
from reports.choices import AGE_BANDS, HORIZONS, MARGIN, Stratum
from reports.engine.km import km_at_horizons, parse_days
from reports.engine.params import IncidenceParams
from reports.engine.sql import build_incidence_sql

DAYS_PER_YEAR = 365.25
# Memory for the report's sorts and hashes, for this transaction only: the per-procedure
# base table stays in memory instead of spilling to temporary files.
WORK_MEM = "256MB"

_AGE_ORDER = {label: i for i, (label, _, _) in enumerate(AGE_BANDS)}


@dataclass(frozen=True)
class KMEstimate:
    """Kaplan-Meier cumulative incidence 1 - S(t) at a horizon, with its 95 % interval."""

    value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class IncidenceRow:
    """One stratum (margins carry ``MARGIN``) and outcome, with every measure."""

    stratum: tuple[tuple[str, str], ...]
    outcome: str
    procedures: int
    cases: int
    person_days: int
    proportion: float | None
    proportion_ci_low: float | None
    proportion_ci_high: float | None
    person_years: float
    rate_per_100py: float | None
    rate_ci_low: float | None
    rate_ci_high: float | None
    km: dict[str, KMEstimate] = field(default_factory=dict)

    @property
    def is_margin(self) -> bool:
        return any(value == MARGIN for _, value in self.stratum)


def _list(values: np.ndarray) -> list[float | None]:
    """Return the array as Python floats, NaN (undefined) as None."""
    return [None if math.isnan(v) else v for v in np.asarray(values, dtype=np.float64).tolist()]


def _value_key(name: str, value: str) -> tuple:
    if value == MARGIN:
        return (1, 0, "")
    if name == Stratum.AGE_BAND:
        return (0, _AGE_ORDER.get(value, 99), value)
    if name == Stratum.YEAR:
        return (0, int(value), value)
    return (0, 0, value)


def _fetch(params: IncidenceParams, using: str) -> list[tuple]:
    sql, args = build_incidence_sql(params)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        # JIT-compiling this wide statement costs seconds and saves less than that.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, args)
        return cursor.fetchall()


def compute_incidence(*, params: IncidenceParams, using: str = "default") -> list[IncidenceRow]:
    """Return the incidence rows for ``params``: every stratum and margin, every outcome.

    One SQL statement does the counting; Python receives one row per stratum and
    outcome (counts, and the event days for Kaplan-Meier) plus one row of end days per
    stratum, and computes the intervals for all rows at once.
    """
    n_strata = len(params.strata)
    raw = _fetch(params, using)
    # Row layout: g, s0..s{n-1}, k, n, cases, person_days, days (see build_incidence_sql).
    ends_index: dict[tuple, int] = {}
    ends: list[np.ndarray] = []
    rows, row_days = [], []
    for record in raw:
        key = record[: 1 + n_strata]
        if record[1 + n_strata] < 0:
            ends_index[key] = len(ends)
            ends.append(parse_days(record[-1], 2 + len(params.outcomes)))
        else:
            rows.append(record[:-1])
            row_days.append(parse_days(record[-1], 2))
    del raw
    k_col = 1 + n_strata
    n = np.array([int(r[k_col + 1]) for r in rows], dtype=np.int64)
    cases = np.array([int(r[k_col + 2] or 0) for r in rows], dtype=np.int64)
    days = np.array([int(r[k_col + 3] or 0) for r in rows], dtype=np.int64)
    person_years = days / DAYS_PER_YEAR
    with np.errstate(divide="ignore", invalid="ignore"):
        proportion = np.where(n > 0, cases / np.where(n > 0, n, 1), np.nan)
        rate = np.where(person_years > 0, cases / np.where(person_years > 0, person_years, 1) * 100, np.nan)
    p_low, p_high = stats.proportion_interval(cases=cases, n=n, method=params.ci_method)
    r_low, r_high = stats.garwood_interval(cases=cases, person_years=person_years)

    km: dict[str, tuple] = {}
    if ends:
        sums = km_at_horizons(
            ends=ends,
            row_stratum=[ends_index.get(r[:k_col], -1) for r in rows],
            row_outcome=[r[k_col] for r in rows],
            row_days=row_days,
            horizons=list(HORIZONS),
        )
        for label, _ in HORIZONS:
            h = sums[label]
            value, low, high = stats.km_cumulative_incidence(
                log_survival=h.log_survival, reached_zero=h.reached_zero, greenwood=h.greenwood
            )
            # Past the longest follow-up the step function keeps its last value, as lifelines'
            # survival_function_at_times does (see reports.engine).
            km[label] = (value, low, high)
    missing = [None] * len(rows)
    columns = {
        name: _list(values)
        for name, values in {
            "proportion": proportion,
            "p_low": p_low,
            "p_high": p_high,
            "rate": rate,
            "r_low": r_low,
            "r_high": r_high,
        }.items()
    }
    km_columns = {label: [_list(a) for a in km[label]] if label in km else [missing] * 3 for label, _ in HORIZONS}
    n_list, cases_list, days_list, py_list = n.tolist(), cases.tolist(), days.tolist(), person_years.tolist()

    result = []
    for i, r in enumerate(rows):
        g = r[0]
        stratum = tuple(
            # GROUPING() sets the bit of the first argument highest.
            (name, MARGIN if g >> (n_strata - 1 - j) & 1 else r[1 + j])
            for j, name in enumerate(params.strata)
        )
        result.append(
            IncidenceRow(
                stratum=stratum,
                outcome=params.outcomes[r[k_col]],
                procedures=n_list[i],
                cases=cases_list[i],
                person_days=days_list[i],
                proportion=columns["proportion"][i],
                proportion_ci_low=columns["p_low"][i],
                proportion_ci_high=columns["p_high"][i],
                person_years=py_list[i],
                rate_per_100py=columns["rate"][i],
                rate_ci_low=columns["r_low"][i],
                rate_ci_high=columns["r_high"][i],
                km={label: KMEstimate(v[i], lo[i], hi[i]) for label, (v, lo, hi) in km_columns.items()},
            )
        )
    outcome_order = {o: i for i, o in enumerate(params.outcomes)}
    result.sort(key=lambda row: (outcome_order[row.outcome], *(_value_key(nm, v) for nm, v in row.stratum)))
    return result
