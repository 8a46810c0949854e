"""Provider comparison adjusted for case mix, as the run stored it (reports.snapshot, DESIGN 2b).

For every outcome and each grouping (clinic, country, GMP certified or not) the run stores
each group's observed cases O, the cases E expected from the reference rates of the
adjustment strata (indirect standardisation over the report's scope), the standardised
ratio SIR = O / E with its exact Poisson interval, the one-sided Poisson tail
probabilities and the flag, and the group's follow-up completeness.

The funnel plot draws SIR against E. Its control limits are exact Poisson limits of O / E
when O ~ Poisson(E): limit_p(E) = r_p(E) / E with r_p the Poisson quantile of probability p,
interpolated as Spiegelhalter ("Funnel plots for comparing institutional performance",
Stat Med 2005;24:1185-1202, appendix A.1.2; reports.engine.stats.poisson_limit) so the funnel
is smooth: p = 0.025 / 0.975 (95 %) and 0.001 / 0.999 (99.8 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reports.engine.providers import DEFAULT_ADJUST, FLAG_ABOVE_95, FLAG_ABOVE_998, FLAG_BELOW_95, FLAG_BELOW_998
from reports.engine.stats import FUNNEL_LIMITS, poisson_limit
from reports.models import IncidenceRun, RunProviderComparison

__all__ = [
    "ADJUSTMENT",
    "COMPLETENESS",
    "GROUPINGS",
    "METHOD",
    "Comparison",
    "GroupRow",
    "provider_comparisons",
    "sir_limits",
]

# The groupings every run stores (reports.snapshot), in report order, and how each is named on the page.
GROUPINGS: dict[str, str] = {"clinic": "clinic", "country": "country", "gmp": "GMP certification"}
# The case-mix adjustment every run stores (DESIGN 2b: site x cell type x age band x sex).
ADJUSTMENT: tuple[str, ...] = DEFAULT_ADJUST
GMP_LABELS = {"true": "GMP certified", "false": "not GMP certified"}

METHOD = (
    "Provider comparison adjusted for case mix (indirect standardisation, DESIGN 2b): for each outcome, "
    "reference figures per adjustment stratum (site x cell type x age band x sex) over the whole report. "
    "Long-term outcomes (open window) are compared on person-time: expected cases E = sum over strata of the "
    "group's person-years x the stratum's rate; acute outcomes (closed window) on proportions: E = sum of the "
    "group's units x the stratum's proportion, because an acute outcome compared on person-time would flag "
    "groups for short follow-up rather than for harm. Standardised incidence ratio SIR = observed / expected, "
    "95 % exact Poisson interval chi2.ppf(0.025, 2 O) / 2 / E to chi2.ppf(0.975, 2 O + 2) / 2 / E. "
    "p_high = P(X >= O) and p_low = P(X <= O) for X ~ Poisson(E); flagged above the 99.8 % limit when "
    "p_high < 0.001, above 95 % when p_high < 0.025, and likewise below with p_low. Funnel plot: SIR against "
    "E with the exact Poisson control limits of O / E (Spiegelhalter 2005 interpolation), 95 % and 99.8 %. "
    "Fewer cases than expected can mean safer care or under-reporting: read a low flag beside the group's "
    "follow-up completeness."
)
COMPLETENESS = (
    "Follow-up completeness: of the follow-up visits of the report's procedures that were due on or before the "
    "data cut-off (none retracted, nor their procedure or patient; visits due after the patient's death or "
    "withdrawal left out), the share completed on or before the cut-off."
)
LOW_TEXT = "fewer than expected: safer care or under-reporting"
HIGH_TEXT = "more than expected"


@dataclass(frozen=True)
class GroupRow:
    """One group's comparison for one outcome (a stored RunProviderComparison row)."""

    grouping: str
    group: str
    outcome: str
    basis: str
    procedures: int
    observed: int
    person_years: float
    expected: float
    sir: float | None
    sir_ci_low: float | None
    sir_ci_high: float | None
    p_high: float | None
    p_low: float | None
    flag: str  # "above 99.8 %", "above 95 %", "below 99.8 %", "below 95 %" or ""
    followup_due: int | None
    followup_completed: int | None

    @property
    def label(self) -> str:
        return GMP_LABELS.get(self.group, self.group) if self.grouping == "gmp" else self.group

    @property
    def direction(self) -> str:
        """Return "high", "low" or "" from the flag."""
        if self.flag in (FLAG_ABOVE_998, FLAG_ABOVE_95):
            return "high"
        if self.flag in (FLAG_BELOW_998, FLAG_BELOW_95):
            return "low"
        return ""

    @property
    def severe(self) -> bool:
        """Return True beyond the 99.8 % limit."""
        return self.flag in (FLAG_ABOVE_998, FLAG_BELOW_998)

    @property
    def flag_text(self) -> str:
        """Return what the flag means for a reader: "more than expected (above 99.8 %)", ..."""
        if not self.flag:
            return ""
        meaning = LOW_TEXT if self.direction == "low" else HIGH_TEXT
        return f"{meaning} ({self.flag} limit)"

    @property
    def completeness(self) -> float | None:
        """Return the share of due follow-up visits completed (None when none was due or none stored)."""
        if not self.followup_due:
            return None
        return (self.followup_completed or 0) / self.followup_due


@dataclass(frozen=True)
class Comparison:
    """The groups of one grouping compared for one outcome."""

    outcome: str
    grouping: str
    basis: str  # "person_time" or "proportion"
    rows: list[GroupRow]

    @property
    def observed(self) -> int:
        return sum(r.observed for r in self.rows)

    @property
    def expected(self) -> float:
        return sum(r.expected for r in self.rows)


def _row(r: RunProviderComparison) -> GroupRow:
    return GroupRow(
        grouping=r.grouping,
        group=r.group,
        outcome=r.outcome,
        basis=r.basis,
        procedures=r.procedures,
        observed=r.observed,
        person_years=r.person_years,
        expected=r.expected,
        sir=r.sir,
        sir_ci_low=r.sir_ci_low,
        sir_ci_high=r.sir_ci_high,
        p_high=r.p_high,
        p_low=r.p_low,
        flag=r.flag or "",
        followup_due=r.followup_due,
        followup_completed=r.followup_completed,
    )


def provider_comparisons(run: IncidenceRun, *, outcome: str | None = None) -> list[Comparison]:
    """Return the stored comparisons of ``run`` (of ``outcome`` only, if given): outcome by outcome in the
    run's order, each grouping in GROUPINGS order. Empty for a run stored before comparisons were."""
    rows = RunProviderComparison.objects.filter(run=run).order_by("position")
    if outcome is not None:
        rows = rows.filter(outcome=outcome)
    by_key: dict[tuple[str, str], list[GroupRow]] = {}
    for r in rows:
        by_key.setdefault((r.outcome, r.grouping), []).append(_row(r))
    out = []
    for o in run.outcomes:
        for grouping in GROUPINGS:
            group_rows = by_key.get((o, grouping))
            if group_rows:
                out.append(Comparison(outcome=o, grouping=grouping, basis=group_rows[0].basis, rows=group_rows))
    return out


def sir_limits(expected) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return {"95": (low, high), "99.8": (low, high)}: the funnel limits of O / E at each expected count E,
    O ~ Poisson(E) (NaN where E is 0)."""
    e = np.asarray(expected, dtype=np.float64)
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for level, lo, hi in FUNNEL_LIMITS:
            out[f"{level * 100:g}"] = (
                np.where(e > 0, poisson_limit(e, lo) / e, np.nan),
                np.where(e > 0, poisson_limit(e, hi) / e, np.nan),
            )
    return out
