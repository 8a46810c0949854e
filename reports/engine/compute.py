"""Run the incidence SQL and turn its aggregated rows, a batch at a time, into result rows with intervals."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from django.db import connections, transaction

from reports.choices import HORIZONS, MARGIN
from reports.engine import stats
from reports.engine.km import km_at_horizons, parse_days
from reports.engine.params import IncidenceParams
from reports.engine.sql import build_incidence_sql

DAYS_PER_YEAR = 365.25
# Memory for the report's sorts and hashes, for this transaction only: the per-procedure
# base table stays in memory instead of spilling to temporary files.
WORK_MEM = "256MB"
# Rows read per round trip from the server-side cursor, and the most rows (or characters of
# Kaplan-Meier input) turned into results at once: a batch is a few megabytes at most.
FETCH_ROWS = 500
BATCH_ROWS = 2000
BATCH_CHARS = 8_000_000


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
    aj: dict[str, float | None] = field(default_factory=dict)

    @property
    def is_margin(self) -> bool:
        return any(value == MARGIN for _, value in self.stratum)


def _list(values: np.ndarray) -> list[float | None]:
    """Return the array as Python floats, NaN (undefined) as None."""
    return [None if math.isnan(v) else v for v in np.asarray(values, dtype=np.float64).tolist()]


def _rows_of_batch(params: IncidenceParams, batch: list[tuple], first_group: int) -> list[tuple[int, IncidenceRow]]:
    """Return (position, row) for a batch of SQL rows holding whole groups, every measure computed at once.

    ``first_group`` is the report-wide index of the batch's first group.
    """
    n_strata = len(params.strata)
    k_col = 1 + n_strata
    n = np.array([int(r[k_col + 1]) for r in batch], dtype=np.int64)
    cases = np.array([int(r[k_col + 2] or 0) for r in batch], dtype=np.int64)
    deaths = [int(r[k_col + 3] or 0) for r in batch]
    days = np.array([int(r[k_col + 4] or 0) for r in batch], dtype=np.int64)
    person_years = days / DAYS_PER_YEAR
    with np.errstate(divide="ignore", invalid="ignore"):
        proportion = np.where(n > 0, cases / np.where(n > 0, n, 1), np.nan)
        rate = np.where(person_years > 0, cases / np.where(person_years > 0, person_years, 1) * 100, np.nan)
    p_low, p_high = stats.proportion_interval(cases=cases, n=n, method=params.ci_method)
    r_low, r_high = stats.garwood_interval(cases=cases, person_years=person_years)

    # A group's end days come on its first row (k = 0); its other rows follow it.
    ends: list[np.ndarray] = []
    row_group = []
    for r in batch:
        if r[k_col] == 0:
            ends.append(parse_days(r[k_col + 6], 2 + len(params.outcomes)))
        row_group.append(len(ends) - 1)
    sums = km_at_horizons(
        ends=ends,
        row_stratum=row_group,
        row_outcome=[r[k_col] for r in batch],
        row_start=[params.windows[r[k_col]][0] for r in batch],
        row_cases=cases.tolist(),
        row_deaths=deaths,
        row_days=[parse_days(r[k_col + 5], 3) for r in batch],
        horizons=list(HORIZONS),
    )
    km, aj = {}, {}
    for label, _ in HORIZONS:
        h = sums[label]
        # Past the longest follow-up the step function keeps its last value, as lifelines'
        # survival_function_at_times does (see reports.engine).
        value, low, high = stats.km_cumulative_incidence(
            log_survival=h.log_survival, reached_zero=h.reached_zero, greenwood=h.greenwood
        )
        # No units at all (the total of an empty report, an outcome nobody is at risk of): no estimate, not 0.
        value, low, high = (np.where(n > 0, a, np.nan) for a in (value, low, high))
        km[label] = (_list(value), _list(low), _list(high))
        aj[label] = _list(np.where(n > 0, h.aj_cuminc, np.nan))
    columns = [_list(a) for a in (proportion, p_low, p_high, rate, r_low, r_high)]
    n_list, cases_list, days_list, py_list = n.tolist(), cases.tolist(), days.tolist(), person_years.tolist()

    result = []
    for i, r in enumerate(batch):
        g, k, groups = r[0], r[k_col], r[-1]
        stratum = tuple(
            # GROUPING() sets the bit of the first argument highest.
            (name, MARGIN if g >> (n_strata - 1 - j) & 1 else r[1 + j])
            for j, name in enumerate(params.strata)
        )
        row = IncidenceRow(
            stratum=stratum,
            outcome=params.outcomes[k],
            procedures=n_list[i],
            cases=cases_list[i],
            person_days=days_list[i],
            proportion=columns[0][i],
            proportion_ci_low=columns[1][i],
            proportion_ci_high=columns[2][i],
            person_years=py_list[i],
            rate_per_100py=columns[3][i],
            rate_ci_low=columns[4][i],
            rate_ci_high=columns[5][i],
            km={label: KMEstimate(v[i], lo[i], hi[i]) for label, (v, lo, hi) in km.items()},
            aj={label: values[i] for label, values in aj.items()},
        )
        result.append((k * groups + first_group + row_group[i], row))
    return result


def iter_incidence(
    *, params: IncidenceParams, using: str = "default", batch_rows: int = BATCH_ROWS
) -> Iterator[tuple[int, IncidenceRow]]:
    """Yield (report position, row) for every stratum and margin and every outcome of ``params``.

    One SQL statement does the counting; its rows come one group (stratum or margin) at
    a time, in report order, through a server-side cursor, and are turned into result
    rows (intervals, Kaplan-Meier) a few whole groups at a time: memory holds one batch,
    whatever the size of the report. Rows come group by group (each group's outcomes
    together); the position says where each goes in the report (outcome, then strata).
    The SQL runs in a transaction of its own (a savepoint inside the caller's).
    """
    sql, args = build_incidence_sql(params)
    k_col = 1 + len(params.strata)
    with transaction.atomic(using=using):
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            # JIT-compiling this wide statement costs seconds and saves less than that.
            cursor.execute("SET LOCAL jit = off")
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, args)
            batch: list[tuple] = []
            size = 0
            done_groups = 0
            while True:
                fetched = cursor.fetchmany(FETCH_ROWS)
                for record in fetched:
                    # Flush only between groups, so a batch holds every row of its groups.
                    if record[k_col] == 0 and (len(batch) >= batch_rows or size >= BATCH_CHARS):
                        yield from _rows_of_batch(params, batch, done_groups)
                        done_groups += sum(1 for r in batch if r[k_col] == 0)
                        batch, size = [], 0
                    batch.append(record)
                    size += len(record[k_col + 5] or "") + len(record[k_col + 6] or "")
                if not fetched:
                    break
            if batch:
                yield from _rows_of_batch(params, batch, done_groups)


def compute_incidence(*, params: IncidenceParams, using: str = "default") -> list[IncidenceRow]:
    """Return every incidence row for ``params``, in report order (see iter_incidence).

    Holds the whole report in memory: for tests and small reports. Stored runs and the
    command stream with iter_incidence.
    """
    return [row for _, row in sorted(iter_incidence(params=params, using=using), key=lambda item: item[0])]
