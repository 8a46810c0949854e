"""The de-identified line listing of the adverse events that count for a run (the workbook's sheet).

An event is listed when it is not retracted, its procedure is in the run's clinic scope
(and the reader's) and was performed on or before the cut-off, its onset is on or
before the procedure's observation end as far as the event itself decides it (on or
before the cut-off and the patient's withdrawal; the onset is itself a contact, so
never after the last contact), within the run's onset window if any, and it qualifies
for at least one of the run's outcomes.

De-identified exactly as the de-identified CSV export (reports.exports.deidentified):
export-local pseudonyms, no free text, no dates, k-anonymous quasi-identifiers.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet

from events.models import AdverseEvent
from registry.rules import today
from registry.selectors import limit_to_user_clinics
from reports.choices import OUTCOME_ANY, OUTCOME_GRADE_3_PLUS, OUTCOME_SERIOUS
from reports.exports.deidentified import COLUMNS, Plan, deidentified_listing, fetch_rows
from reports.models import IncidenceRun

__all__ = ["COLUMNS", "counted_events", "line_listing"]


def _outcome_filter(outcomes) -> Q:
    if OUTCOME_ANY in outcomes:
        return Q()
    q = Q(category__in=[o for o in outcomes if o not in (OUTCOME_SERIOUS, OUTCOME_GRADE_3_PLUS)])
    if OUTCOME_SERIOUS in outcomes:
        q |= Q(serious=True)
    if OUTCOME_GRADE_3_PLUS in outcomes:
        q |= Q(grade__gte=3)
    return q


def counted_events(run: IncidenceRun, user) -> QuerySet[AdverseEvent]:
    """Return the events of ``run`` that ``user`` may see, in onset order."""
    qs = AdverseEvent.objects.filter(
        retracted_at__isnull=True,
        procedure__performed_on__lte=run.cutoff_on,
        onset_on__lte=run.cutoff_on,
    ).filter(Q(procedure__patient__withdrawn_on__isnull=True) | Q(onset_on__lte=F("procedure__patient__withdrawn_on")))
    if run.clinic_ids is not None:
        qs = qs.filter(procedure__clinic_id__in=run.clinic_ids)
    qs = limit_to_user_clinics(qs, user, "procedure__clinic_id")
    qs = qs.filter(_outcome_filter(run.outcomes))
    if run.onset_window_days is not None:
        # onset - performed_on <= N days, as the engine counts it.
        delay = ExpressionWrapper(F("onset_on") - F("procedure__performed_on"), output_field=DurationField())
        qs = qs.annotate(delay=delay).filter(delay__lte=dt.timedelta(days=run.onset_window_days))
    return qs.order_by("onset_on", "pk")


def line_listing(run: IncidenceRun, user) -> tuple[list[tuple], Plan]:
    """Return the de-identified listing rows (see COLUMNS) for ``user``'s reading of ``run``, and how they
    were generalised."""
    _, select_sql, plan = deidentified_listing(
        counted_events(run, user),
        export_year=today().year,
        min_k=settings.DEIDENTIFIED_MIN_K,
        max_suppressed_percent=settings.DEIDENTIFIED_MAX_SUPPRESSED_PERCENT,
    )
    return fetch_rows(select_sql), plan
