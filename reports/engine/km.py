"""Kaplan-Meier sums for every stratum and outcome at once, from day counts (numpy).

The SQL gives, per stratum and outcome, the event days t with d(t) first qualifying
onsets of cases; and per stratum the end days u with ``ne(u)`` procedures whose time
without an event ends at u (days capped past the last horizon), of which ``x_k(u)`` are
cases of outcome k. The number at risk on day t (everyone whose time is >= t, so events
come before censorings on the same day) is

    n(t) = total - #{ends < t} + #{cases of k with end < t} - #{cases of k with onset < t}.

Everything is vectorised over the concatenation of all rows' event days, sorted by
(row, day): per-row sums are ``bincount``s in ascending day order, like lifelines'
cumulative sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_STRIDE = 1 << 20  # > any day number: (stratum, day) packed as stratum * _STRIDE + day


@dataclass(frozen=True)
class KMHorizon:
    """Per-row arrays at one horizon: log S, S reached 0, Greenwood sum, number at risk."""

    log_survival: np.ndarray
    reached_zero: np.ndarray
    greenwood: np.ndarray
    at_risk: np.ndarray


def parse_days(text: str | None, width: int) -> np.ndarray:
    """Return the comma-separated integers of ``text`` as rows of ``width`` (none for None)."""
    if not text:
        return np.zeros((0, width), dtype=np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",").reshape(-1, width)


def km_at_horizons(
    *,
    ends: list[np.ndarray],
    row_stratum: list[int],
    row_outcome: list[int],
    row_days: list[np.ndarray],
    horizons: list[tuple[str, int]],
) -> dict[str, KMHorizon]:
    """Return {label: KMHorizon} for each result row.

    ``ends[i]`` = rows of [day, ends, x0, x1, ...] of stratum i; result row r belongs to
    stratum ``row_stratum[r]`` (-1: a stratum without procedures) and outcome
    ``row_outcome[r]``, with rows of [day, events] ``row_days[r]``.
    """
    n_rows = len(row_stratum)
    stratum = np.asarray(row_stratum, dtype=np.int64)
    outcome = np.asarray(row_outcome, dtype=np.int64)
    width = 1 + (int(outcome.max()) + 1 if n_rows else 0)

    # All strata's end days, packed and sorted, with cumulative counts (leading zero row).
    lengths = np.array([len(e) for e in ends], dtype=np.int64)
    end_key = np.concatenate([e[:, 0] + i * _STRIDE for i, e in enumerate(ends)] or [np.zeros(0, np.int64)])
    end_val = np.concatenate([e[:, 1:] for e in ends] or [np.zeros((0, width), np.int64)])
    order = np.argsort(end_key, kind="stable")
    end_key, end_val = end_key[order], end_val[order]
    cum = np.vstack([np.zeros((1, end_val.shape[1]), dtype=np.int64), np.cumsum(end_val, axis=0)])
    first = np.concatenate([[0], np.cumsum(lengths)])  # stratum i's ends: first[i]..first[i+1]
    totals = cum[first[1:], 0] - cum[first[:-1], 0]

    has = stratum >= 0
    safe = np.where(has, stratum, 0)
    row_first = first[safe] if len(first) > 1 else np.zeros(n_rows, np.int64)

    def before(row_ids: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Return, per (row, day), ends - cases of the row's outcome with end day < day."""
        idx = np.searchsorted(end_key, safe[row_ids] * _STRIDE + days, side="left")
        start = row_first[row_ids]
        ends_before = cum[idx, 0] - cum[start, 0]
        cases_before = cum[idx, 1 + outcome[row_ids]] - cum[start, 1 + outcome[row_ids]]
        return ends_before - cases_before

    # Every row's event days, sorted by (row, day).
    sizes = np.array([len(days) for days in row_days], dtype=np.int64)
    rid = np.repeat(np.arange(n_rows, dtype=np.int64), sizes)
    pairs = np.concatenate(row_days or [np.zeros((0, 2), np.int64)])
    t, d = pairs[:, 0], pairs[:, 1]
    order = np.lexsort((t, rid))
    rid, t, d = rid[order], t[order], d[order]
    run = np.cumsum(d) - d  # events before this element, over all rows
    row_start = np.searchsorted(rid, np.arange(n_rows), side="left")
    onset_before = run - np.concatenate([run, [0]])[row_start][rid] if len(t) else run
    n = totals[safe[rid]] - before(rid, t) - onset_before if len(t) else np.zeros(0, np.int64)

    alive = n > d
    with np.errstate(divide="ignore", invalid="ignore"):
        log_step = np.where(alive, np.log(np.where(alive, n - d, 1)) - np.log(np.where(n > 0, n, 1)), 0.0)
        green = np.where(alive, d / (n * np.where(alive, n - d, 1)), 0.0)

    out = {}
    all_rows = np.arange(n_rows, dtype=np.int64)
    for label, horizon in horizons:
        upto = t <= horizon
        early = t < horizon
        onsets = np.bincount(rid[early], weights=d[early], minlength=n_rows).astype(np.int64)
        risk = totals[safe] - before(all_rows, np.full(n_rows, horizon, dtype=np.int64)) - onsets
        out[label] = KMHorizon(
            log_survival=np.bincount(rid[upto], weights=log_step[upto], minlength=n_rows),
            reached_zero=np.bincount(rid[upto & ~alive], minlength=n_rows) > 0,
            greenwood=np.bincount(rid[upto], weights=green[upto], minlength=n_rows),
            at_risk=np.where(has, risk, 0),
        )
    return out


def km_step_curve(counts: dict[int, tuple[int, int]]) -> tuple[int, list[int], list[float]]:
    """Return (units, days, 1 - S) of the Kaplan-Meier step curve from {day: (events, censored)}.

    n(t) = everyone whose time is >= t (events before censorings on the same day),
    S(t) = prod (1 - d/n); ``days[i]`` is where 1 - S becomes ``cuminc[i]``, from day 0.
    """
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
