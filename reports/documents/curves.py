"""The Kaplan-Meier and Aalen-Johansen step curves of a succeeded run, as stored with it (reports.snapshot).

The engine computes them (reports.engine.curves) when the run succeeds; a document only
reads them back, so they pass through the stored 30-day, 1, 2 and 5-year figures and
never change after an edit of the registry.
"""

from __future__ import annotations

from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from reports.engine import Curve, stratum_label
from reports.models import IncidenceRun, RunCurve
from reports.selectors import curves_of_run

__all__ = ["Curve", "km_curves", "outcomes_with_late_events", "stratum_label"]


def km_curves(run: IncidenceRun, *, outcome: str) -> list[Curve]:
    """Return the stored curves of ``outcome`` in ``run``: every finest stratum, then the overall one (their
    Aalen-Johansen values empty on runs stored before them)."""
    names = list(run.strata)
    return [
        Curve(
            stratum=tuple((n, c.stratum[n]) for n in names),
            procedures=c.procedures,
            days=list(c.days),
            cuminc=list(c.cuminc),
            aj=list(c.aj_cuminc),
        )
        for c in curves_of_run(run, outcome=outcome)
    ]


def outcomes_with_late_events(run: IncidenceRun, *, after_day: int) -> set[str]:
    """Return the outcomes of ``run`` whose stored curves step after day ``after_day`` of the risk window
    (a curve steps only on a day with events), found in PostgreSQL without reading the curves."""
    days = RunCurve._meta.get_field("days").column
    late = RawSQL(f'%s < ANY("{days}")', (int(after_day),), output_field=BooleanField())  # noqa: S611 - a column name
    return set(
        RunCurve.objects.filter(run=run)
        .alias(late=late)
        .filter(late=True)
        .order_by()
        .values_list("outcome", flat=True)
        .distinct()
    )
