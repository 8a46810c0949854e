"""The run's charts as matplotlib Figures (Agg canvas, no pyplot state): forest, Kaplan-Meier, funnel.

Each ``*_figure`` function returns the Figure (tests read its tick labels); ``png``
renders one to PNG bytes. Sizes and fonts are meant to be read without zooming: about
1400 px wide at 100 dpi, 14 pt text.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from reports.choices import HORIZONS, MARGIN, OUTCOME_LABELS
from reports.documents.curves import Curve, stratum_label
from reports.documents.formatting import significant
from reports.documents.provider import ADJUSTMENT, GROUPINGS, Comparison, sir_limits

STYLE = {
    "font.size": 14,
    "axes.titlesize": 17,
    "axes.labelsize": 15,
    "xtick.labelsize": 13,
    "ytick.labelsize": 13,
    "legend.fontsize": 12,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
WIDTH = 14.0
FOREST_MAX_ROWS = 30
KM_MAX_CURVES = 8
FUNNEL_LABELS = 15
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def outcome_label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, outcome)


def png(figure: Figure) -> bytes:
    """Return ``figure`` rendered as PNG bytes."""
    FigureCanvasAgg(figure)
    out = io.BytesIO()
    with rc_context(STYLE):
        figure.savefig(out, format="png", bbox_inches="tight", pad_inches=0.3)
    return out.getvalue()


def _new_figure(height: float) -> Figure:
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _nan(value) -> float:
    return np.nan if value is None else float(value)


def forest_rows(results: Sequence, outcome: str, *, min_units: int = 0) -> tuple[list, bool, int]:
    """Return the stored rows a forest plot shows (finest strata of at least ``min_units`` units, largest
    first, then the overall row), whether it left out strata beyond FOREST_MAX_ROWS, and how many strata it
    left out for having fewer than ``min_units`` units."""
    rows = [r for r in results if r.outcome == outcome]
    finest = [r for r in rows if r.stratum and all(v != MARGIN for v in r.stratum.values())]
    overall = [r for r in rows if all(v == MARGIN for v in r.stratum.values())]
    small = sum(1 for r in finest if r.procedures < min_units)
    finest = sorted((r for r in finest if r.procedures >= min_units), key=lambda r: -r.procedures)
    truncated = len(finest) > FOREST_MAX_ROWS
    finest = sorted(finest[:FOREST_MAX_ROWS], key=lambda r: stratum_label(r.stratum))
    return finest + overall[:1], truncated, small


_PROPORTION = ("proportion", "proportion_ci_low", "proportion_ci_high", 100.0, "Proportion of procedures (%)")
_RATE = ("rate_per_100py", "rate_ci_low", "rate_ci_high", 1.0, "Rate per 100 person-years")


def forest_figure(
    results: Sequence, *, outcome: str, strata: Sequence[str], acute: bool | None = None, min_units: int = 0
) -> Figure:
    """Return the forest plot of ``outcome`` with 95 % intervals per stratum: the proportion for an acute
    outcome (``acute`` True), the rate for a long-term one (False), both when not said (None). Strata of
    fewer than ``min_units`` units are left out (the title says how many)."""
    with rc_context(STYLE):
        rows, truncated, small = forest_rows(results, outcome, min_units=min_units)
        n = max(len(rows), 1)
        figure = _new_figure(2.2 + 0.5 * n)
        panels = [_PROPORTION] if acute else [_RATE] if acute is False else [_PROPORTION, _RATE]
        axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        y = np.arange(len(rows))[::-1]
        labels = [f"{stratum_label(r.stratum)} (n={r.procedures})" for r in rows]
        for ax, (value, low, high, scale, title) in zip(axes, panels, strict=True):
            v = np.array([_nan(getattr(r, value)) for r in rows]) * scale
            lo = np.array([_nan(getattr(r, low)) for r in rows]) * scale
            hi = np.array([_nan(getattr(r, high)) for r in rows]) * scale
            overall = np.array([all(x == MARGIN for x in r.stratum.values()) for r in rows], dtype=bool)
            ax.hlines(y, lo, hi, color="#444444", linewidth=2)
            ax.plot(v[~overall], y[~overall], "s", color=COLOURS[0], markersize=9)
            if overall.any():
                ax.plot(v[overall], y[overall], "D", color="black", markersize=11)
                ax.axvline(v[overall][0], color="black", linestyle=":", linewidth=1.2)
            ax.set_xlabel(title)
            ax.set_xlim(left=0)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: significant(value)))
        axes[0].set_yticks(y, labels=labels)
        axes[0].set_ylim(-0.7, len(rows) - 0.3)
        by = " x ".join(strata) or "overall"
        suffix = f" (largest {FOREST_MAX_ROWS} strata)" if truncated else ""
        if small:
            suffix += f"; {small} {'stratum' if small == 1 else 'strata'} of fewer than {min_units} left out"
        figure.suptitle(f"{outcome_label(outcome)} by {by}{suffix}: estimate and 95 % interval")
    return figure


def km_figure(curves: Sequence[Curve], *, outcome: str) -> Figure:
    """Return the Kaplan-Meier cumulative incidence curves (largest strata, overall in black) and, dashed
    beside the overall one, its Aalen-Johansen curve (death a competing event) when the run stored it."""
    with rc_context(STYLE):
        figure = _new_figure(7.5)
        ax = figure.subplots()
        overall = [c for c in curves if c.label == "All procedures"]
        others = sorted((c for c in curves if c.label != "All procedures"), key=lambda c: -c.procedures)
        shown = others[:KM_MAX_CURVES]
        horizon = max(day for _, day in HORIZONS)

        def step(curve: Curve, values: list[float], **style) -> None:
            ax.step([*curve.days, horizon], np.array([*values, values[-1]]) * 100, where="post", **style)

        for i, curve in enumerate(shown):
            step(
                curve,
                curve.cuminc,
                linewidth=2.2,
                color=COLOURS[i % len(COLOURS)],
                label=f"{curve.label} (n={curve.procedures})",
            )
        for curve in overall:
            step(curve, curve.cuminc, linewidth=3, color="black", label=f"All, Kaplan-Meier (n={curve.procedures})")
            if curve.aj:
                step(
                    curve,
                    curve.aj,
                    linewidth=3,
                    linestyle="--",
                    color="#d62728",
                    label="All, Aalen-Johansen (death competing)",
                )
        for label, day in HORIZONS:
            ax.axvline(day, color="#999999", linestyle="--", linewidth=1)
            ax.annotate(
                label,
                (day, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(4, -16),
                textcoords="offset points",
                color="#555555",
            )
        ax.set_xlim(0, horizon + 30)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("Days from the start of the risk window")
        ax.set_ylabel("Cumulative incidence (%)")
        more = f"; {len(others) - len(shown)} smaller strata not drawn" if len(others) > len(shown) else ""
        ax.set_title(f"Cumulative incidence: {outcome_label(outcome)}{more}")
        if shown or overall:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=True, borderaxespad=0)
    return figure


def funnel_figure(comparison: Comparison) -> Figure:
    """Return the funnel plot: each group's SIR against its expected cases, with the exact Poisson limits."""
    with rc_context(STYLE):
        figure = _new_figure(7.5)
        ax = figure.subplots()
        rows = [r for r in comparison.rows if r.expected > 0 and r.sir is not None]
        max_e = max([r.expected for r in rows] + [1.0]) * 1.3
        grid = np.geomspace(min([r.expected for r in rows] + [max_e]) / 2, max_e, 400)
        span = np.log(grid[-1] / grid[0])
        limits = sir_limits(grid)
        ax.axhline(1.0, color="black", linewidth=2, label="SIR = 1 (as expected)")
        for key, style in (("95", "--"), ("99.8", "-")):
            low, high = limits[key]
            colour = "#d62728" if key == "99.8" else "#ff7f0e"
            ax.plot(grid, high, style, color=colour, linewidth=1.8, label=f"{key} % limits")
            ax.plot(grid, low, style, color=colour, linewidth=1.8)
        rows.sort(key=lambda r: r.expected)
        # The y axis shows the funnel and the usual groups; a far outlier sits on the top edge (a triangle).
        # (The limits of the smallest groups may leave the top of the axes: they are that wide.) A group far
        # above 99.8 % stays on the axes up to 4 times the others' highest ratio; beyond, it sits on the edge.
        ordinary = max([r.sir for r in rows if not (r.direction == "high" and r.severe)] + [1.0])
        shown = [r.sir for r in rows if r.sir <= 4 * ordinary]
        top = max([ordinary * 1.25, 2.0, *(s * 1.15 for s in shown)])
        # Every group named while they fit; beyond FUNNEL_LABELS groups only the flagged ones.
        label_all = len(rows) <= FUNNEL_LABELS
        for i, r in enumerate(rows):
            colour = {"high": "#d62728" if r.severe else "#ff7f0e", "low": "#2ca02c"}.get(r.direction, COLOURS[0])
            off_scale = r.sir > top
            y = top * 0.96 if off_scale else r.sir
            ax.plot(r.expected, y, "^" if off_scale else "o", color=colour, markersize=12, markeredgecolor="black")
            if not (label_all or r.flag or off_scale):
                continue
            text = r.label
            if off_scale:
                text += f" (SIR {significant(r.sir)}, off scale)"
            if r.flag:
                text += f" ({r.flag})"
            # Names to the right of their point, or to the left in the right third of the axis.
            left = np.log(r.expected / grid[0]) > 0.66 * span
            ax.annotate(
                text,
                (r.expected, y),
                xytext=(-10 if left else 10, -20 if off_scale else (6 if i % 2 else -16)),
                textcoords="offset points",
                ha="right" if left else "left",
                fontweight="bold" if r.direction == "high" and r.severe else "normal",
            )
        ax.set_xscale("log")
        ax.set_ylim(-0.03 * top, top)
        ax.set_xlim(grid[0], max_e)
        # Tick labels as the tables write numbers (never 2 x 10^0); minor ones only over less than two decades.
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: significant(v)))
        if span < np.log(100):
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: significant(v, 2)))
        else:
            ax.xaxis.set_minor_formatter(NullFormatter())
        basis = "person-time" if comparison.basis == "person_time" else "proportions"
        ax.set_xlabel(f"Expected cases (case mix: {' x '.join(ADJUSTMENT)}; basis: {basis})")
        ax.set_ylabel("Standardised incidence ratio (observed / expected)")
        undrawn = len(comparison.rows) - len(rows)
        more = f"\n({undrawn} with no cases expected not drawn)" if undrawn else ""
        ax.set_title(
            f"Provider comparison by {GROUPINGS[comparison.grouping]}, adjusted for case mix: "
            f"{outcome_label(comparison.outcome)}{more}"
        )
        ax.legend(loc="upper right", frameon=True)
    return figure


def message_figure(message: str) -> Figure:
    """Return a figure that says ``message`` (a chart the run has no data for)."""
    with rc_context(STYLE):
        figure = _new_figure(3.0)
        ax = figure.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "\n".join(textwrap.wrap(message, 110)), ha="center", va="center", wrap=True)
    return figure


def figure_labels(figure: Figure) -> list[str]:
    """Return every tick label, legend entry and annotation text of ``figure`` (for tests and alt text)."""
    out = []
    for ax in figure.axes:
        out += [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
        legend = ax.get_legend()
        if legend:
            out += [t.get_text() for t in legend.get_texts()]
        out += [child.get_text() for child in ax.texts]
    return out
