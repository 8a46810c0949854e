"""Kaplan-Meier cumulative incidence curves per stratum, counted in PostgreSQL.

The stored result rows hold 1 - S(t) only at the horizons. For a curve the chart needs
S at every event day, so this module runs the engine's own per-procedure CTEs (``ev``,
``vis`` and ``base`` of reports.engine.sql.build_incidence_sql, cut out of that very
statement, so the counting rules cannot drift apart) and aggregates them to one row per
finest stratum, day: events (first qualifying onsets of cases) and censorings (the
observation end of non-cases). Python then sums the cells of a stratum (a margin "ALL"
sums over that column) and walks the days: n(t) = everyone whose time is >= t (events
before censorings on the same day), S(t) = prod (1 - d/n). Memory stays at one row per
stratum and distinct day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connections, transaction

from reports.choices import MARGIN
from reports.engine.compute import WORK_MEM
from reports.engine.sql import build_incidence_sql
from reports.models import IncidenceRun
from reports.services import run_params

_CUT = "fine AS MATERIALIZED"


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


def _day_counts(run: IncidenceRun, outcome: str, using: str) -> list[tuple]:
    """Return rows (s0..s{n-1}, day, events, censored) at the finest strata of ``run``."""
    params = run_params(run)
    k = params.outcomes.index(outcome)
    sql, args = build_incidence_sql(params)
    head, found, _ = sql.partition(_CUT)
    if not found:  # pragma: no cover - guards a rewrite of reports.engine.sql
        raise RuntimeError("reports.engine.sql no longer has the per-procedure 'base' CTE this module reads.")
    strata = "".join(f"COALESCE(s{i}, '') AS s{i}, " for i in range(len(params.strata)))
    plain = "".join(f"s{i}, " for i in range(len(params.strata)))
    query = (
        head.rstrip().rstrip(",")
        + f"""
SELECT {strata}COALESCE(t{k}, e) AS day, count(t{k}) AS events, count(*) - count(t{k}) AS censored
FROM base
GROUP BY {plain}COALESCE(t{k}, e)
"""  # noqa: S608 - fixed fragments and a validated outcome index; values are bound
    )
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(query, args)
        return cursor.fetchall()


def _km(counts: dict[int, list[int]]) -> tuple[int, list[int], list[float]]:
    """Return (procedures, days, 1 - S) from {day: [events, censored]}."""
    total = sum(e + c for e, c in counts.values())
    at_risk, survival = total, 1.0
    days, cuminc = [0], [0.0]
    for day in sorted(counts):
        events, censored = counts[day]
        if events and at_risk > 0:
            survival *= 1.0 - events / at_risk
            if day == 0:
                cuminc[0] = 1.0 - survival
            else:
                days.append(day)
                cuminc.append(1.0 - survival)
        at_risk -= events + censored
    return total, days, cuminc


def km_curves(
    run: IncidenceRun, *, outcome: str, strata: list[dict] | None = None, using: str = "default"
) -> list[Curve]:
    """Return the Kaplan-Meier curves of ``outcome`` in ``run``, one per stratum.

    ``strata``: the strata wanted, as stored ({column: value or "ALL"}); default every
    finest stratum of the run (no margins) and the overall margin. Scope and cut-off are
    the run's own.
    """
    names = list(run.strata)
    cells: dict[tuple, dict[int, list[int]]] = defaultdict(dict)
    for record in _day_counts(run, outcome, using):
        key, (day, events, censored) = tuple(record[: len(names)]), record[len(names) :]
        cells[key][int(day)] = [int(events), int(censored)]
    if strata is None:
        strata = [dict(zip(names, key, strict=True)) for key in sorted(cells)]
        if names:
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
        total, days, cuminc = _km(merged)
        curves.append(
            Curve(stratum=tuple((n, wanted.get(n, MARGIN)) for n in names), procedures=total, days=days, cuminc=cuminc)
        )
    return curves
