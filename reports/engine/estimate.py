"""How many rows a report will have, known before it runs (and cheaply when it is far too many).

A report has one row per outcome for every non-empty group of GROUP BY CUBE(strata):
each subset S of the strata (the others at their margin, "ALL") contributes the number
of distinct value combinations of S among the report's procedures. One cheap grouping
of the procedures gives f, the non-empty finest combinations, and d_i, the distinct
values of each stratum; every subset S then has between max(d_i, i in S) and
min(f, product of d_i, i in S) groups (exactly f for all strata, 1 for none).
When even the lower bound is over the limit the report is refused at once; when the
bounds meet, that is the answer; otherwise PostgreSQL counts the CUBE groups over the
f finest combinations (at most limit / outcomes of them, so this stays cheap).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from django.db import connections, transaction

from reports.engine.params import IncidenceParams
from reports.engine.sql import build_estimate_sql

ESTIMATE_WORK_MEM = "64MB"


@dataclass(frozen=True)
class SizeEstimate:
    """The number of result rows of a report: groups (strata and margins) x outcomes."""

    groups: int
    outcomes: int
    exact: bool  # False: ``groups`` is a lower bound, already enough to refuse

    @property
    def rows(self) -> int:
        return self.groups * self.outcomes


def _bounds(finest: int, distinct: list[int]) -> tuple[int, int]:
    """Return (lower, upper) bounds of the number of CUBE groups from f and the d_i."""
    k = len(distinct)
    lower = upper = 0
    for size in range(k + 1):
        for subset in itertools.combinations(range(k), size):
            if size == 0:
                low = high = 1  # the grand total: one row even without procedures
            elif size == k:
                low = high = finest
            else:
                low = max(distinct[i] for i in subset)
                high = min(finest, math.prod(distinct[i] for i in subset))
            lower += low
            upper += high
    return lower, upper


def estimate_result_rows(*, params: IncidenceParams, limit: int | None = None, using: str = "default") -> SizeEstimate:
    """Return the number of rows the report of ``params`` would have now.

    With ``limit``, an estimate whose lower bound already exceeds it is returned as is
    (``exact`` False) without counting further.
    """
    outcomes = len(params.outcomes)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        # Enough memory to group a registry's procedures by hashing, without temporary files.
        cursor.execute(f"SET LOCAL work_mem = '{ESTIMATE_WORK_MEM}'")
        sql, args = build_estimate_sql(params, exact=False)
        cursor.execute(sql, args)
        finest, *distinct = cursor.fetchone()
        if not params.strata:
            return SizeEstimate(groups=1, outcomes=outcomes, exact=True)
        lower, upper = _bounds(finest, distinct)
        if lower == upper:
            return SizeEstimate(groups=lower, outcomes=outcomes, exact=True)
        if limit is not None and lower * outcomes > limit:
            return SizeEstimate(groups=lower, outcomes=outcomes, exact=False)
        sql, args = build_estimate_sql(params, exact=True)
        cursor.execute(sql, args)
        (groups,) = cursor.fetchone()
    return SizeEstimate(groups=groups, outcomes=outcomes, exact=True)
