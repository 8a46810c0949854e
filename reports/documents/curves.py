"""The Kaplan-Meier step curves of a succeeded run, as stored with it (reports.snapshot).

The engine computes them (reports.engine.curves) when the run succeeds; a document only
reads them back, so they pass through the stored 30-day, 1, 2 and 5-year figures and
never change after an edit of the registry.
"""

from __future__ import annotations

from reports.engine import Curve, stratum_label
from reports.models import IncidenceRun
from reports.selectors import curves_of_run

__all__ = ["Curve", "km_curves", "stratum_label"]


def km_curves(run: IncidenceRun, *, outcome: str) -> list[Curve]:
    """Return the stored curves of ``outcome`` in ``run``: every finest stratum, then the overall one."""
    names = list(run.strata)
    return [
        Curve(
            stratum=tuple((n, c.stratum[n]) for n in names),
            procedures=c.procedures,
            days=list(c.days),
            cuminc=list(c.cuminc),
        )
        for c in curves_of_run(run, outcome=outcome)
    ]
