"""Kaplan-Meier cumulative incidence curves per stratum, from the engine's own per-procedure table.

The result rows hold 1 - S(t) only at the horizons; a chart needs S at every event day.
reports.engine.sql.build_curve_points_sql counts, from the same ``base`` as the incidence
rows, one row per finest stratum and day: events (first qualifying onsets of cases) and
censorings (the observation end of the others). Here the cells of a stratum are summed
(a margin "ALL" sums over that column) and reports.engine.km.km_step_curve walks the
days. Memory holds one row per finest stratum and distinct day of one outcome.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connections, transaction

from reports.choices import MARGIN
from reports.engine.compute import WORK_MEM
from reports.engine.km import km_step_curve
from reports.engine.params import IncidenceParams
from reports.engine.sql import build_curve_points_sql


@dataclass(frozen=True)
class Curve:
    """A step curve: ``days[i]`` is where the cumulative incidence becomes ``cuminc[i]``."""

    stratum: tuple[tuple[str, str], ...]
    procedures: int
    days: list[int]
    cuminc: list[float]

    @property
    def label(self) -> str:
        return stratum_label(self.stratum)

    def at(self, day: int) -> float:
        """Return 1 - S(day) (inclusive: an event on ``day`` counts); the last value past the data."""
        value = 0.0
        for d, c in zip(self.days, self.cuminc, strict=True):
            if d > day:
                break
            value = c
        return value


def stratum_label(stratum) -> str:
    """Return "knee / bmac" for a stratum (pairs or dict); "All procedures" for the overall margin."""
    values = [v for _, v in (stratum.items() if isinstance(stratum, dict) else stratum)]
    if not values or all(v == MARGIN for v in values):
        return "All procedures"
    return " / ".join("all" if v == MARGIN else str(v) for v in values)


def _curve_points(params: IncidenceParams, outcome: str, using: str) -> list[tuple]:
    """Return rows (s0..s{n-1}, day, events, censored) at the finest strata."""
    sql, args = build_curve_points_sql(params, outcome=outcome)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, args)
        return cursor.fetchall()


def km_curves(
    *, params: IncidenceParams, outcome: str, strata: Sequence[dict] | None = None, using: str = "default"
) -> list[Curve]:
    """Return the Kaplan-Meier curves of ``outcome`` for the report of ``params``, one per stratum.

    ``strata``: the strata wanted ({column: value or "ALL"}); default every finest stratum
    (no margins), then the overall margin.
    """
    names = list(params.strata)
    cells: dict[tuple, dict[int, list[int]]] = defaultdict(dict)
    for record in _curve_points(params, outcome, using):
        key, (day, events, censored) = tuple(record[: len(names)]), record[len(names) :]
        cells[key][int(day)] = [int(events), int(censored)]
    if strata is None:
        if names:
            strata = [dict(zip(names, key, strict=True)) for key in sorted(cells)]
            strata.append(dict.fromkeys(names, MARGIN))
        else:
            strata = [{}]
    curves = []
    for wanted in strata:
        merged: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for key, counts in cells.items():
            if all(wanted.get(n, MARGIN) in (MARGIN, v) for n, v in zip(names, key, strict=True)):
                for day, (events, censored) in counts.items():
                    merged[day][0] += events
                    merged[day][1] += censored
        total, days, cuminc = km_step_curve({day: (e, c) for day, (e, c) in merged.items()})
        curves.append(
            Curve(stratum=tuple((n, wanted.get(n, MARGIN)) for n in names), procedures=total, days=days, cuminc=cuminc)
        )
    return curves
