"""Kaplan-Meier and Aalen-Johansen sums for every stratum and outcome at once, from day counts (numpy).

The SQL gives, per stratum, the observation ends e (days from time zero, capped) with the
units ending there, ne(e), and x_k(e) of them that are not censored for outcome k (cases,
competing deaths, units out of its denominator); and per stratum and outcome the event days
u (days from the start A = T + s_k of the risk window) with c(u) cases and z(u) competing
deaths, plus the totals C and Z. A unit censored for k is at risk on day u when its
observation end e >= u + s_k (its days are min(e, end) - s_k, and no event happens past the
window's end); a case or death when its own day >= u. So the number at risk on day u (events
before censorings on the same day) is

    n(u) = #{e >= u + s_k} - #{x_k with e >= u + s_k} + (C - #{cases before u}) + (Z - #{deaths before u}).

Kaplan-Meier treats a competing death as a censoring: S(t) = prod over u <= t of
(1 - c(u) / n(u)). Aalen-Johansen (DESIGN 2b): CIF(h) = sum over u <= h of
S(u-) c(u) / n(u), with S(u-) = prod over v < u of (1 - (c(v) + z(v)) / n(v)).

Everything is vectorised over the concatenation of all rows' event days, sorted by (row, day):
per-row sums are ``bincount``s and cumulative sums in ascending day order, like lifelines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_STRIDE = 1 << 20  # > any day number: (stratum, day) packed as stratum * _STRIDE + day


@dataclass(frozen=True)
class KMHorizon:
    """Per-row arrays at one horizon: log S, S reached 0, Greenwood sum, Aalen-Johansen cumulative incidence."""

    log_survival: np.ndarray
    reached_zero: np.ndarray
    greenwood: np.ndarray
    aj_cuminc: np.ndarray


def parse_days(text: str | None, width: int) -> np.ndarray:
    """Return the comma-separated integers of ``text`` as rows of ``width`` (none for None)."""
    if not text:
        return np.zeros((0, width), dtype=np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",").reshape(-1, width)


def _exclusive_cumsum(values: np.ndarray, row_start: np.ndarray, rid: np.ndarray) -> np.ndarray:
    """Return, per element, the sum of the earlier elements of its row (rows are contiguous)."""
    run = np.cumsum(values) - values
    return run - run[row_start[rid]] if len(values) else run


def km_at_horizons(
    *,
    ends: list[np.ndarray],
    row_stratum: list[int],
    row_outcome: list[int],
    row_start: list[int],
    row_cases: list[int],
    row_deaths: list[int],
    row_days: list[np.ndarray],
    horizons: list[tuple[str, int]],
) -> dict[str, KMHorizon]:
    """Return {label: KMHorizon}, one element per result row.

    ``ends[i]`` = rows of [e, units, x0, x1, ...] of stratum i; result row r belongs to stratum
    ``row_stratum[r]`` and outcome ``row_outcome[r]`` (window start ``row_start[r]``), has
    ``row_cases[r]`` cases and ``row_deaths[r]`` competing deaths in all, and ``row_days[r]`` =
    rows of [day, cases, deaths], one per day, in any order.
    """
    n_rows = len(row_stratum)
    stratum = np.asarray(row_stratum, dtype=np.int64)
    outcome = np.asarray(row_outcome, dtype=np.int64)
    start = np.asarray(row_start, dtype=np.int64)
    width = 1 + (int(outcome.max()) + 1 if n_rows else 0)

    # All strata's ends, packed and sorted, with cumulative counts (leading zero row).
    lengths = np.array([len(e) for e in ends], dtype=np.int64)
    end_key = np.concatenate([e[:, 0] + 1 + i * _STRIDE for i, e in enumerate(ends)] or [np.zeros(0, np.int64)])
    end_val = np.concatenate([e[:, 1:] for e in ends] or [np.zeros((0, width), np.int64)])
    order = np.argsort(end_key, kind="stable")
    end_key, end_val = end_key[order], end_val[order]
    cum = np.vstack([np.zeros((1, end_val.shape[1]), dtype=np.int64), np.cumsum(end_val, axis=0)])
    first = np.concatenate([[0], np.cumsum(lengths)])  # stratum i's ends: first[i]..first[i+1]
    last = cum[first[1:]] if len(first) > 1 else np.zeros((0, end_val.shape[1]), np.int64)

    # Every row's event days, sorted by (row, day).
    sizes = np.array([len(days) for days in row_days], dtype=np.int64)
    rid = np.repeat(np.arange(n_rows, dtype=np.int64), sizes)
    triples = np.concatenate(row_days) if n_rows and sizes.sum() else np.zeros((0, 3), np.int64)
    order = np.lexsort((triples[:, 0], rid))
    rid, triples = rid[order], triples[order]
    t, c, z = triples[:, 0], triples[:, 1], triples[:, 2]
    row_first = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if n_rows else np.zeros(0, np.int64)

    if len(t):
        # Censored units at risk: ends e >= t + s, less the x_k among them (e stored + 1, so -1 packs below 0).
        st = stratum[rid]
        idx = np.searchsorted(end_key, st * _STRIDE + t + start[rid] + 1, side="left")
        col = 1 + outcome[rid]
        tail = last[st, 0] - cum[idx, 0] - (last[st, col] - cum[idx, col])
        cases_before = _exclusive_cumsum(c, row_first, rid)
        deaths_before = _exclusive_cumsum(z, row_first, rid)
        n = tail + (np.asarray(row_cases, np.int64)[rid] - cases_before)
        n = n + (np.asarray(row_deaths, np.int64)[rid] - deaths_before)
    else:
        n = np.zeros(0, np.int64)

    alive = n > c
    positive = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_step = np.where(alive, np.log(np.where(alive, n - c, 1)) - np.log(np.where(positive, n, 1)), 0.0)
        green = np.where(alive, c / (n * np.where(alive, n - c, 1)), 0.0)
        # All-cause survival just before each day: the product of the earlier days' factors.
        factor = np.where(positive, 1.0 - (c + z) / np.where(positive, n, 1), 1.0)
    dead = factor <= 0.0
    before = np.exp(_exclusive_cumsum(np.log(np.where(dead, 1.0, factor)), row_first, rid))
    before = np.where(_exclusive_cumsum(dead.astype(np.int64), row_first, rid) > 0, 0.0, before)
    with np.errstate(divide="ignore", invalid="ignore"):
        aj_step = np.where(positive, before * c / np.where(positive, n, 1), 0.0)

    out = {}
    for label, horizon in horizons:
        upto = t <= horizon
        out[label] = KMHorizon(
            log_survival=np.bincount(rid[upto], weights=log_step[upto], minlength=n_rows),
            reached_zero=np.bincount(rid[upto & ~alive & (c > 0)], minlength=n_rows) > 0,
            greenwood=np.bincount(rid[upto], weights=green[upto], minlength=n_rows),
            aj_cuminc=np.minimum(np.bincount(rid[upto], weights=aj_step[upto], minlength=n_rows), 1.0),
        )
    return out


def km_step_curve(counts: dict[int, tuple[int, ...]]) -> tuple[int, list[int], list[float], list[float]]:
    """Return (units, days, KM 1 - S, Aalen-Johansen) step curves from {day: (events, censored[, deaths])}.

    n(t) = everyone whose time is >= t (events before censorings on the same day),
    S(t) = prod (1 - d/n), a competing death censoring for Kaplan-Meier; the Aalen-Johansen
    cumulative incidence (DESIGN 2b) adds S_all(t-) d/n, S_all counting deaths too. Both step
    only on days with events: ``days[i]`` is where they become ``cuminc[i]`` and ``aj[i]``, from day 0.
    """
    total = sum(sum(c) for c in counts.values())
    at_risk, survival, overall, incidence = total, 1.0, 1.0, 0.0
    days, cuminc, aj = [0], [0.0], [0.0]
    for day in sorted(counts):
        events, censored, deaths = (*counts[day], 0)[:3]
        if at_risk > 0 and events:
            survival *= 1.0 - events / at_risk
            incidence += overall * events / at_risk
            if day == 0:
                cuminc[0], aj[0] = 1.0 - survival, incidence
            else:
                days.append(day)
                cuminc.append(1.0 - survival)
                aj.append(incidence)
        if at_risk > 0:
            overall *= 1.0 - (events + deaths) / at_risk
        at_risk -= events + censored + deaths
    return total, days, cuminc, aj
