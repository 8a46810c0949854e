"""What a succeeded run's documents show beyond its rows, computed once, with the rows.

reports.services stores a run's result rows and flips it to succeeded in one
transaction; ``run_snapshot_store`` runs in that transaction, after the rows, and
stores from the engine's public functions:

- the provider comparison adjusted for case mix (RunProviderComparison, DESIGN 2b): every
  outcome by clinic, by country and by GMP certification, adjusted for site x cell type x
  age band x sex (the rows of reports.engine.providers.compare_providers, counted in one
  pass for the three groupings), with each group's follow-up completeness (visits due by
  the cut-off, and completed by it);
- the Kaplan-Meier and Aalen-Johansen step curves (RunCurve) of every outcome, every finest
  stratum and the overall one (reports.engine.iter_km_curves: one statement for every outcome);
- the events that counted (RunListingRow, reports.engine.counted_events_sql), with their
  coded columns as they stood, copied inside PostgreSQL (INSERT ... SELECT, flat memory)
  and bounded at REPORTS_MAX_RESULT_ROWS rows, earliest onsets first;
- the safety-reporting figures of the clinics in its scope (RunSafetyFigure, issue 10).

Runs stored before the comparison was (reports 0004 to 0006) kept the crude per-clinic rates
(RunProviderRate); new runs no longer store them. The documents (reports.documents) read
only what the run stored, so the same run's XLSX, PDF and report page show the same
numbers whatever is edited, retracted or added afterwards.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q

from events.models import AdverseEvent
from registry.models import Clinic, FollowUpVisit
from reports.choices import Unit
from reports.engine import IncidenceParams, counted_events_sql, iter_km_curves
from reports.engine.providers import DEFAULT_ADJUST, GROUPS, build_provider_sql, provider_rows
from reports.engine.providers import WORK_MEM as PROVIDERS_WORK_MEM
from reports.exports.deidentified import SNAPSHOT_FIELDS, snapshot_base
from reports.exports.streaming import compose_select
from reports.models import (
    IncidenceRun,
    RunCurve,
    RunListingRow,
    RunMeddraCount,
    RunProviderComparison,
    RunSafetyFigure,
)
from safety.selectors import clinic_safety_figures

WRITE_BATCH = 2000


def run_snapshot_store(*, run: IncidenceRun, params: IncidenceParams) -> int:
    """Store what the documents of ``run`` show (provider comparison, curves, counted events); return how many
    events counted (the listing keeps at most REPORTS_MAX_RESULT_ROWS of them)."""
    _store_provider_comparisons(run=run, params=params)
    _store_curves(run=run, params=params)
    _store_meddra_counts(run=run, params=params)
    _store_safety_figures(run=run)
    return _store_listing(run=run, params=params)


def followup_completeness(params: IncidenceParams, grouping: str) -> dict[str, tuple[int, int]]:
    """Return {group: (visits due, visits completed)} of the report's scope, by ``grouping`` (clinic code,
    country, or GMP certification "true"/"false").

    Due: follow-up visits of the report's procedures (performed on or before the cut-off, in its
    clinics; neither the visit, its procedure nor its patient retracted) due on or before the cut-off,
    leaving out visits due after the patient's death or withdrawal. Completed: of those, the ones
    completed on or before the cut-off. The group is the clinic of the report's unit: the procedure's,
    or the patient's on the patient unit. Counted in PostgreSQL (one GROUP BY).
    """
    clinic = "procedure__patient__clinic" if params.unit == Unit.PATIENT else "procedure__clinic"
    cutoff = params.cutoff_on
    visits = FollowUpVisit.objects.filter(
        Q(procedure__patient__death_date__isnull=True) | Q(procedure__patient__death_date__gte=F("due_on")),
        Q(procedure__patient__withdrawn_on__isnull=True) | Q(procedure__patient__withdrawn_on__gte=F("due_on")),
        retracted_at__isnull=True,
        procedure__retracted_at__isnull=True,
        procedure__patient__retracted_at__isnull=True,
        procedure__performed_on__lte=cutoff,
        due_on__lte=cutoff,
    )
    if params.clinic_ids is not None:
        visits = visits.filter(**{f"{clinic}_id__in": sorted(params.clinic_ids)})
    key = {"clinic": f"{clinic}__code", "country": f"{clinic}__country", "gmp": f"{clinic}__gmp_certified"}[grouping]
    counted = (
        visits.order_by()
        .values(key)
        .annotate(due=Count("pk"), completed=Count("pk", filter=Q(completed_on__lte=cutoff)))
        .values_list(key, "due", "completed")
    )
    return {_group_value(value): (due, completed) for value, due, completed in counted}


def _group_value(value) -> str:
    """Return a group as compare_providers names it (GMP certification "true"/"false")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def provider_comparisons(params: IncidenceParams) -> dict[str, list[dict]]:
    """Return {grouping: compare_providers rows} for clinic, country and GMP certification, adjusted for
    DEFAULT_ADJUST, from one pass over the report's units.

    A clinic has one country and one GMP status, so the cells by (clinic, country, GMP status, adjustment
    stratum) hold every grouping's cells: a country's are the sum of its clinics' (reports.engine.providers
    .provider_rows sums the cells of a group and stratum), exactly as compare_providers counts them by
    country, with one scan of the registry instead of three.
    """
    keys = ("clinic", "country", "gmp")
    sql, args = build_provider_sql(params, group=keys[0], adjust=(*keys[1:], *DEFAULT_ADJUST))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{PROVIDERS_WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, args)
        fetched = cursor.fetchall()
    first, last = len(keys), len(keys) + len(DEFAULT_ADJUST)
    return {
        grouping: provider_rows(
            cells=[(r[keys.index(grouping)], tuple(r[first:last]), *r[last:]) for r in fetched],
            outcomes=params.outcomes,
            windows=params.windows,
        )
        for grouping in GROUPS
    }


