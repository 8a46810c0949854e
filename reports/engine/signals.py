"""Signal detection (DESIGN.md 2b "Signals"), to the letter: a cohort screen and disproportionality.

(a) Cohort screen. For each attribute (cell_type, cell_source, processing, carrier, guidance,
site, clinic, country, product_lot), each value v and each outcome except ``any``: n1, c1, PY1 of
the units with v in the outcome's denominator, n0, c0, PY0 of the others (the rest = all units
of the report - those with v).

- Basis ``person_time`` (open window): each unit's days at risk d split into the bands
  [0, 30), [30, 365), [365, 1826), [1826, open) of days since A (max(0, min(d, hi) - lo) days
  in band [lo, hi)); a case counts in the band holding its day d. Over the bands with
  PYb = PY1b + PY0b > 0: Mantel-Haenszel rate ratio R = sum(c1b PY0b / PYb) / sum(c0b PY1b / PYb)
  (empty when either sum is 0), interval exp(ln R +- 1.96 sqrt(V)) with the Greenland-Robins
  V = sum(PY1b PY0b (c1b + c0b) / PYb^2) / (sum(c1b PY0b / PYb) sum(c0b PY1b / PYb)), p-value of
  the Mantel-Haenszel chi-square (1 df, no continuity correction)
  (sum c1b - sum Eb)^2 / sum Vb, Eb = (c1b + c0b) PY1b / PYb, Vb = (c1b + c0b) PY1b PY0b / PYb^2
  (empty when sum Vb = 0).
- Basis ``proportion`` (closed window): RR = (c1/n1) / (c0/n0), interval
  exp(ln RR +- 1.96 sqrt(1/c1 - 1/n1 + 1/c0 - 1/n0)) (empty when c1 or c0 is 0), p-value of
  scipy.stats.fisher_exact (two-sided) on [[c1, n1 - c1], [c0, n0 - c0]].
- Tested rows: c1 + c0 >= 1, n1 >= 1 and n0 >= 1; an untested row has p and q empty.
  q-values: Benjamini-Hochberg (scipy.stats.false_discovery_control) over every tested row of
  the run that has a p-value (every attribute and outcome together; a tested person-time row
  whose sum Vb is 0, all of its time in no band, has none and takes no part).
- signal: ratio > 1, q < 0.05 and c1 >= 3 (false when ratio or q is empty).

(b) Disproportionality, per category k (outcome rows that are categories): over the
non-retracted events with onset on or before the cut-off of the non-retracted procedures
performed on or before it, whose patient is not retracted, within the scope; the attribute is
that of the event's own procedure (clinic and country: the procedure's clinic), whatever the
unit. a = events with v and k, b = with v not k, c = without v with k, d = neither, N = a+b+c+d.

- PRR = (a/(a+b)) / (c/(c+d)), interval exp(ln PRR +- 1.96 sqrt(1/a - 1/(a+b) + 1/c - 1/(c+d)));
  PRR and interval empty when a or c is 0.
- ROR = ad / (bc), interval exp(ln ROR +- 1.96 sqrt(1/a + 1/b + 1/c + 1/d)); empty when any cell is 0.
- chi2_yates: scipy.stats.chi2_contingency([[a, b], [c, d]], correction=True) (its arithmetic,
  vectorised, bit for bit); empty when a margin is 0 (scipy refuses a zero expected count).
- IC = log2((a + 0.5) / (E + 0.5)), E = (a+b)(a+c)/N; IC025 = IC - 3.3 (a+0.5)^-1/2 - 2 (a+0.5)^-3/2
  (Noren 2013); empty when N = 0 (no events at all).
- evans_signal: a >= 3, PRR >= 2 and chi2_yates >= 4 (false when either is empty).
- serious and grade_3_plus (not categories): event columns empty, evans_signal false.

Rows: every attribute (in the order asked), every value (byte order) that some unit of the
report or some counted event carries, every outcome of the report except ``any`` (report
order). An empty value ('' or NULL: unknown) is not a value: it has no row of its own, and
its units and events count in the rest. A value carried only by events (with the patient unit,
a later procedure's product lot) has a row with procedures 0: untested.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from django.db import connections, transaction
from scipy import stats

from reports.choices import OUTCOME_ANY, OUTCOME_GRADE_3_PLUS, OUTCOME_SERIOUS, SIGNAL_BANDS
from reports.engine.compute import DAYS_PER_YEAR
from reports.engine.params import IncidenceParams
from reports.engine.providers import BASIS_PERSON_TIME, BASIS_PROPORTION, basis_of
from reports.engine.sql import build_units_sql

ATTRIBUTES: tuple[str, ...] = (
    "cell_type",
    "cell_source",
    "processing",
    "carrier",
    "guidance",
    "site",
    "clinic",
    "country",
    "product_lot",
)
# Bands of days since the start of the risk window: [lo, hi), the last one open.
BANDS: tuple[tuple[int, int | None], ...] = SIGNAL_BANDS
Z = 1.96
Q_LEVEL = 0.05
SIGNAL_MIN_CASES = 3
EVANS_MIN_EVENTS = 3
EVANS_MIN_PRR = 2.0
EVANS_MIN_CHI2 = 4.0
NOT_CATEGORIES = frozenset({OUTCOME_SERIOUS, OUTCOME_GRADE_3_PLUS})

COLUMNS: tuple[str, ...] = (
    "attribute",
    "value",
    "outcome",
    "basis",
    "procedures",
    "cases",
    "person_years",
    "rest_procedures",
    "rest_cases",
    "rest_person_years",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "p_value",
    "q_value",
    "events_a",
    "events_b",
    "events_c",
    "events_d",
    "prr",
    "prr_ci_low",
    "prr_ci_high",
    "ror",
    "ror_ci_low",
    "ror_ci_high",
    "chi2_yates",
    "ic",
    "ic025",
    "signal",
    "evans_signal",
)

# The attribute of an event's own procedure p (clinic c: the procedure's clinic).
EVENT_ATTRIBUTE_SQL: dict[str, str] = {
    "cell_type": "p.cell_type::text",
    "cell_source": "p.cell_source::text",
    "processing": "p.processing::text",
    "carrier": "p.carrier::text",
    "guidance": "p.guidance::text",
    "site": "p.site::text",
    "clinic": "c.code::text",
    "country": "c.country::text",
    "product_lot": "p.product_lot::text",
}

WORK_MEM = "256MB"


def validate(by: Sequence[str]) -> tuple[str, ...]:
    """Return the attributes checked, or raise ValueError naming the allowed ones."""
    by = tuple(by)
    if not by:
        raise ValueError(f"Name at least one attribute: {', '.join(ATTRIBUTES)}.")
    unknown = [a for a in by if a not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"Unknown attribute(s): {', '.join(unknown)}. Choose from {', '.join(ATTRIBUTES)}.")
    if len(set(by)) != len(by):
        raise ValueError("An attribute may be named only once.")
    return by


# ---------------------------------------------------------------------------------------------
# Statistics over arrays (one element per row; NaN = empty)


def _f(*values) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def band_split(days, case, bands: Sequence[tuple[int, int | None]] = BANDS) -> tuple[np.ndarray, np.ndarray]:
    """Return (days per band, cases per band), shape (units, bands), of units with ``days`` at risk.

    A unit with d days gives max(0, min(d, hi) - lo) days to band [lo, hi); a case (``case``
    true) counts in the band holding its day d. (The SQL computes the same sums; this is the rule
    for one unit, used by the tests.)
    """
    d = np.asarray(days, dtype=np.int64)[:, None]
    case = np.asarray(case, dtype=bool)[:, None]
    lo = np.array([b[0] for b in bands], dtype=np.int64)[None, :]
    hi = np.array([np.iinfo(np.int64).max if b[1] is None else b[1] for b in bands], dtype=np.int64)[None, :]
    return np.maximum(0, np.minimum(d, hi) - lo), (case & (d >= lo) & (d < hi)).astype(np.int64)


def mh_rate_ratio(*, c1, c0, py1, py0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (R, low, high, p) per row from per-band arrays of shape (rows, bands).

    Mantel-Haenszel rate ratio with the Greenland-Robins variance and the Mantel-Haenszel
    chi-square p-value (1 df), over the bands with person-time (DESIGN 2b).
    """
    c1, c0, py1, py0 = _f(c1, c0, py1, py0)
    py = py1 + py0
    keep = py > 0
    safe = np.where(keep, py, 1.0)
    cases = c1 + c0
    num = np.where(keep, c1 * py0 / safe, 0.0).sum(axis=1)
    den = np.where(keep, c0 * py1 / safe, 0.0).sum(axis=1)
    grv = np.where(keep, py1 * py0 * cases / safe**2, 0.0).sum(axis=1)
    defined = (num > 0) & (den > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(defined, num / np.where(defined, den, 1.0), np.nan)
        spread = Z * np.sqrt(grv / np.where(defined, num * den, 1.0))
        low = np.where(defined, np.exp(np.log(ratio) - spread), np.nan)
        high = np.where(defined, np.exp(np.log(ratio) + spread), np.nan)
    observed = np.where(keep, c1, 0.0).sum(axis=1)
    expected = np.where(keep, cases * py1 / safe, 0.0).sum(axis=1)
    variance = np.where(keep, cases * py1 * py0 / safe**2, 0.0).sum(axis=1)
    has_v = variance > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = (observed - expected) ** 2 / np.where(has_v, variance, 1.0)
    p = np.where(has_v, stats.chi2.sf(statistic, 1), np.nan)
    return ratio, low, high, p


def risk_ratio(*, c1, n1, c0, n0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (RR, low, high) per row: (c1/n1) / (c0/n0) with the log interval; empty when c1 or c0 is 0."""
    c1, n1, c0, n0 = _f(c1, n1, c0, n0)
    defined = (c1 > 0) & (c0 > 0) & (n1 > 0) & (n0 > 0)
    one = np.ones_like(c1)
    s_c1, s_n1, s_c0, s_n0 = (np.where(defined, x, one) for x in (c1, n1, c0, n0))
    ratio = (s_c1 / s_n1) / (s_c0 / s_n0)
    spread = Z * np.sqrt(1 / s_c1 - 1 / s_n1 + 1 / s_c0 - 1 / s_n0)
    return (
        np.where(defined, ratio, np.nan),
        np.where(defined, np.exp(np.log(ratio) - spread), np.nan),
        np.where(defined, np.exp(np.log(ratio) + spread), np.nan),
    )


def _binary_search(f, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Return, per element, the i in [lo, hi] with f(i) <= d < f(i + 1): scipy's
    ``_binary_search_for_binom_tst`` run on every element at once (same steps, same result)."""
    lo, hi = lo.copy(), hi.copy()
    found = np.full(lo.shape, -1, dtype=np.int64)
    active = np.ones(lo.shape, dtype=bool)
    while True:
        active &= lo < hi
        if not active.any():
            break
        idx = np.flatnonzero(active)
        mid = lo[idx] + (hi[idx] - lo[idx]) // 2
        midval = f(mid, idx)
        below, above = midval < d[idx], midval > d[idx]
        lo[idx[below]] = mid[below] + 1
        hi[idx[above]] = mid[above] - 1
        equal = idx[~below & ~above]
        found[equal] = mid[~below & ~above]
        active[equal] = False
    rest = np.flatnonzero(found < 0)
    if rest.size:
        found[rest] = np.where(f(lo[rest], rest) <= d[rest], lo[rest], lo[rest] - 1)
    return found


def fisher_p(*, c1, n1, c0, n0) -> np.ndarray:
    """Return the two-sided Fisher exact p-value of [[c1, n1-c1], [c0, n0-c0]] per row.

    scipy.stats.fisher_exact(table, alternative="two-sided") for 2x2 tables, its algorithm (mode,
    relative tolerance 1e-14, one-sided tail plus the far tail found by binary search, capped at 1)
    run on all rows at once with the same scipy.stats.hypergeom calls: the same p-values, bit for bit
    (tests/reports/test_compute_signals.py checks it), without one Python call per row.
    """
    tables = np.stack([np.asarray(x, dtype=np.int64).reshape(-1) for x in (c1, n1, c0, n0)], axis=1)
    if not tables.size:
        return np.zeros(0, dtype=np.float64)
    # Many rows share a table: compute each distinct one once.
    tables, inverse = np.unique(tables, axis=0, return_inverse=True)
    return _fisher_distinct(*tables.T)[inverse.reshape(-1)]


def _fisher_distinct(a: np.ndarray, r1: np.ndarray, c: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Return fisher_p of the tables [[a, r1 - a], [c, r2 - c]] (arrays)."""
    b, d = r1 - a, r2 - c
    p = np.ones(a.shape, dtype=np.float64)
    # A zero row or column: p = 1 (scipy's early return).
    live = np.flatnonzero((r1 > 0) & (r2 > 0) & (a + c > 0) & (b + d > 0))
    if not live.size:
        return p
    a, r1, r2, n = a[live], r1[live], r2[live], (a + c)[live]
    total = r1 + r2
    hyper = stats.hypergeom

    def pmf(x, idx):
        return hyper.pmf(x, total[idx], r1[idx], n[idx])

    mode = ((n + 1) * (r1 + 1) / (r1 + r2 + 2)).astype(np.int64)
    pexact = hyper.pmf(a, total, r1, n)
    pmode = hyper.pmf(mode, total, r1, n)
    epsilon = 1e-14
    gamma = 1 + epsilon
    result = np.ones(a.shape, dtype=np.float64)
    at_mode = np.abs(pexact - pmode) / np.maximum(pexact, pmode) <= epsilon

    lower = np.flatnonzero(~at_mode & (a < mode))
    if lower.size:
        idx = lower
        plower = hyper.cdf(a[idx], total[idx], r1[idx], n[idx])
        far = hyper.pmf(n[idx], total[idx], r1[idx], n[idx]) > pexact[idx] * gamma
        value = plower.copy()
        search = np.flatnonzero(~far)
        if search.size:
            sub = idx[search]
            guess = _binary_search(
                lambda x, j: -pmf(x, sub[j]), -pexact[sub] * gamma, mode[sub], n[sub].astype(np.int64)
            )
            value[search] = plower[search] + hyper.sf(guess, total[sub], r1[sub], n[sub])
        result[idx] = value

    upper = np.flatnonzero(~at_mode & (a >= mode))
    if upper.size:
        idx = upper
        pupper = hyper.sf(a[idx] - 1, total[idx], r1[idx], n[idx])
        far = hyper.pmf(0, total[idx], r1[idx], n[idx]) > pexact[idx] * gamma
        value = pupper.copy()
        search = np.flatnonzero(~far)
        if search.size:
            sub = idx[search]
            guess = _binary_search(
                lambda x, j: pmf(x, sub[j]), pexact[sub] * gamma, np.zeros(sub.size, dtype=np.int64), mode[sub]
            )
            value[search] = pupper[search] + hyper.cdf(guess, total[sub], r1[sub], n[sub])
        result[idx] = value

    p[live] = np.minimum(result, 1.0)
    return p


def tested(*, c1, n1, c0, n0) -> np.ndarray:
    """Return which rows are tested: c1 + c0 >= 1, n1 >= 1 and n0 >= 1."""
    c1, n1, c0, n0 = (np.asarray(x, dtype=np.int64) for x in (c1, n1, c0, n0))
    return (c1 + c0 >= 1) & (n1 >= 1) & (n0 >= 1)


def bh_qvalues(p) -> np.ndarray:
    """Return Benjamini-Hochberg q-values (scipy.stats.false_discovery_control) over the non-NaN p; NaN elsewhere."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    if present.any():
        q[present] = stats.false_discovery_control(p[present], method="bh")
    return q


def chi2_yates(*, a, b, c, d) -> np.ndarray:
    """Return scipy.stats.chi2_contingency([[a, b], [c, d]], correction=True).statistic per row, NaN when
    a margin is 0, with scipy's own arithmetic (expected counts, Yates' shift capped at |O - E|, the
    Pearson terms summed in table order)."""
    obs = np.stack(_f(a, b, c, d), axis=1)  # a, b, c, d = [0,0], [0,1], [1,0], [1,1]
    rows = np.stack([obs[:, 0] + obs[:, 1], obs[:, 0] + obs[:, 1], obs[:, 2] + obs[:, 3], obs[:, 2] + obs[:, 3]], 1)
    cols = np.stack([obs[:, 0] + obs[:, 2], obs[:, 1] + obs[:, 3], obs[:, 0] + obs[:, 2], obs[:, 1] + obs[:, 3]], 1)
    total = obs.sum(axis=1, keepdims=True)
    defined = (rows > 0).all(axis=1) & (cols > 0).all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = rows * cols / total
        diff = expected - obs
        shifted = obs + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
        terms = (shifted - expected) ** 2 / expected
    statistic = ((terms[:, 0] + terms[:, 1]) + terms[:, 2]) + terms[:, 3]
    return np.where(defined, statistic, np.nan)


def disproportionality(*, a, b, c, d) -> dict[str, np.ndarray]:
    """Return prr (+ci), ror (+ci), chi2_yates, ic, ic025 and evans_signal per row of 2x2 event counts."""
    a, b, c, d = _f(a, b, c, d)
    one = np.ones_like(a)
    prr_ok = (a > 0) & (c > 0)
    pa, pb, pc, pd_ = (np.where(prr_ok, x, one) for x in (a, b, c, d))
    prr = (pa / (pa + pb)) / (pc / (pc + pd_))
    prr_spread = Z * np.sqrt(1 / pa - 1 / (pa + pb) + 1 / pc - 1 / (pc + pd_))
    ror_ok = (a > 0) & (b > 0) & (c > 0) & (d > 0)
    ra, rb, rc, rd = (np.where(ror_ok, x, one) for x in (a, b, c, d))
    ror = (ra * rd) / (rb * rc)
    ror_spread = Z * np.sqrt(1 / ra + 1 / rb + 1 / rc + 1 / rd)
    n = a + b + c + d
    has_n = n > 0
    expected = (a + b) * (a + c) / np.where(has_n, n, 1.0)
    ic = np.where(has_n, np.log2((a + 0.5) / (expected + 0.5)), np.nan)
    ic025 = ic - 3.3 * (a + 0.5) ** -0.5 - 2 * (a + 0.5) ** -1.5
    chi2 = chi2_yates(a=a, b=b, c=c, d=d)
    prr = np.where(prr_ok, prr, np.nan)
    with np.errstate(invalid="ignore"):
        evans = (a >= EVANS_MIN_EVENTS) & (prr >= EVANS_MIN_PRR) & (chi2 >= EVANS_MIN_CHI2)
    return {
        "prr": prr,
        "prr_ci_low": np.where(prr_ok, np.exp(np.log(prr) - prr_spread), np.nan),
        "prr_ci_high": np.where(prr_ok, np.exp(np.log(prr) + prr_spread), np.nan),
        "ror": np.where(ror_ok, ror, np.nan),
        "ror_ci_low": np.where(ror_ok, np.exp(np.log(ror) - ror_spread), np.nan),
        "ror_ci_high": np.where(ror_ok, np.exp(np.log(ror) + ror_spread), np.nan),
        "chi2_yates": chi2,
        "ic": ic,
        "ic025": ic025,
        "evans_signal": evans,
    }


# ---------------------------------------------------------------------------------------------
# Rows from aggregated counts


@dataclasses.dataclass(frozen=True)
class CohortCounts:
    """Per (attribute, value) or the whole report: per outcome k, n[k], c[k], days[k] and the
    per-band days and cases (bands of BANDS; zeros for proportion-basis outcomes)."""

    n: np.ndarray  # (outcomes,)
    cases: np.ndarray  # (outcomes,)
    days: np.ndarray  # (outcomes,)
    band_days: np.ndarray  # (outcomes, bands)
    band_cases: np.ndarray  # (outcomes, bands)

    @classmethod
    def zeros(cls, outcomes: int) -> CohortCounts:
        z = np.zeros(outcomes, dtype=np.int64)
        zb = np.zeros((outcomes, len(BANDS)), dtype=np.int64)
        return cls(z, z, z, zb, zb)


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else v for v in np.asarray(values, dtype=np.float64).tolist()]


def signal_rows(
    *,
    attributes: Sequence[str],
    outcomes: Sequence[str],
    windows: Sequence[tuple[int, int | None]],
    cohort: dict[tuple[str, str], CohortCounts],
    total: CohortCounts,
    events: dict[tuple[str, str], dict[str, int]],
    event_totals: dict[str, int],
) -> list[dict]:
    """Return the signal rows (keys COLUMNS, None = empty) from aggregated counts.

    ``outcomes``/``windows``: the outcomes of the screen (``any`` excluded) and their windows.
    ``cohort[(attribute, value)]``: the units with that value; ``total``: every unit of the report.
    ``events[(attribute, value)]``: {category: events}; ``event_totals``: {category: events} of all.
    """
    k_count = len(outcomes)
    keys = sorted(set(cohort) | set(events), key=lambda key: (list(attributes).index(key[0]), key[1]))
    bases = [basis_of(w) for w in windows]
    n_events = sum(event_totals.values())
    rows_key = []
    cols: dict[str, list] = {
        name: []
        for name in ("n1", "c1", "d1", "n0", "c0", "d0", "band_d1", "band_c1", "band_d0", "band_c0", "a", "b", "c", "d")
    }
    for attribute, value in keys:
        counts = cohort.get((attribute, value)) or CohortCounts.zeros(k_count)
        by_category = events.get((attribute, value), {})
        with_value = sum(by_category.values())
        for k, outcome in enumerate(outcomes):
            rows_key.append((attribute, value, outcome, bases[k]))
            cols["n1"].append(counts.n[k])
            cols["c1"].append(counts.cases[k])
            cols["d1"].append(counts.days[k])
            cols["n0"].append(total.n[k] - counts.n[k])
            cols["c0"].append(total.cases[k] - counts.cases[k])
            cols["d0"].append(total.days[k] - counts.days[k])
            cols["band_d1"].append(counts.band_days[k])
            cols["band_c1"].append(counts.band_cases[k])
            cols["band_d0"].append(total.band_days[k] - counts.band_days[k])
            cols["band_c0"].append(total.band_cases[k] - counts.band_cases[k])
            a = by_category.get(outcome, 0)
            b = with_value - a
            c = event_totals.get(outcome, 0) - a
            cols["a"].append(a)
            cols["b"].append(b)
            cols["c"].append(c)
            cols["d"].append(n_events - a - b - c)
    rows = len(rows_key)
    arr = {
        name: np.asarray(v, dtype=np.int64).reshape((rows, len(BANDS)) if name.startswith("band_") else (rows,))
        for name, v in cols.items()
    }
    del cols  # the Python lists, no longer needed: keep the peak down while the rows are built
    person_time = np.array([key[3] == BASIS_PERSON_TIME for key in rows_key], dtype=bool)
    is_test = tested(c1=arr["c1"], n1=arr["n1"], c0=arr["c0"], n0=arr["n0"])

    ratio = np.full(rows, np.nan)
    low, high, p = ratio.copy(), ratio.copy(), ratio.copy()
    if person_time.any():
        r, lo, hi, pv = mh_rate_ratio(
            c1=arr["band_c1"][person_time],
            c0=arr["band_c0"][person_time],
            py1=arr["band_d1"][person_time] / DAYS_PER_YEAR,
            py0=arr["band_d0"][person_time] / DAYS_PER_YEAR,
        )
        ratio[person_time], low[person_time], high[person_time], p[person_time] = r, lo, hi, pv
    proportion = ~person_time
    if proportion.any():
        r, lo, hi = risk_ratio(
            c1=arr["c1"][proportion], n1=arr["n1"][proportion], c0=arr["c0"][proportion], n0=arr["n0"][proportion]
        )
        ratio[proportion], low[proportion], high[proportion] = r, lo, hi
        fisher_rows = proportion & is_test
        p[fisher_rows] = fisher_p(
            c1=arr["c1"][fisher_rows], n1=arr["n1"][fisher_rows], c0=arr["c0"][fisher_rows], n0=arr["n0"][fisher_rows]
        )
    p = np.where(is_test, p, np.nan)
    q = bh_qvalues(p)
    with np.errstate(invalid="ignore"):
        signal = (ratio > 1) & (q < Q_LEVEL) & (arr["c1"] >= SIGNAL_MIN_CASES)
    event_rows = np.array([key[2] not in NOT_CATEGORIES for key in rows_key], dtype=bool)
    dp = disproportionality(a=arr["a"], b=arr["b"], c=arr["c"], d=arr["d"])
    dp["evans_signal"] = dp["evans_signal"] & event_rows

    floats = {
        "ratio": ratio,
        "ratio_ci_low": low,
        "ratio_ci_high": high,
        "p_value": p,
        "q_value": q,
        **{name: dp[name] for name in ("prr", "prr_ci_low", "prr_ci_high", "ror", "ror_ci_low", "ror_ci_high")},
        "chi2_yates": dp["chi2_yates"],
        "ic": dp["ic"],
        "ic025": dp["ic025"],
    }
    floats = {
        name: _nan_to_none(np.where(event_rows, v, np.nan) if name in _EVENT_FLOATS else v)
        for name, v in floats.items()
    }
    ints = {name: arr[name].tolist() for name in ("n1", "c1", "d1", "n0", "c0", "d0", "a", "b", "c", "d")}
    signal_list, evans_list, event_list = signal.tolist(), dp["evans_signal"].tolist(), event_rows.tolist()

    result = []
    for i, (attribute, value, outcome, basis) in enumerate(rows_key):
        has_events = event_list[i]
        result.append(
            {
                "attribute": attribute,
                "value": value,
                "outcome": outcome,
                "basis": basis,
                "procedures": ints["n1"][i],
                "cases": ints["c1"][i],
                "person_years": ints["d1"][i] / DAYS_PER_YEAR,
                "rest_procedures": ints["n0"][i],
                "rest_cases": ints["c0"][i],
                "rest_person_years": ints["d0"][i] / DAYS_PER_YEAR,
                "ratio": floats["ratio"][i],
                "ratio_ci_low": floats["ratio_ci_low"][i],
                "ratio_ci_high": floats["ratio_ci_high"][i],
                "p_value": floats["p_value"][i],
                "q_value": floats["q_value"][i],
                "events_a": ints["a"][i] if has_events else None,
                "events_b": ints["b"][i] if has_events else None,
                "events_c": ints["c"][i] if has_events else None,
                "events_d": ints["d"][i] if has_events else None,
                **{name: floats[name][i] for name in _EVENT_FLOATS},
                "signal": bool(signal_list[i]),
                "evans_signal": bool(evans_list[i]),
            }
        )
    return result


_EVENT_FLOATS = ("prr", "prr_ci_low", "prr_ci_high", "ror", "ror_ci_low", "ror_ci_high", "chi2_yates", "ic", "ic025")


# ---------------------------------------------------------------------------------------------
# SQL


def screen_params(params: IncidenceParams) -> IncidenceParams:
    """Return ``params`` without the outcome ``any`` (the screen leaves it out; its windows stay aligned)
    and without strata (the units' attributes are asked for by name)."""
    kept = [k for k, outcome in enumerate(params.outcomes) if outcome != OUTCOME_ANY]
    return dataclasses.replace(
        params,
        strata=(),
        outcomes=tuple(params.outcomes[k] for k in kept),
        windows=tuple(params.windows[k] for k in kept),
    )


def _band_sums(k: int) -> str:
    """Return the per-band days and cases of outcome k (aggregates over units u)."""
    parts = []
    for j, (lo, hi) in enumerate(BANDS):
        days = f"GREATEST(0, LEAST(u.d{k}, {hi}) - {lo})" if hi is not None else f"GREATEST(0, u.d{k} - {lo})"
        in_band = f"u.d{k} >= {lo}" + (f" AND u.d{k} < {hi}" if hi is not None else "")
        # FILTER: LEAST and GREATEST ignore NULLs, and a unit out of the denominator (d NULL) has no days.
        parts.append(
            f"COALESCE(sum({days}) FILTER (WHERE u.d{k} IS NOT NULL), 0)::bigint AS bd{k}_{j}, "
            f"count(*) FILTER (WHERE u.y{k} = 1 AND {in_band}) AS bc{k}_{j}"
        )
    return ", ".join(parts)


def build_cohort_sql(params: IncidenceParams, attributes: Sequence[str]) -> tuple[str, dict]:
    """Return (sql, args): one row per grouping set, () and each attribute's values.

    Columns: g (GROUPING bitmask over the attribute columns: bit set = not grouped; the first
    attribute is the highest bit), the attribute values, then per outcome k of ``params``:
    n{k}, c{k}, d{k} (units in the denominator, cases, days) and, for person-time outcomes,
    bd{k}_{j}, bc{k}_{j} (days and cases in band j).
    """
    units_sql, args = build_units_sql(params, list(attributes))
    columns = [f"u.a_{name}" for name in attributes]
    measures = []
    for k, window in enumerate(params.windows):
        measures.append(
            f"count(u.d{k}) AS n{k}, count(*) FILTER (WHERE u.y{k} = 1 AND u.d{k} IS NOT NULL) AS c{k}, "
            f"COALESCE(sum(u.d{k}), 0)::bigint AS d{k}"
        )
        if basis_of(window) == BASIS_PERSON_TIME:
            measures.append(_band_sums(k))
    sets = ", ".join(["()", *(f"({c})" for c in columns)])
    sql = (
        f"SELECT GROUPING({', '.join(columns)}) AS g, {', '.join(f'{c}::text' for c in columns)}, "  # noqa: S608
        f"{', '.join(measures)} FROM ({units_sql}) u GROUP BY GROUPING SETS ({sets})"
    )
    return sql, args


def build_events_sql(params: IncidenceParams, attributes: Sequence[str]) -> tuple[str, dict]:
    """Return (sql, args): events per category, overall (g all bits set) and per attribute value.

    Events: non-retracted, onset on or before the cut-off, of non-retracted procedures performed
    on or before it whose patient is not retracted, in the scope. Columns: g (GROUPING bitmask as
    build_cohort_sql), the attribute values, category, events.
    """
    args: dict = {"cutoff": params.cutoff_on}
    where = (
        "e.retracted_at IS NULL AND e.onset_on <= %(cutoff)s::date AND p.performed_on <= %(cutoff)s::date "
        "AND p.retracted_at IS NULL AND pt.retracted_at IS NULL"
    )
    if params.clinic_ids is not None:
        args["scope"] = sorted(params.clinic_ids)
        where += " AND p.clinic_id = ANY(%(scope)s)"
    columns = [f"v{i}" for i in range(len(attributes))]
    select = ", ".join(f"{EVENT_ATTRIBUTE_SQL[name]} AS v{i}" for i, name in enumerate(attributes))
    sets = ", ".join(["(category)", *(f"({c}, category)" for c in columns)])
    sql = f"""
SELECT GROUPING({", ".join(columns)}) AS g, {", ".join(columns)}, category, count(*) AS events
FROM (
    SELECT {select}, e.category::text AS category
    FROM events_adverseevent e
    JOIN registry_procedure p ON p.id = e.procedure_id
    JOIN registry_patient pt ON pt.id = p.patient_id
    JOIN registry_clinic c ON c.id = p.clinic_id
    WHERE {where}
) x
GROUP BY GROUPING SETS ({sets})
"""  # noqa: S608 - fixed fragments; values are bound
    return sql, args


def _is_value(value) -> bool:
    return value is not None and value != ""


def compute_signals(*, params: IncidenceParams, by: Sequence[str] = ATTRIBUTES, using: str = "default") -> list[dict]:
    """Return the signal screen of ``params`` over the attributes ``by``: one dict per (attribute, value,
    outcome) with the keys of COLUMNS (None = empty; signal and evans_signal booleans).

    Raises ValueError for an unknown attribute.
    """
    attributes = validate(by)
    screen = screen_params(params)
    outcomes = screen.outcomes
    k_count = len(outcomes)
    if not k_count:
        return []
    width = len(attributes)
    person_time = [basis_of(w) == BASIS_PERSON_TIME for w in screen.windows]
    cohort_sql, cohort_args = build_cohort_sql(screen, attributes)
    events_sql, events_args = build_events_sql(screen, attributes)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(cohort_sql, cohort_args)
        cohort_fetched = cursor.fetchall()
        cursor.execute(events_sql, events_args)
        events_fetched = cursor.fetchall()

    all_bits = (1 << width) - 1
    cohort: dict[tuple[str, str], CohortCounts] = {}
    total = CohortCounts.zeros(k_count)
    for record in cohort_fetched:
        g, values, measures = record[0], record[1 : 1 + width], list(record[1 + width :])
        n, c, d = [], [], []
        band_days = np.zeros((k_count, len(BANDS)), dtype=np.int64)
        band_cases = np.zeros((k_count, len(BANDS)), dtype=np.int64)
        pos = 0
        for k in range(k_count):
            n.append(measures[pos])
            c.append(measures[pos + 1])
            d.append(measures[pos + 2])
            pos += 3
            if person_time[k]:
                band_days[k] = measures[pos : pos + 2 * len(BANDS) : 2]
                band_cases[k] = measures[pos + 1 : pos + 2 * len(BANDS) : 2]
                pos += 2 * len(BANDS)
        counts = CohortCounts(
            np.array(n, dtype=np.int64), np.array(c, dtype=np.int64), np.array(d, dtype=np.int64), band_days, band_cases
        )
        if g == all_bits:
            total = counts
            continue
        i = next(j for j in range(width) if not g >> (width - 1 - j) & 1)
        if _is_value(values[i]):
            cohort[(attributes[i], values[i])] = counts

    events: dict[tuple[str, str], dict[str, int]] = {}
    event_totals: dict[str, int] = {}
    for record in events_fetched:
        g, values, category, count = record[0], record[1 : 1 + width], record[1 + width], int(record[2 + width])
        if g == all_bits:
            event_totals[category] = count
            continue
        i = next(j for j in range(width) if not g >> (width - 1 - j) & 1)
        if _is_value(values[i]):
            events.setdefault((attributes[i], values[i]), {})[category] = count

    return signal_rows(
        attributes=attributes,
        outcomes=outcomes,
        windows=screen.windows,
        cohort=cohort,
        total=total,
        events=events,
        event_totals=event_totals,
    )


__all__ = ["ATTRIBUTES", "BASIS_PROPORTION", "COLUMNS", "compute_signals"]
