"""The run's charts as matplotlib Figures (Agg canvas, no pyplot state): forest, Kaplan-Meier, funnel.

Each ``*_figure`` function returns the Figure (tests read its tick labels); ``png``
renders one to PNG bytes. Sizes and fonts are meant to be read without zooming: about
1400 px wide at 100 dpi, 14 pt text.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.choices import HORIZONS, MARGIN, OUTCOME_LABELS
from reports.documents.curves import Curve, stratum_label
from reports.documents.provider import Comparison, control_limits

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


def forest_rows(results: Sequence, outcome: str) -> tuple[list, bool]:
    """Return the stored rows a forest plot shows (finest strata, largest first, then the overall row)."""
    rows = [r for r in results if r.outcome == outcome]
    finest = [r for r in rows if r.stratum and all(v != MARGIN for v in r.stratum.values())]
    overall = [r for r in rows if all(v == MARGIN for v in r.stratum.values())]
    finest.sort(key=lambda r: -r.procedures)
    truncated = len(finest) > FOREST_MAX_ROWS
    finest = sorted(finest[:FOREST_MAX_ROWS], key=lambda r: stratum_label(r.stratum))
    return finest + overall[:1], truncated


def forest_figure(results: Sequence, *, outcome: str, strata: Sequence[str]) -> Figure:
    """Return the forest plot of ``outcome``: proportion and rate with their 95 % intervals per stratum."""
    with rc_context(STYLE):
        rows, truncated = forest_rows(results, outcome)
        n = max(len(rows), 1)
        figure = _new_figure(2.2 + 0.5 * n)
        ax_p, ax_r = figure.subplots(1, 2, sharey=True)
        y = np.arange(len(rows))[::-1]
        labels = [f"{stratum_label(r.stratum)} (n={r.procedures})" for r in rows]
        for ax, value, low, high, scale, title in (
            (ax_p, "proportion", "proportion_ci_low", "proportion_ci_high", 100.0, "Proportion of procedures (%)"),
            (ax_r, "rate_per_100py", "rate_ci_low", "rate_ci_high", 1.0, "Rate per 100 person-years"),
        ):
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
        ax_p.set_yticks(y, labels=labels)
        ax_p.set_ylim(-0.7, len(rows) - 0.3)
        by = " x ".join(strata) or "overall"
        suffix = f" (largest {FOREST_MAX_ROWS} strata)" if truncated else ""
        figure.suptitle(f"{outcome_label(outcome)} by {by}{suffix}: estimate and 95 % interval")
    return figure


def km_figure(curves: Sequence[Curve], *, outcome: str) -> Figure:
    """Return the Kaplan-Meier cumulative incidence curves (largest strata, overall in black)."""
    with rc_context(STYLE):
        figure = _new_figure(7.5)
        ax = figure.subplots()
        overall = [c for c in curves if c.label == "All procedures"]
        others = sorted((c for c in curves if c.label != "All procedures"), key=lambda c: -c.procedures)
        shown = others[:KM_MAX_CURVES]
        horizon = max(day for _, day in HORIZONS)
        for i, curve in enumerate(shown):
            days = [*curve.days, horizon]
            values = [*curve.cuminc, curve.cuminc[-1]]
            ax.step(
                days,
                np.array(values) * 100,
                where="post",
                linewidth=2.2,
                color=COLOURS[i % len(COLOURS)],
                label=f"{curve.label} (n={curve.procedures})",
            )
        for curve in overall:
            ax.step(
                [*curve.days, horizon],
                np.array([*curve.cuminc, curve.cuminc[-1]]) * 100,
                where="post",
                linewidth=3,
                color="black",
                label=f"All procedures (n={curve.procedures})",
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
        ax.set_xlabel("Days after the procedure")
        ax.set_ylabel("Cumulative incidence (%)")
        more = f"; {len(others) - len(shown)} smaller strata not drawn" if len(others) > len(shown) else ""
        ax.set_title(f"Kaplan-Meier cumulative incidence: {outcome_label(outcome)}{more}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=True, borderaxespad=0)
    return figure


def funnel_figure(comparison: Comparison) -> Figure:
    """Return the funnel plot: each clinic's rate against person-years, pooled rate and control limits."""
    with rc_context(STYLE):
        figure = _new_figure(7.5)
        ax = figure.subplots()
        clinics = comparison.clinics
        pooled = comparison.pooled_rate
        max_py = max([c.person_years for c in clinics] + [1.0]) * 1.1
        if pooled is not None:
            grid = np.linspace(max_py / 400, max_py, 400)
            limits = control_limits(pooled, grid)
            ax.axhline(pooled, color="black", linewidth=2, label=f"Pooled rate {pooled:.3g} per 100 PY")
            for key, style in (("95", "--"), ("99.8", "-")):
                low, high = limits[key]
                ax.plot(
                    grid,
                    high,
                    style,
                    color="#d62728" if key == "99.8" else "#ff7f0e",
                    linewidth=1.8,
                    label=f"{key} % limits",
                )
                ax.plot(grid, low, style, color="#d62728" if key == "99.8" else "#ff7f0e", linewidth=1.8)
        rated = sorted((c for c in clinics if c.rate is not None), key=lambda c: c.person_years)
        # The y axis shows the funnel and the usual clinics; a far outlier sits on the top edge (a triangle).
        ordinary = [c.rate for c in rated if c.flag != "alarm"]
        small_py = float(np.percentile([c.person_years for c in rated], 25)) if rated else 1.0
        top = max([*ordinary, (pooled or 0) * 3, 1.0])
        if pooled is not None and small_py > 0:
            top = max(top, float(control_limits(pooled, [small_py])["99.8"][1][0]))
        top *= 1.25
        for i, c in enumerate(rated):
            colour = {"alarm": "#d62728", "alert": "#ff7f0e", "low": "#2ca02c"}.get(c.flag, COLOURS[0])
            off_scale = c.rate > top
            y = top * 0.96 if off_scale else c.rate
            ax.plot(c.person_years, y, "^" if off_scale else "o", color=colour, markersize=12, markeredgecolor="black")
            text = c.clinic
            if off_scale:
                text += f" ({c.rate:,.0f} per 100 PY, off scale)"
            if c.flag == "alarm":
                text += " (above 99.8 %)"
            ax.annotate(
                text,
                (c.person_years, y),
                xytext=(8, -20) if off_scale else ((-10, 6) if i % 2 else (10, 6)),
                textcoords="offset points",
                ha="right" if i % 2 and not off_scale else "left",
                fontweight="bold" if c.flag == "alarm" else "normal",
            )
        ax.set_ylim(0, top)
        ax.set_xlim(0, max_py)
        ax.set_xlabel("Person-years of follow-up")
        ax.set_ylabel("Rate per 100 person-years")
        ax.set_title(f"Provider comparison (funnel plot): {outcome_label(comparison.outcome)}")
        ax.legend(loc="upper right", frameon=True)
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
