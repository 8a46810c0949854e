"""What a succeeded run's documents show beyond its rows, computed once, with the rows.

reports.services stores a run's result rows and flips it to succeeded in one
transaction; ``run_snapshot_store`` runs in that transaction, after the rows, and
stores from the engine's public functions:

- the provider comparison's input (RunProviderRate): each clinic's and the pooled
  rate per outcome; the clinic margins of the stored rows when the run is stratified by
  clinic, else the engine run once more by clinic alone;
- the Kaplan-Meier step curves (RunCurve) of every outcome, every finest stratum and
  the overall one (reports.engine.iter_km_curves: one statement for every outcome);
- the events that counted (RunListingRow, reports.engine.counted_events_sql), with their
  coded columns as they stood, copied inside PostgreSQL (INSERT ... SELECT, flat memory)
  and bounded at REPORTS_MAX_RESULT_ROWS rows, earliest onsets first.

The documents (reports.documents) read only these, so the same run's XLSX, PDF and
report page show the same numbers whatever is edited, retracted or added afterwards.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from events.models import AdverseEvent
from reports.choices import MARGIN, Stratum
from reports.engine import IncidenceParams, compute_incidence, counted_events_sql, iter_km_curves
from reports.exports.deidentified import SNAPSHOT_FIELDS, snapshot_base
from reports.exports.streaming import compose_select
from reports.models import IncidenceRun, RunCurve, RunListingRow, RunProviderRate

WRITE_BATCH = 2000
_RATE_FIELDS = ("outcome", "procedures", "cases", "person_years", "rate_per_100py", "rate_ci_low", "rate_ci_high")


def run_snapshot_store(*, run: IncidenceRun, params: IncidenceParams) -> int:
    """Store what the documents of ``run`` show (provider rates, curves, counted events); return how many
    events counted (the listing keeps at most REPORTS_MAX_RESULT_ROWS of them)."""
    _store_provider_rates(run=run, params=params)
    _store_curves(run=run, params=params)
    return _store_listing(run=run, params=params)


def _clinic_rates(run: IncidenceRun, params: IncidenceParams) -> list[dict]:
    """Return {clinic, outcome, procedures, ...} per clinic (and "ALL" pooled) and outcome of the run's scope."""
    if Stratum.CLINIC in params.strata:
        # The clinic margins of the rows just stored (this transaction sees them).
        others = {f"stratum__{s}": MARGIN for s in params.strata if s != Stratum.CLINIC}
        return [
            {**r, "clinic": r["stratum"][Stratum.CLINIC]}
            for r in run.results.filter(**others).order_by("position").values("stratum", *_RATE_FIELDS)
        ]
    by_clinic = IncidenceParams.build(
        cutoff_on=params.cutoff_on,
        strata=[Stratum.CLINIC],
        outcomes=params.outcomes,
        onset_window_days=params.onset_window_days,
        ci_method=params.ci_method,
        clinic_ids=params.clinic_ids,
    )
    return [
        {"clinic": dict(row.stratum)[Stratum.CLINIC], **{f: getattr(row, f) for f in _RATE_FIELDS}}
        for row in compute_incidence(params=by_clinic)
    ]


def _store_provider_rates(*, run: IncidenceRun, params: IncidenceParams) -> None:
    rows = [
        RunProviderRate(run=run, position=i, **{k: v for k, v in r.items() if k != "stratum"})
        for i, r in enumerate(_clinic_rates(run, params))
    ]
    RunProviderRate.objects.bulk_create(rows, batch_size=WRITE_BATCH)


def _store_curves(*, run: IncidenceRun, params: IncidenceParams) -> None:
    position = 0
    for outcome, curves in iter_km_curves(params=params):
        batch = []
        for curve in curves:
            batch.append(
                RunCurve(
                    run=run,
                    position=position,
                    outcome=outcome,
                    stratum=dict(curve.stratum),
                    procedures=curve.procedures,
                    days=curve.days,
                    cuminc=curve.cuminc,
                )
            )
            position += 1
        RunCurve.objects.bulk_create(batch, batch_size=WRITE_BATCH)


def _store_listing(*, run: IncidenceRun, params: IncidenceParams) -> int:
    """Copy the counted events into the run's listing rows inside PostgreSQL; return how many counted."""
    counted = counted_events_sql(params=params)
    base = compose_select(snapshot_base(AdverseEvent.objects.all()))
    fields = ["run_id", "clinic_id", *SNAPSHOT_FIELDS.values()]
    columns = ", ".join(connection.ops.quote_name(RunListingRow._meta.get_field(f).column) for f in fields)
    values = ", ".join(f"b.x_{name}" for name in SNAPSHOT_FIELDS)
    limit = int(settings.REPORTS_MAX_RESULT_ROWS)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(RunListingRow._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {int(run.pk)}, c.clinic_id, {values} FROM ({counted}) AS c "
        f"JOIN ({base}) AS b ON b.x_event_pk = c.event_id ORDER BY c.onset_on, c.event_id LIMIT {limit}"
    )
    with connection.cursor() as cursor:
        # No parameters: both SELECTs are composed already, and psycopg reads no placeholder in them.
        cursor.execute(sql)
        stored = cursor.rowcount
        if stored < limit:
            return stored
        cursor.execute(f"SELECT count(*) FROM ({counted}) AS c")  # noqa: S608 - composed above
        return int(cursor.fetchone()[0])
