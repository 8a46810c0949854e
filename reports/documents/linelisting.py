"""The de-identified line listing of the adverse events that counted for a run (the workbook's sheet).

Which events count is the engine's rule (reports.engine.counted_events_sql); the run
stores them, as they stood when it succeeded, with the clinic of each (reports.snapshot).
A reader sees only the rows of clinics they may see.

De-identified exactly as the de-identified CSV export (reports.exports.deidentified):
export-local pseudonyms, no free text, no dates, k-anonymous quasi-identifiers.
"""

from __future__ import annotations

from django.conf import settings

from core.dates import today
from reports.exports.deidentified import COLUMNS, Plan, deidentify, fetch_rows, stored_base
from reports.models import IncidenceRun
from reports.selectors import listing_rows_for_user

__all__ = ["COLUMNS", "line_listing"]


def line_listing(run: IncidenceRun, user) -> tuple[list[tuple], Plan]:
    """Return the de-identified listing rows (see COLUMNS) for ``user``'s reading of ``run``, and how they
    were generalised."""
    _, select_sql, plan = deidentify(
        stored_base(listing_rows_for_user(run, user), export_year=today().year),
        min_k=settings.DEIDENTIFIED_MIN_K,
        max_suppressed_percent=settings.DEIDENTIFIED_MAX_SUPPRESSED_PERCENT,
    )
    return fetch_rows(select_sql), plan
