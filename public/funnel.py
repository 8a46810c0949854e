"""Return a funnel chart's geometry for an inline SVG drawn by the server (no JavaScript, no image request).

SIR against expected cases E, with the exact Poisson control limits of O / E for O ~ Poisson(E)
(reports.documents.provider.sir_limits: Spiegelhalter's interpolation), 95 % and 99.8 %, and the
line SIR = 1. Only the groups whose SIR is published are drawn: a point of a suppressed group
would print what the table leaves blank.
"""

from __future__ import annotations

import math

import numpy as np

from reports.documents.provider import sir_limits

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 20, 56
STEPS = 80


def _nice_top(value: float) -> float:
    """Return a round axis end at or above ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _ticks(top: float) -> list[float]:
    return [round(top * i / 4, 6) for i in range(5)]


def _label(value: float) -> str:
    return f"{value:g}"


def funnel(rows: list[dict]) -> dict | None:
    """Return the chart of ``rows`` (published rows of one grouping): points, limit paths, axes; None without points."""
    points = [r for r in rows if r.get("sir") is not None and r.get("expected")]
    if not points:
        return None
    x_top = _nice_top(max(r["expected"] for r in points) * 1.1)
    y_top = _nice_top(max(2.0, max(r["sir"] for r in points) * 1.15))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(value: float) -> float:
        return round(LEFT + plot_w * value / x_top, 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - min(value, y_top) / y_top), 1)

    grid = np.linspace(x_top / STEPS, x_top, STEPS)
    limits = sir_limits(grid)
    paths = []
    for level, dash in (("95", "6 4"), ("99.8", "2 3")):
        for side in limits[level]:
            # Where a limit leaves the plot (small E, upper limits) it is not drawn rather than drawn along the edge.
            coords = [f"{x(e)},{y(v)}" for e, v in zip(grid, side, strict=True) if np.isfinite(v) and v <= y_top]
            if coords:
                paths.append({"level": level, "dash": dash, "points": " ".join(coords)})
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "plot": {"left": LEFT, "top": TOP, "right": WIDTH - RIGHT, "bottom": HEIGHT - BOTTOM},
        "x_ticks": [{"at": x(t), "label": _label(t)} for t in _ticks(x_top)],
        "y_ticks": [{"at": y(t), "label": _label(t)} for t in _ticks(y_top)],
        "one": y(1.0),
        "limits": paths,
        "points": [
            {
                "x": x(r["expected"]),
                "y": y(r["sir"]),
                "label": r["label"],
                "sir": r["sir"],
                "expected": r["expected"],
                "direction": r["direction"] or "as expected",
            }
            for r in points
        ],
        "x_label_at": LEFT + plot_w / 2,
        "y_label_at": TOP + plot_h / 2,
    }
