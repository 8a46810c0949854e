"""Run the incidence SQL and turn its aggregated rows into result rows with intervals."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connections, transaction

from reports import stats
from reports.choices import AGE_BANDS, HORIZONS, MARGIN, Stratum
from reports.engine.params import IncidenceParams
from reports.engine.sql import build_incidence_sql

DAYS_PER_YEAR = 365.25
# Memory for the report's sorts and hashes, for this transaction only: the base table
# of one row per procedure stays in memory instead of spilling to temporary files.
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


def _km(row: dict, label: str, day: int) -> KMEstimate:
    """Return the KM estimate at ``day``; empty when nobody was followed that long.

    Estimable means some procedure's time (days to its case onset, else to its
    observation end) is >= ``day``: then S(day) is the product over event days <= day,
    exactly lifelines' survival_function_at_times(day). When every time is shorter,
    lifelines would carry the last value forward; the registry reports nothing.
    """
    max_time = row["maxt"]
    if max_time is None or max_time < day:
        return KMEstimate(None, None, None)
    value, low, high = stats.km_cumulative_incidence(
        log_survival=float(row[f"l_{label}"] or 0.0),
        reached_zero=bool(row[f"z_{label}"]),
        greenwood=float(row[f"v_{label}"] or 0.0),
    )
    return KMEstimate(value, low, high)


def _row(params: IncidenceParams, raw: dict) -> IncidenceRow:
    g = raw["g"]
    k = len(params.strata)
    stratum = tuple(
        # GROUPING() sets the bit of the first argument highest.
        (name, MARGIN if g >> (k - 1 - i) & 1 else raw[f"s{i}"])
        for i, name in enumerate(params.strata)
    )
    n, cases, days = int(raw["n"]), int(raw["cases"] or 0), int(raw["days"] or 0)
    person_years = days / DAYS_PER_YEAR
    p_low, p_high = stats.proportion_interval(cases=cases, n=n, method=params.ci_method)
    r_low, r_high = stats.garwood_interval(cases=cases, person_years=person_years)
    return IncidenceRow(
        stratum=stratum,
        outcome=params.outcomes[raw["k"]],
        procedures=n,
        cases=cases,
        person_days=days,
        proportion=cases / n if n else None,
        proportion_ci_low=p_low,
        proportion_ci_high=p_high,
        person_years=person_years,
        rate_per_100py=cases / person_years * 100 if person_years > 0 else None,
        rate_ci_low=r_low,
        rate_ci_high=r_high,
        km={label: _km(raw, label, day) for label, day in HORIZONS},
    )


def _value_key(name: str, value: str) -> tuple:
    if value == MARGIN:
        return (1, 0, "")
    if name == Stratum.AGE_BAND:
        return (0, _AGE_ORDER.get(value, 99), value)
    if name == Stratum.YEAR:
        return (0, int(value), value)
    return (0, 0, value)


def _sort_key(params: IncidenceParams, row: IncidenceRow) -> tuple:
    return (params.outcomes.index(row.outcome), *(_value_key(name, value) for name, value in row.stratum))


def compute_incidence(*, params: IncidenceParams, using: str = "default") -> list[IncidenceRow]:
    """Return the incidence rows for ``params``: every stratum and margin, every outcome.

    One SQL statement does the counting; Python sees one row per stratum and outcome.
    """
    sql, args = build_incidence_sql(params)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute(sql, args)
        names = [col.name for col in cursor.description]
        raw_rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    rows = [_row(params, raw) for raw in raw_rows]
    rows.sort(key=lambda row: _sort_key(params, row))
    return rows