def _store_provider_comparisons(*, run: IncidenceRun, params: IncidenceParams) -> None:
    rows, position = [], 0
    for grouping, comparison in provider_comparisons(params).items():
        completeness = followup_completeness(params, grouping)
        for r in comparison:
            due, completed = completeness.get(r["group"], (0, 0))
            rows.append(
                RunProviderComparison(
                    run=run,
                    position=position,
                    grouping=grouping,
                    followup_due=due,
                    followup_completed=completed,
                    **r,
                )
            )
            position += 1
    RunProviderComparison.objects.bulk_create(rows, batch_size=WRITE_BATCH)


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
                    aj_cuminc=curve.aj,
                )
            )
            position += 1
        RunCurve.objects.bulk_create(batch, batch_size=WRITE_BATCH)


def _store_meddra_counts(*, run: IncidenceRun, params: IncidenceParams) -> None:
    """Store the counted events coded with MedDRA by primary SOC and preferred term (RunMeddraCount), in
    PostgreSQL; nothing when no counted event is coded."""
    counted = counted_events_sql(params=params)
    table = connection.ops.quote_name(RunMeddraCount._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(RunMeddraCount._meta.get_field(f).column)
        for f in ("run", "position", "soc_code", "soc_name", "pt_code", "pt_name", "events", "procedures")
    )
    sql = (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608 - quoted names and a composed SELECT
        f"SELECT {int(run.pk)}, row_number() OVER (ORDER BY soc_name, pt_name, soc_code, pt_code) - 1, "
        "soc_code, soc_name, pt_code, pt_name, events, procedures FROM ("
        "SELECT e.meddra_soc_code AS soc_code, e.meddra_soc_name AS soc_name, e.meddra_pt_code AS pt_code, "
        "e.meddra_pt_name AS pt_name, count(*) AS events, count(DISTINCT e.procedure_id) AS procedures "
        f"FROM ({counted}) AS c JOIN events_adverseevent e ON e.id = c.event_id "
        "WHERE e.meddra_pt_code <> '' GROUP BY 1, 2, 3, 4) AS t"
    )
    with connection.cursor() as cursor:
        # No parameters: the counted-events SELECT is composed already.
        cursor.execute(sql)


def _store_safety_figures(*, run: IncidenceRun) -> None:
    """Store the safety-reporting figures of the clinics in the run's scope, and their total (issue 10)."""
    clinics = Clinic.objects.all() if run.clinic_ids is None else Clinic.objects.filter(pk__in=run.clinic_ids)
    RunSafetyFigure.objects.bulk_create(
        RunSafetyFigure(
            run=run,
            position=position,
            clinic_code=figures.clinic.code if figures.clinic is not None else "",
            events=figures.events,
            median_onset_to_recording=figures.median_onset_to_recording,
            submissions=figures.submissions,
            median_awareness_to_submission=figures.median_awareness_to_submission,
            on_time=figures.on_time,
            open_overdue=figures.open_overdue,
            stale_open_cases=figures.stale_open_cases,
        )
        for position, figures in enumerate(clinic_safety_figures(clinics))
    )


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
