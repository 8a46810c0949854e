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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from django.db import connections, transaction

from reports.choices import MARGIN
from reports.engine.compute import FETCH_ROWS, WORK_MEM
from reports.engine.km import km_step_curve
from reports.engine.params import IncidenceParams
from reports.engine.sql import build_curve_points_sql


@dataclass(frozen=True)
class Curve:
    """A step curve: ``days[i]`` is where the Kaplan-Meier cumulative incidence becomes ``cuminc[i]`` and the
    Aalen-Johansen one (death a competing risk) ``aj[i]``; days count from the start of the risk window."""

    stratum: tuple[tuple[str, str], ...]
    procedures: int
    days: list[int]
    cuminc: list[float]
    aj: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        return stratum_label(self.stratum)

    def at(self, day: int, *, aj: bool = False) -> float:
        """Return 1 - S(day), or the Aalen-Johansen value with ``aj`` (inclusive: an event on ``day``
        counts); the last value past the data."""
        value = 0.0
        for d, c in zip(self.days, self.aj if aj else self.cuminc, strict=True):
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


def iter_km_curves(
    *,
    params: IncidenceParams,
    outcomes: Sequence[str] | None = None,
    strata: Sequence[dict] | None = None,
    using: str = "default",
) -> Iterator[tuple[str, list[Curve]]]:
    """Yield (outcome, curves) for each of ``outcomes`` (default every outcome of ``params``), one curve per stratum.

    ``strata``: the strata wanted ({column: value or "ALL"}); default every finest stratum
    (no margins), then the overall margin. One statement reads the per-procedure table once
    for all outcomes; its rows stream through a server-side cursor, an outcome at a time, so
    memory holds one outcome's day counts.
    """
    ks = sorted(params.outcomes.index(o) for o in (outcomes or params.outcomes))
    for k, cells in _day_counts(params, ks, using):
        yield params.outcomes[k], _curves(params, cells, strata)


def _day_counts(params: IncidenceParams, ks: list[int], using: str) -> Iterator[tuple[int, dict]]:
    """Yield (k, {finest stratum: {day: [events, censored]}}) for each outcome index of ``ks``, in order
    (an outcome without procedures has no day at all)."""
    sql, args = build_curve_points_sql(params, outcomes=[params.outcomes[k] for k in ks])
    waiting = iter(ks)
    with transaction.atomic(using=using):
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            cursor.execute("SET LOCAL jit = off")
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, args)
            current, cells = next(waiting), defaultdict(dict)
            while rows := cursor.fetchmany(FETCH_ROWS):
                for k, *record in rows:
                    while k != current:
                        yield current, cells
                        current, cells = next(waiting), defaultdict(dict)
                    key, (day, events, censored, deaths) = tuple(record[:-4]), record[-4:]
                    cells[key][int(day)] = [int(events), int(censored), int(deaths)]
    yield current, cells
    for k in waiting:
        yield k, {}


def km_curves(
    *, params: IncidenceParams, outcome: str, strata: Sequence[dict] | None = None, using: str = "default"
) -> list[Curve]:
    """Return the Kaplan-Meier curves of ``outcome`` for the report of ``params``, one per stratum (see
    iter_km_curves)."""
    for _, curves in iter_km_curves(params=params, outcomes=[outcome], strata=strata, using=using):
        return curves
    return []  # pragma: no cover - the overall curve always comes, even of no procedures


def _curves(params: IncidenceParams, cells: dict[tuple, dict[int, list[int]]], strata) -> list[Curve]:
    """Return one curve per wanted stratum from the day counts of the finest strata."""
    names = list(params.strata)
    if strata is None:
        if names:
            strata = [dict(zip(names, key, strict=True)) for key in sorted(cells)]
            strata.append(dict.fromkeys(names, MARGIN))
        else:
            strata = [{}]
    curves = []
    for wanted in strata:
        merged: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
        for key, counts in cells.items():
            if all(wanted.get(n, MARGIN) in (MARGIN, v) for n, v in zip(names, key, strict=True)):
                for day, (events, censored, deaths) in counts.items():
                    merged[day][0] += events
                    merged[day][1] += censored
                    merged[day][2] += deaths
        total, days, cuminc, aj = km_step_curve({day: tuple(c) for day, c in merged.items()})
        curves.append(
            Curve(
                stratum=tuple((n, wanted.get(n, MARGIN)) for n in names),
                procedures=total,
                days=days,
                cuminc=cuminc,
                aj=aj,
            )
        )
    return curves
