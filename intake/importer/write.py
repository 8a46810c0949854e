"""Return the import's counts after writing the checked staging tables: set-based upserts.

The rows are already in temporary staging tables (intake.importer.stage, filled by
check.py a chunk at a time with COPY) and reach the registry's tables through UPDATE ...
FROM (changed rows only, compared with IS DISTINCT FROM, so an unchanged row is neither
touched nor audited) and INSERT ... SELECT ... WHERE NOT EXISTS (new rows: one anti-join,
which stays cheap when a re-import names a million stored rows). A row another
transaction inserted in between is not skipped silently: its unique constraint refuses
the import. The registry's triggers and CHECK constraints stay on: they fire per row and
are the backstop behind intake.importer.check; a refusal of theirs becomes an ImportRefused.
A retracted record is never written: check.py refused any row that would change one (see
compared()), and the writes skip them (an unchanged row of one counts as unchanged).

Order matters because triggers check a row against the others as they stand:
clinics, patients, procedures, then (visits, events) that hang off procedures.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DataError, IntegrityError

from events.choices import SERIOUS_CRITERIA
from intake.importer import stage
from intake.importer.errors import FILES, ImportRefused, RowError
from intake.importer.read import CLINICS, EVENTS, FOLLOW_UPS, PATIENTS, PROCEDURES
from registry.choices import VISIT_SCHEDULE, visit_window

_FLAGS = tuple(SERIOUS_CRITERIA.values())
_NOW = "now()"


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class Summary:
    """Per file: rows created, updated and left unchanged; plus the schedule and the time per phase."""

    files: dict[str, Counts] = field(default_factory=dict)
    visits_created: int = 0
    visits_rescheduled: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    cases_evaluated: int = 0  # written events held against the expedited-report rules (issue 10)

    def lines(self) -> list[str]:
        """Return the summary as the command prints it."""
        out = [f"{n}: {c.created} created, {c.updated} updated, {c.unchanged} unchanged" for n, c in self.files.items()]
        out.append(f"follow-up schedule: {self.visits_created} visits created, {self.visits_rescheduled} rescheduled")
        out.append(f"expedited-report rules: {self.cases_evaluated} cases evaluated")
        return out


@dataclass(frozen=True)
class _Target:
    """How a staging table maps onto a registry table with a unique external key."""

    table: str
    staging: str
    key: str  # same column name in both tables
    refs: tuple[str, ...]  # "table alias ON ...": resolve the staging row's codes to ids
    values: dict[str, str]  # column -> expression over the staging row (s) and its joins
    inserted: dict[str, str]  # columns the format does not carry: set on insert, never updated
    # Of ``values``, those of columns a file may leave out (read.Column.may_be_absent) share the
    # name of the row attribute, so write_staged's ``left_out`` names them directly.
    where: str = ""

    @property
    def joins(self) -> str:
        return " ".join(f"JOIN {ref}" for ref in self.refs)


_TARGETS = {
    CLINICS: _Target(
        "registry_clinic",
        "import_clinic",
        "code",
        (),
        {
            c: f"s.{c}"
            for c in ("name", "country", "city", "gmp_certified", "accreditation_body", "accreditation_expires_on")
        },
        {"created_at": _NOW},
    ),
    PATIENTS: _Target(
        "registry_patient",
        "import_patient",
        "registry_id",
        ("registry_clinic c ON c.code = s.clinic_code",),
        {
            "clinic_id": "c.id",
            **{c: f"s.{c}" for c in ("sex", "birth_year", "enrolled_on", "withdrawn_on")},
            "death_date": "s.death_first",
            "death_cause": "s.death_cause",
        },
        {"consent_on": "NULL", "created_at": _NOW},
        # A retracted record is frozen: check.py refused any change to one (and to what it holds).
        where="AND t.retracted_at IS NULL",
    ),
    PROCEDURES: _Target(
        "registry_procedure",
        "import_procedure",
        "external_id",
        ("registry_patient pt ON pt.registry_id = s.patient_key", "registry_clinic c ON c.code = s.clinic_code"),
        {
            "patient_id": "pt.id",
            "clinic_id": "c.id",
            **{
                c: f"s.{c}"
                for c in ("performed_on", "site", "laterality", "cell_source", "cell_type", "cell_dose_millions")
            },
            **{c: f"s.{c}" for c in ("carrier", "guidance", "processing", "product_lot", "target", "volume_ml")},
        },
        {"indication": "''", "operator": "''", "created_at": _NOW},
        where="AND t.retracted_at IS NULL",
    ),
    EVENTS: _Target(
        "events_adverseevent",
        "import_event",
        "external_id",
        ("registry_procedure pr ON pr.external_id = s.procedure_key",),
        {
            "procedure_id": "pr.id",
            **{c: f"s.{c}" for c in ("category", "term", "onset_on", "grade", "serious", *_FLAGS)},
            **{c: f"s.{c}" for c in ("outcome", "resolved_on", "causality_procedure")},
        },
        {c: "''" for c in ("meddra_code", "causality_product", "expectedness", "action_taken", "reporter")}
        | {"onset_estimated": "false", "recorded_at": _NOW, "retracted_at": "NULL", "retracted_by_id": "NULL"}
        | {"retraction_reason": "''"}
        # Issue 10: an imported event's clinic learned of it no later than the import (never before onset).
        | {"aware_on": "GREATEST(s.onset_on, now()::date)"},
        where="AND t.retracted_at IS NULL",
    ),
}


# The columns of a follow-up visit the folder sets (a stored visit is updated when one of them differs).
_VISIT_VALUES = ("due_on", "window_start", "window_end", "completed_on")


def compared(name: str) -> tuple[str, str]:
    """Return (joins, condition) that hold the staged rows ``s`` of file ``name`` against the stored rows they name.

    The joins follow ``s`` to its stored row ``t`` and resolve its references as the writes do
    (aliases c, pt, pr), all LEFT JOINs: NULL for what is not stored yet. The condition holds when
    writing ``s`` would create ``t`` or change one of its values: the comparison the writes make,
    so intake.importer.check refuses exactly the rows that would touch a retracted record. (Read
    before _plan: a patient's staged death_first is still its death_date.)
    """
    if name == FOLLOW_UPS:
        joins = (
            "LEFT JOIN registry_procedure pr ON pr.external_id = s.procedure_key"
            " LEFT JOIN registry_followupvisit t ON t.procedure_id = pr.id AND t.visit = s.visit"
        )
        columns, exprs = [f"t.{c}" for c in _VISIT_VALUES], [f"s.{c}" for c in _VISIT_VALUES]
        return joins, f"s.from_file AND (t.id IS NULL OR ({', '.join(columns)}) IS DISTINCT FROM ({', '.join(exprs)}))"
    target = _TARGETS[name]
    joins = " ".join(f"LEFT JOIN {ref}" for ref in target.refs)
    joins += f" LEFT JOIN {target.table} t ON t.{target.key} = s.{target.key}"
    columns = ", ".join(f"t.{c}" for c in target.values)
    return joins, f"(t.id IS NULL OR ({columns}) IS DISTINCT FROM ({', '.join(target.values.values())}))"


def database_refusal(exc: IntegrityError | DataError) -> ImportRefused:
    """Return the import refusal that reports the database's own refusal of a row."""
    diag = getattr(exc.__cause__, "diag", None)
    where = f" ({diag.constraint_name})" if diag is not None and diag.constraint_name else ""
    message = diag.message_primary if diag is not None and diag.message_primary else str(exc)
    return ImportRefused([RowError("(database)", 0, "-", f"The database refused the import{where}: {message}")])


@contextmanager
def timed(phases: dict[str, float], name: str):
    """Return a context that adds its wall time to ``phases[name]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def write_staged(
    cursor,
    *,
    staged: dict[str, int],
    present: Iterable[str],
    left_out: Mapping[str, Collection[str]] | None = None,
    phases: dict[str, float] | None = None,
) -> Summary:
    """Return the counts after writing the staging tables (``staged``: rows staged per file).

    ``left_out`` names, per file, the columns its header left out (read.left_out): new
    records get their default, stored records keep their value. The caller holds the
    transaction and the audit context. Raises ImportRefused when the database refuses a
    row (its triggers and constraints are the backstop).
    """
    summary = Summary(phases=phases if phases is not None else {})
    counts = summary.files
    left_out = left_out or {}
    try:
        with timed(summary.phases, "plan the schedule"):
            _plan(cursor)
        with timed(summary.phases, "write clinics"):
            counts[CLINICS] = _upsert(cursor, _TARGETS[CLINICS], staged[CLINICS], keep=left_out.get(CLINICS, ()))
        with timed(summary.phases, "write patients"):
            patients_updated = _upsert(
                cursor, _TARGETS[PATIENTS], staged[PATIENTS], keep=left_out.get(PATIENTS, ()), ids=True
            )
        with timed(summary.phases, "write procedures"):
            counts[PROCEDURES] = _upsert(
                cursor, _TARGETS[PROCEDURES], staged[PROCEDURES], keep=left_out.get(PROCEDURES, ())
            )
        with timed(summary.phases, "write visits"):
            _write_visits(cursor, staged[FOLLOW_UPS], summary)
        with timed(summary.phases, "write events"):
            cursor.execute("SELECT coalesce(max(id), 0) FROM events_adverseevent")
            (before,) = cursor.fetchone()
            created, updated = _upsert(cursor, _TARGETS[EVENTS], staged[EVENTS], ids=True)
            unchanged = staged[EVENTS] - created - len(updated)
            counts[EVENTS] = Counts(created=created, updated=len(updated), unchanged=unchanged)
            _mark_written_events(cursor, before=before, updated=updated)
        with timed(summary.phases, "write deferred death dates"):
            # Last: a death date may fit only once the procedures, visits and onsets it would
            # precede have moved (see _plan).
            counts[PATIENTS] = _write_deferred_deaths(cursor, staged[PATIENTS], *patients_updated)
    except (IntegrityError, DataError) as exc:
        raise database_refusal(exc) from exc
    present = set(present)
    summary.files = {name: counts[name] for name in FILES if name in present}
    return summary


WRITTEN_EVENTS = "import_written_event"  # the ids of the events this import created or changed
WRITTEN_EVENTS_SQL = f"SELECT id FROM {WRITTEN_EVENTS}"  # noqa: S608 - a constant


def _mark_written_events(cursor, *, before: int, updated: set[int]) -> None:
    """Keep the ids of the events this import created (ids past ``before``) or changed in WRITTEN_EVENTS.

    A temporary table, dropped at commit: the expedited-report rules read it (safety.services) without
    the ids ever making a round trip through Python.
    """
    cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{WRITTEN_EVENTS}")
    cursor.execute(f"CREATE TEMP TABLE {WRITTEN_EVENTS} (id bigint PRIMARY KEY) ON COMMIT DROP")
    cursor.execute(
        f"""INSERT INTO {WRITTEN_EVENTS} (id)
            SELECT e.id FROM events_adverseevent AS e JOIN {stage.table(EVENTS)} AS s ON s.external_id = e.external_id
            WHERE e.id > %s OR e.id = ANY(%s)""",  # noqa: S608 - table names are constants
        [before, list(updated)],
    )


def _plan(cursor) -> None:
    """Add to the staging tables what the registry's own logic adds to the folder's rows, before anything moves.

    A death date that is only valid once the patient's procedures have moved waits for them;
    the open stored visits of a procedure whose date moves are due again from the new date;
    every procedure of the folder, and every one its follow-ups name, gets the full schedule.
    """
    # The database refuses a death date before a procedure, a completed visit or an onset as they
    # stand at that moment, so such a death date is written last (the stored one first); check.py
    # held it against the procedures, visits and events as they will be.
    cursor.execute(
        """UPDATE import_patient AS s SET death_first = p.death_date
           FROM registry_patient AS p
           WHERE p.registry_id = s.registry_id AND s.death_date IS NOT NULL
             AND (EXISTS (SELECT 1 FROM registry_procedure pr
                          WHERE pr.patient_id = p.id AND pr.performed_on > s.death_date)
                  OR EXISTS (SELECT 1 FROM registry_followupvisit v
                             JOIN registry_procedure pr ON pr.id = v.procedure_id
                             WHERE pr.patient_id = p.id AND v.completed_on > s.death_date)
                  OR EXISTS (SELECT 1 FROM events_adverseevent e
                             JOIN registry_procedure pr ON pr.id = e.procedure_id
                             WHERE pr.patient_id = p.id AND e.retracted_at IS NULL AND e.onset_on > s.death_date))"""
    )
    offsets = _schedule_offsets()
    values = ", ".join(["(%s::text, %s::int, %s::int, %s::int)"] * len(offsets))
    # As services.procedure_save does: open visits follow the procedure's date, unless the
    # folder sets them itself; retracted visits stay as they were (check.py refused moving a
    # retracted procedure).
    cursor.execute(
        f"""INSERT INTO import_visit (line, procedure_key, visit, due_on, window_start, window_end, completed_on,
                                      from_file)
            SELECT 0, s.external_id, v.visit, s.performed_on + sch.due, s.performed_on + sch.start,
                   s.performed_on + sch.finish, NULL, false
            FROM import_moved s
            JOIN registry_procedure pr ON pr.id = s.procedure_id AND pr.retracted_at IS NULL
            JOIN registry_followupvisit v ON v.procedure_id = s.procedure_id AND v.completed_on IS NULL
                                         AND v.retracted_at IS NULL
            JOIN (VALUES {values}) AS sch (visit, due, start, finish) ON sch.visit = v.visit
            WHERE NOT EXISTS (
                  SELECT FROM import_visit f WHERE f.procedure_key = s.external_id AND f.visit = v.visit
              )""",  # noqa: S608 - placeholders only; values are bound
        [value for offset in offsets for value in offset],
    )
    if cursor.rowcount:
        cursor.execute("ANALYZE import_visit")
    cursor.execute(
        """INSERT INTO import_schedule (external_id)
           SELECT external_id FROM import_procedure WHERE external_id IS NOT NULL
           UNION SELECT procedure_key FROM import_visit WHERE from_file AND procedure_key IS NOT NULL"""
    )
    cursor.execute("ANALYZE import_schedule")


def _upsert(cursor, target: _Target, total: int, *, keep: Collection[str] = (), ids: bool = False):
    """Return the counts (or, with ``ids``, the created count and the updated ids) of one upsert.

    Stored records keep their values of the columns in ``keep`` (left out of the file's header).
    """
    columns = list(target.values)
    exprs = list(target.values.values())
    changed = {c: e for c, e in target.values.items() if c not in keep}
    cursor.execute(
        f"""UPDATE {target.table} AS t SET {", ".join(f"{c} = {e}" for c, e in changed.items())},
                   updated_at = now()
            FROM {target.staging} AS s {target.joins}
            WHERE t.{target.key} = s.{target.key} {target.where}
              AND ({", ".join("t." + c for c in changed)}) IS DISTINCT FROM ({", ".join(changed.values())})
            RETURNING t.id"""  # noqa: S608 - identifiers from _TARGETS; no value is interpolated
    )
    updated = {pk for (pk,) in cursor.fetchall()}
    inserted = {**target.inserted, "updated_at": _NOW}
    cursor.execute(
        f"""INSERT INTO {target.table} ({target.key}, {", ".join(columns)}, {", ".join(inserted)})
            SELECT s.{target.key}, {", ".join(exprs)}, {", ".join(inserted.values())}
            FROM {target.staging} AS s {target.joins}
            WHERE NOT EXISTS (SELECT FROM {target.table} AS t WHERE t.{target.key} = s.{target.key})"""  # noqa: S608 - identifiers from _TARGETS; no value is interpolated
    )
    if ids:
        return cursor.rowcount, updated
    return Counts(created=cursor.rowcount, updated=len(updated), unchanged=total - cursor.rowcount - len(updated))


def _write_deferred_deaths(cursor, total: int, created: int, updated: set[int]) -> Counts:
    """Return the patients' counts after writing the death dates that had to wait for their procedures."""
    cursor.execute(
        """UPDATE registry_patient AS t SET death_date = s.death_date, updated_at = now()
           FROM import_patient AS s
           WHERE t.registry_id = s.registry_id AND s.death_first IS DISTINCT FROM s.death_date
             AND t.retracted_at IS NULL
           RETURNING t.id"""
    )
    updated |= {pk for (pk,) in cursor.fetchall()}
    return Counts(created=created, updated=len(updated), unchanged=total - created - len(updated))


def _schedule_offsets() -> list[tuple[str, int, int, int]]:
    """Return (visit, due, window start, window end) in days after the procedure, from visit_window."""
    base = dt.date(2000, 1, 1)
    offsets = []
    for label, (days, _early, _late) in VISIT_SCHEDULE.items():
        start, end = visit_window(label, base + timedelta(days=days))
        offsets.append((str(label), days, (start - base).days, (end - base).days))
    return offsets


def _write_visits(cursor, total: int, summary: Summary) -> None:
    cursor.execute(
        """SELECT count(*) FROM import_visit s
           JOIN registry_procedure pr ON pr.external_id = s.procedure_key
           JOIN registry_followupvisit v ON v.procedure_id = pr.id AND v.visit = s.visit
           WHERE s.from_file"""
    )
    (existing,) = cursor.fetchone()
    updated = {}
    stored, staged = (", ".join(f"{alias}.{c}" for c in _VISIT_VALUES) for alias in "ts")
    for from_file in (True, False):
        # A retracted visit is frozen: check.py refused any change to one.
        cursor.execute(
            f"""UPDATE registry_followupvisit AS t
                SET {", ".join(f"{c} = s.{c}" for c in _VISIT_VALUES)}, updated_at = now()
                FROM import_visit AS s JOIN registry_procedure pr ON pr.external_id = s.procedure_key
                WHERE t.procedure_id = pr.id AND t.visit = s.visit AND s.from_file = %s AND t.retracted_at IS NULL
                  AND ({stored}) IS DISTINCT FROM ({staged})""",  # noqa: S608 - column names only; values are bound
            [from_file],
        )
        updated[from_file] = cursor.rowcount
    offsets = _schedule_offsets()
    values = ", ".join(["(%s::text, %s::int, %s::int, %s::int)"] * len(offsets))
    # The full schedule of every procedure the folder names; a follow-up row's values win
    # for its visit, and visits already stored stay as they are (updated above). A retracted
    # procedure, or one of a retracted patient, gets nothing added (as registry.services refuses).
    cursor.execute(
        f"""INSERT INTO registry_followupvisit
                (procedure_id, visit, due_on, window_start, window_end, completed_on, contact_method, notes, updated_at)
            SELECT pr.id, sch.visit, COALESCE(s.due_on, pr.performed_on + sch.due),
                   COALESCE(s.window_start, pr.performed_on + sch.start),
                   COALESCE(s.window_end, pr.performed_on + sch.finish), s.completed_on, '', '', now()
            FROM import_schedule x JOIN registry_procedure pr ON pr.external_id = x.external_id
            JOIN registry_patient pt ON pt.id = pr.patient_id
            CROSS JOIN (VALUES {values}) AS sch (visit, due, start, finish)
            LEFT JOIN import_visit s ON s.procedure_key = x.external_id AND s.visit = sch.visit
            WHERE pr.retracted_at IS NULL AND pt.retracted_at IS NULL AND NOT EXISTS (
                SELECT FROM registry_followupvisit v WHERE v.procedure_id = pr.id AND v.visit = sch.visit
            )""",  # noqa: S608 - placeholders only; values are bound
        [value for offset in offsets for value in offset],
    )
    summary.visits_created = cursor.rowcount
    summary.visits_rescheduled = updated[False]
    summary.files[FOLLOW_UPS] = Counts(
        created=total - existing, updated=updated[True], unchanged=existing - updated[True]
    )
