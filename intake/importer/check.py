"""Return the errors of an import: hold each chunk of rows against the rules, stage it, then check across rows.

A row is checked as the admin would check it, through the same rule functions
(registry.rules, events.rules), against the state the registry will be in after the
import: rows of the folder replace the stored rows they name, stored rows the folder
does not name stay. Files are read in reference order (clinics, patients, procedures,
follow-ups, events), so what a row refers to is already staged when the row is read;
each chunk looks up what it needs (its clinic, patient or procedure, a stored event it
may not change) in a few queries by key, and is then staged. Once a file is staged,
one set-wise query finds the rows that repeat an id.

What depends on rows not yet read, a patient's death and withdrawal dates against all of
its procedures, visits and events (and a death date against its fatal events or cause),
and a moved procedure against its stored events and visits, is checked once everything
is staged: set-wise in SQL, computing the values the rule functions across rows take
(registry.rules.*_across_errors, events.rules.adverse_event_across_errors), which run over
the rows the database streams back (a server-side cursor), never over a list of them all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection

from events.models import AdverseEvent
from events.rules import adverse_event_across_errors, adverse_event_errors
from intake.importer import stage
from intake.importer.errors import ErrorList, RowError
from intake.importer.read import CLINICS, EVENTS, FOLLOW_UPS, PATIENTS, PROCEDURES, SPECS
from intake.importer.write import compared
from registry.choices import VISIT_SCHEDULE, visit_window
from registry.models import Clinic, FollowUpVisit, Patient, Procedure
from registry.rules import (
    PARENT_RETRACTED,
    PROCEDURE_BEFORE_BIRTH,
    RETRACTED_FROZEN,
    patient_across_errors,
    patient_errors,
    procedure_across_errors,
    procedure_errors,
    visit_across_errors,
    visit_errors,
)

_STREAM_ROWS = 2000  # rows per fetch from a server-side cursor


@dataclass(slots=True)
class _Patient:
    """What the procedure rules read of a patient."""

    clinic_id: str | None  # the clinic's code, as on parsed rows
    birth_year: int | None
    death_date: dt.date | None
    withdrawn_on: dt.date | None = None


@dataclass(slots=True)
class _PatientDates:
    """A patient of the folder as the rules across rows read it, after the import."""

    death_date: dt.date | None
    withdrawn_on: dt.date | None
    death_cause: str


@dataclass(slots=True)
class _StoredProcedure:
    """A stored procedure, as the procedure rules read it."""

    external_id: str
    clinic_id: str  # the clinic's code, as on parsed rows
    performed_on: dt.date
    cell_source: str
    cell_type: str
    processing: str
    cell_dose_millions: Decimal | None
    volume_ml: Decimal | None


# The retracted records a file's rows may name, per file: (the staged row's key, a query of
# (key..., rank) over the retracted records and the staged rows that name them). Rank 0: the
# record itself is retracted; 1: its procedure; 2: its patient (as stored, or as the row names it).
_RETRACTED_HITS = {
    PATIENTS: (
        ("registry_id",),
        """SELECT s.registry_id, 0 AS rank FROM registry_patient t
           JOIN import_patient s ON s.registry_id = t.registry_id WHERE t.retracted_at IS NOT NULL""",
    ),
    PROCEDURES: (
        ("external_id",),
        """SELECT s.external_id, 0 AS rank FROM registry_procedure t
           JOIN import_procedure s ON s.external_id = t.external_id WHERE t.retracted_at IS NOT NULL
           UNION ALL
           SELECT s.external_id, 2 FROM registry_patient p JOIN import_procedure s ON s.patient_key = p.registry_id
           WHERE p.retracted_at IS NOT NULL
           UNION ALL
           SELECT s.external_id, 2 FROM registry_patient p JOIN registry_procedure t ON t.patient_id = p.id
           JOIN import_procedure s ON s.external_id = t.external_id WHERE p.retracted_at IS NOT NULL""",
    ),
    FOLLOW_UPS: (
        ("procedure_key", "visit"),
        """SELECT s.procedure_key, s.visit, 0 AS rank FROM registry_followupvisit t
           JOIN registry_procedure pr ON pr.id = t.procedure_id
           JOIN import_visit s ON s.procedure_key = pr.external_id AND s.visit = t.visit
           WHERE t.retracted_at IS NOT NULL
           UNION ALL
           SELECT s.procedure_key, s.visit, 1 FROM registry_procedure pr
           JOIN import_visit s ON s.procedure_key = pr.external_id WHERE pr.retracted_at IS NOT NULL
           UNION ALL
           SELECT s.procedure_key, s.visit, 2 FROM registry_patient p JOIN registry_procedure pr ON pr.patient_id = p.id
           JOIN import_visit s ON s.procedure_key = pr.external_id WHERE p.retracted_at IS NOT NULL""",
    ),
    EVENTS: (
        ("external_id",),
        # The procedure the row names, and the one a stored event would leave.
        """SELECT s.external_id, 0 AS rank FROM events_adverseevent t
           JOIN import_event s ON s.external_id = t.external_id WHERE t.retracted_at IS NOT NULL
           UNION ALL
           SELECT s.external_id, 1 FROM registry_procedure pr
           JOIN import_event s ON s.procedure_key = pr.external_id WHERE pr.retracted_at IS NOT NULL
           UNION ALL
           SELECT s.external_id, 1 FROM registry_procedure pr JOIN events_adverseevent t ON t.procedure_id = pr.id
           JOIN import_event s ON s.external_id = t.external_id WHERE pr.retracted_at IS NOT NULL
           UNION ALL
           SELECT s.external_id, 2 FROM registry_patient p JOIN registry_procedure pr ON pr.patient_id = p.id
           JOIN import_event s ON s.procedure_key = pr.external_id WHERE p.retracted_at IS NOT NULL
           UNION ALL
           SELECT s.external_id, 2 FROM registry_patient p JOIN registry_procedure pr ON pr.patient_id = p.id
           JOIN events_adverseevent t ON t.procedure_id = pr.id
           JOIN import_event s ON s.external_id = t.external_id WHERE p.retracted_at IS NOT NULL""",
    ),
}
_RETRACTABLE = ("registry_patient", "registry_procedure", "registry_followupvisit", "events_adverseevent")
# file -> the tables whose retracted rows its rows may touch
_RETRACTED_TABLES = {
    PATIENTS: {"registry_patient"},
    PROCEDURES: {"registry_patient", "registry_procedure"},
    FOLLOW_UPS: {"registry_patient", "registry_procedure", "registry_followupvisit"},
    EVENTS: {"registry_patient", "registry_procedure", "events_adverseevent"},
}
# file -> rank -> (the column blamed, the catalogue's rule, the kind of record retracted).
_RETRACTED_REPORT = {
    PATIENTS: {0: ("registry_id", RETRACTED_FROZEN, Patient)},
    PROCEDURES: {
        0: ("procedure_id", RETRACTED_FROZEN, Procedure),
        2: ("patient_registry_id", PARENT_RETRACTED, Patient),
    },
    FOLLOW_UPS: {
        0: ("visit", RETRACTED_FROZEN, FollowUpVisit),
        1: ("procedure_id", PARENT_RETRACTED, Procedure),
        2: ("procedure_id", PARENT_RETRACTED, Patient),
    },
    EVENTS: {
        0: ("event_id", RETRACTED_FROZEN, AdverseEvent),
        1: ("procedure_id", PARENT_RETRACTED, Procedure),
        2: ("procedure_id", PARENT_RETRACTED, Patient),
    },
}


class Checker:
    """Checks and stages the folder's rows a chunk at a time; errors go to ``errors``, counts to ``staged``."""

    def __init__(self, cursor, errors: ErrorList):
        self.cursor = cursor
        self.errors = errors
        self.staged = {name: 0 for name in SPECS}

    # --- reporting -------------------------------------------------------------------------

    def _report(self, file: str, row, column: str, message: str, *, unreadable: bool = False) -> None:
        # A cell that could not be read (or names nothing) is not also blamed by a rule.
        if column in row.refused:
            return
        if unreadable:
            row.refused.add(column)
        self.errors.add(RowError(file, row.line, column, message))

    def _report_rules(self, file: str, row, found: dict[str, str], prefix: str = "") -> None:
        column_of = SPECS[file].column_of
        for name, message in found.items():
            self._report(file, row, column_of.get(name, f"{name} (stored value)"), prefix + message)

    # --- one chunk -------------------------------------------------------------------------

    def check_chunk(self, name: str, chunk: list) -> None:
        """Check ``chunk`` (rows of file ``name``, in line order) and stage it."""
        {
            CLINICS: self._check_clinics,
            PATIENTS: self._check_patients,
            PROCEDURES: self._check_procedures,
            FOLLOW_UPS: self._check_visits,
            EVENTS: self._check_events,
        }[name](chunk)
        stage.copy_rows(self.cursor, name, chunk)
        self.staged[name] += len(chunk)

    def finish_file(self, name: str) -> None:
        """Report the rows of file ``name`` that repeat an earlier row's id, unstage them, and index the rest.

        Set-wise, once the file is staged: one pass of a hash aggregate finds the repeated
        ids (usually none). The first row with an id stays staged, so the files read next
        refer to it; the others are reported at their own line.
        """
        spec = SPECS[name]
        attrs = spec.key
        table = stage.table(name)
        columns = ", ".join(attrs)
        repeated = f"""WITH repeated AS (
                           SELECT {columns}, min(line) AS first FROM {table}
                           WHERE {" AND ".join(f"{a} IS NOT NULL" for a in attrs)}
                           GROUP BY {columns} HAVING count(*) > 1
                       )"""  # noqa: S608 - constants
        label = "/".join(spec.column_of[a] for a in attrs)
        for line, first, *key in self._rows(
            f"""{repeated} SELECT t.line, r.first, {", ".join("t." + a for a in attrs)}
                FROM {table} t JOIN repeated r USING ({columns}) WHERE t.line > r.first ORDER BY t.line"""  # noqa: S608 - constants
        ):
            message = f"Duplicate {label} {'/'.join(key)!r} (first on line {first})."
            self.errors.add(RowError(name, line, spec.column_of[attrs[0]], message))
        self.cursor.execute(
            f"""{repeated} DELETE FROM {table} t USING repeated r
                WHERE ({", ".join("t." + a for a in attrs)}) = ({", ".join("r." + a for a in attrs)})
                  AND t.line > r.first"""  # noqa: S608 - constants
        )
        self.staged[name] -= self.cursor.rowcount
        stage.index(self.cursor, name)

    def _fetch(self, sql: str, params) -> list[tuple]:
        self.cursor.execute(sql, params)
        return self.cursor.fetchall()

    def _known_clinics(self, codes: set[str]) -> set[str]:
        if not codes:
            return set()
        found = self._fetch(
            """SELECT code FROM import_clinic WHERE code = ANY(%s)
               UNION SELECT code FROM registry_clinic WHERE code = ANY(%s)""",
            [list(codes)] * 2,
        )
        return {code for (code,) in found}

    def _patients(self, keys: set[str]) -> dict[str, _Patient]:
        """Return the patients named by ``keys`` as they will be after the import: the folder's row wins."""
        if not keys:
            return {}
        # Two look-ups by index; an anti-join here would hash the whole staging table per chunk.
        found = self._fetch(
            """SELECT p.registry_id, c.code, p.birth_year, p.death_date, p.withdrawn_on, 0 AS staged
               FROM registry_patient p JOIN registry_clinic c ON c.id = p.clinic_id WHERE p.registry_id = ANY(%s)
               UNION ALL
               SELECT registry_id, clinic_code, birth_year, death_date, withdrawn_on, 1 FROM import_patient
               WHERE registry_id = ANY(%s)
               ORDER BY staged""",
            [list(keys)] * 2,
        )
        return {key: _Patient(*values) for key, *values, _staged in found}

    def _performed_on(self, keys: set[str]) -> dict[str, dt.date | None]:
        """Return each named procedure's date as it will be after the import (None: its date was unreadable)."""
        if not keys:
            return {}
        found = self._fetch(
            """SELECT external_id, performed_on, 0 AS staged FROM registry_procedure WHERE external_id = ANY(%s)
               UNION ALL
               SELECT external_id, performed_on, 1 FROM import_procedure WHERE external_id = ANY(%s)
               ORDER BY staged""",
            [list(keys)] * 2,
        )
        return {key: performed_on for key, performed_on, _staged in found}  # the staged row comes last and wins

    def _death_dates(self, keys: set[str]) -> dict[str, dt.date | None]:
        """Return the death date of each named procedure's patient, as it will be after the import.

        A procedure missing from the answer has none (callers use .get()).
        """
        if not keys:
            return {}
        # Only procedures whose patient has a death date, given or stored, can have one after the
        # import (most have none): the rest are answered without looking their patient up. A staged
        # procedure is read from the folder only, so its staged patient wins as before.
        found = self._fetch(
            """SELECT pr.external_id, pt.registry_id
               FROM registry_procedure pr JOIN registry_patient pt ON pt.id = pr.patient_id
               WHERE pr.external_id = ANY(%s)
                 AND NOT EXISTS (SELECT FROM import_procedure s WHERE s.external_id = pr.external_id)
                 AND (pt.death_date IS NOT NULL OR EXISTS (SELECT FROM import_patient ip
                                                          WHERE ip.registry_id = pt.registry_id
                                                            AND ip.death_date IS NOT NULL))
               UNION ALL
               SELECT s.external_id, s.patient_key FROM import_procedure s
               WHERE s.external_id = ANY(%s)
                 AND (EXISTS (SELECT FROM import_patient ip
                              WHERE ip.registry_id = s.patient_key AND ip.death_date IS NOT NULL)
                      OR EXISTS (SELECT FROM registry_patient pt
                                 WHERE pt.registry_id = s.patient_key AND pt.death_date IS NOT NULL))""",
            [list(keys)] * 2,
        )
        patient_of = dict(found)
        patients = self._patients({k for k in patient_of.values() if k})
        return {key: getattr(patients.get(patient_key), "death_date", None) for key, patient_key in patient_of.items()}

    @staticmethod
    def _merged(*found: dict[str, str]) -> dict[str, str]:
        """Return the errors of several rule functions, the first message of a field winning."""
        merged: dict[str, str] = {}
        for errors in found:
            for name, message in errors.items():
                merged.setdefault(name, message)
        return merged

    def _check_clinics(self, rows: list) -> None:
        for r in rows:
            # The clinic rules live in Clinic.clean(); an unsaved instance runs them without a query.
            try:
                Clinic(code=r.code or "", name=r.name or "", country=r.country or "", city=r.city).clean()
            except ValidationError as exc:
                for name, messages in exc.message_dict.items():
                    self._report(CLINICS, r, name, " ".join(messages))

    def _check_patients(self, rows: list) -> None:
        known = self._known_clinics({r.clinic_id for r in rows if r.clinic_id})
        for r in rows:
            if r.clinic_id and r.clinic_id not in known:
                self._report(PATIENTS, r, "clinic_code", f"Unknown clinic {r.clinic_id!r}.", unreadable=True)
            found = patient_errors(r)
            if found:
                self._report_rules(PATIENTS, r, found)

    def _check_procedures(self, rows: list) -> None:
        patients = self._patients({r.patient_key for r in rows if r.patient_key})
        known = self._known_clinics({r.clinic_id for r in rows if r.clinic_id})
        # A row already holds what the stored procedure keeps when the file leaves a column out
        # (stage.fill_left_out): the rules read the procedure as it will be.
        for r in rows:
            patient = patients.get(r.patient_key)
            if r.patient_key and patient is None:
                self._report(
                    PROCEDURES, r, "patient_registry_id", f"Unknown patient {r.patient_key!r}.", unreadable=True
                )
            if r.clinic_id is None and patient is not None:
                r.clinic_id = patient.clinic_id
            elif r.clinic_id and r.clinic_id not in known:
                self._report(PROCEDURES, r, "clinic_code", f"Unknown clinic {r.clinic_id!r}.", unreadable=True)
            # The procedure's own events and visits are held against it once all is staged.
            found = self._merged(procedure_errors(r), procedure_across_errors(r, patient=patient))
            if found:
                self._report_rules(PROCEDURES, r, found)

    def _check_visits(self, rows: list) -> None:
        keys = {r.procedure_key for r in rows if r.procedure_key}
        performed, died = self._performed_on(keys), self._death_dates(keys)
        for r in rows:
            if r.procedure_key and r.procedure_key not in performed:
                self._report(FOLLOW_UPS, r, "procedure_id", f"Unknown procedure {r.procedure_key!r}.", unreadable=True)
            performed_on = performed.get(r.procedure_key)
            if r.visit is not None and r.due_on is None and performed_on is not None:
                r.due_on = performed_on + timedelta(days=VISIT_SCHEDULE[r.visit][0])
            if r.visit is not None and r.due_on is not None:
                r.window_start, r.window_end = visit_window(r.visit, r.due_on)
            found = self._merged(
                visit_errors(r),
                visit_across_errors(r, performed_on=performed_on, death_date=died.get(r.procedure_key)),
            )
            if found:
                self._report_rules(FOLLOW_UPS, r, found)

    def _check_events(self, rows: list) -> None:
        procedure_keys = {r.procedure_key for r in rows if r.procedure_key}
        performed, died = self._performed_on(procedure_keys), self._death_dates(procedure_keys)
        for r in rows:
            if r.procedure_key and r.procedure_key not in performed:
                self._report(EVENTS, r, "procedure_id", f"Unknown procedure {r.procedure_key!r}.", unreadable=True)
            # The patient's enrolment is not looked up: allow_historical exempts imports from that rule.
            across = adverse_event_across_errors(
                r,
                performed_on=performed.get(r.procedure_key),
                death_date=died.get(r.procedure_key),
                allow_historical=True,
            )
            found = self._merged(adverse_event_errors(r), across)
            if found:
                self._report_rules(EVENTS, r, found)

    # --- across rows, once everything is staged ----------------------------------------------

    def check_across_rows(self) -> None:
        """Check what depends on rows read after the row itself: death dates and moved procedures."""
        stage.fill_moved(self.cursor)
        self._check_retracted()
        self._check_death_dates()
        self._check_stored_procedures_of_patients()
        self._check_moved_procedures()

    def _stream(self, sql: str, params=()):
        """Return the rows of ``sql`` in batches, fetched from a server-side cursor so none is held in full."""
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(_STREAM_ROWS):
                yield batch

    def _rows(self, sql: str, params=()):
        """Return the rows of ``sql`` one by one, streamed."""
        for batch in self._stream(sql, params):
            yield from batch

    def _check_retracted(self) -> None:
        """Refuse the rows that would change a retracted record, or add to or change what a retracted record holds.

        A retracted patient, procedure, visit or event is frozen, and so is what belongs to it
        (registry.services.refuse_if_retracted). A row that leaves its record as stored passes
        (write.py skips retracted records). Per file, one query starts from the retracted
        records (few) and follows them to the staged rows that name them; write.compared()
        then keeps the rows whose writing would create or change a stored row.
        """
        # Usually nothing is retracted: one pass over the registry's tables then skips every query below.
        self.cursor.execute(
            "SELECT " + ", ".join(f"EXISTS (SELECT FROM {t} WHERE retracted_at IS NOT NULL)" for t in _RETRACTABLE)  # noqa: S608 - constants
        )
        retracted = {t for t, found in zip(_RETRACTABLE, self.cursor.fetchone(), strict=True) if found}
        for name, (key, hits) in _RETRACTED_HITS.items():
            if not retracted & _RETRACTED_TABLES[name]:
                continue
            joins, changes = compared(name)
            on = " AND ".join(f"s.{k} = h.{k}" for k in key)
            for line, rank in self._rows(
                f"""WITH hit AS ({hits})
                    SELECT s.line, min(h.rank) FROM hit h JOIN {stage.table(name)} s ON {on} {joins}
                    WHERE {changes} GROUP BY s.line ORDER BY s.line"""  # noqa: S608 - constants
            ):
                column, broken, model = _RETRACTED_REPORT[name][rank]
                message = broken.message.format(kind=model._meta.verbose_name)
                self.errors.add(RowError(name, line, column, message))

    def _check_death_dates(self) -> None:
        """Hold each patient of the folder with a death or withdrawal date (given or stored) against its rows.

        Its rows are those after the import: the folder's, and the stored ones the folder does
        not name. What patient_across_errors() takes is aggregated per patient in one pass.
        """
        # A staged row holds the cause after the import (stage.fill_left_out: the stored one if the file has none).
        for line, death_date, withdrawn_on, death_cause, *facts in self._rows(
            """WITH pat AS (
                   SELECT ip.line, ip.registry_id, ip.death_date, ip.withdrawn_on, pt.id AS patient_id,
                          COALESCE(ip.death_cause, '') AS death_cause
                   FROM import_patient ip LEFT JOIN registry_patient pt ON pt.registry_id = ip.registry_id
                   WHERE ip.death_date IS NOT NULL OR ip.withdrawn_on IS NOT NULL OR pt.death_date IS NOT NULL
               ),
               proc AS (
                   SELECT s.external_id, s.patient_key AS registry_id, s.performed_on
                   FROM import_procedure s JOIN pat f ON f.registry_id = s.patient_key
                   UNION ALL
                   SELECT pr.external_id, f.registry_id, pr.performed_on
                   FROM pat f JOIN registry_procedure pr ON pr.patient_id = f.patient_id
                   WHERE NOT EXISTS (SELECT FROM import_procedure s WHERE s.external_id = pr.external_id)
               ),
               visit AS (
                   SELECT p.registry_id, s.completed_on
                   FROM proc p JOIN import_visit s ON s.procedure_key = p.external_id
                   WHERE s.from_file AND s.completed_on IS NOT NULL
                   UNION ALL
                   SELECT p.registry_id, v.completed_on FROM proc p
                   JOIN registry_procedure pr ON pr.external_id = p.external_id
                   JOIN registry_followupvisit v ON v.procedure_id = pr.id AND v.completed_on IS NOT NULL
                   WHERE NOT EXISTS (SELECT FROM import_visit s WHERE s.procedure_key = p.external_id
                                     AND s.visit = v.visit AND s.from_file)
               ),
               event AS (
                   SELECT p.registry_id, s.onset_on, s.outcome FROM proc p
                   JOIN import_event s ON s.procedure_key = p.external_id
                   WHERE NOT EXISTS (SELECT FROM events_adverseevent x
                                     WHERE x.external_id = s.external_id AND x.retracted_at IS NOT NULL)
                   UNION ALL
                   SELECT p.registry_id, e.onset_on, e.outcome FROM proc p
                   JOIN registry_procedure pr ON pr.external_id = p.external_id
                   JOIN events_adverseevent e ON e.procedure_id = pr.id AND e.retracted_at IS NULL
                   WHERE NOT EXISTS (SELECT FROM import_event s WHERE s.external_id = e.external_id)
               )
               -- One aggregate per patient and kind, joined once (a correlated subquery per patient
               -- would scan each materialised CTE again for every patient).
               SELECT f.line, f.death_date, f.withdrawn_on, f.death_cause,
                      pa.last_performed_on, va.last_completed_on, ea.last_onset_on,
                      COALESCE(ea.has_fatal_event, false)
               FROM pat f
               LEFT JOIN (SELECT registry_id, max(performed_on) AS last_performed_on FROM proc GROUP BY registry_id) pa
                 ON pa.registry_id = f.registry_id
               LEFT JOIN (SELECT registry_id, max(completed_on) AS last_completed_on FROM visit GROUP BY registry_id) va
                 ON va.registry_id = f.registry_id
               LEFT JOIN (SELECT registry_id, max(onset_on) AS last_onset_on,
                                 bool_or(outcome = 'fatal') AS has_fatal_event
                          FROM event GROUP BY registry_id) ea
                 ON ea.registry_id = f.registry_id
               ORDER BY f.line"""
        ):
            last_performed_on, last_completed_on, last_onset_on, has_fatal_event = facts
            found = patient_across_errors(
                _PatientDates(death_date, withdrawn_on, death_cause),
                last_performed_on=last_performed_on,
                last_completed_on=last_completed_on,
                last_onset_on=last_onset_on,
                has_fatal_event=has_fatal_event,
            )
            column_of = SPECS[PATIENTS].column_of
            for name, message in found.items():
                self.errors.add(RowError(PATIENTS, line, column_of.get(name, name), message))

    def _check_stored_procedures_of_patients(self) -> None:
        # The same rule that checks a procedure against its patient, read from the patient's side.
        for line, refused, clinic, birth_year, _death_date, *stored in self._rows(
            """SELECT ip.line, ip.refused, ip.clinic_code, ip.birth_year, ip.death_date,
                      pr.external_id, c.code, pr.performed_on, pr.cell_source, pr.cell_type, pr.processing,
                      pr.cell_dose_millions, pr.volume_ml
               FROM import_patient ip JOIN registry_patient pt ON pt.registry_id = ip.registry_id
               JOIN registry_procedure pr ON pr.patient_id = pt.id JOIN registry_clinic c ON c.id = pr.clinic_id
               WHERE NOT EXISTS (SELECT FROM import_procedure s WHERE s.external_id = pr.external_id)"""
        ):
            procedure = _StoredProcedure(*stored)
            found = procedure_across_errors(procedure, patient=_Patient(clinic, birth_year, None))
            prefix = f"Stored procedure {procedure.external_id}: "
            if "clinic" in found and "clinic_code" not in refused:
                self.errors.add(RowError(PATIENTS, line, "clinic_code", prefix + found["clinic"]))
            if found.get("performed_on") == PROCEDURE_BEFORE_BIRTH.message:
                self.errors.add(RowError(PATIENTS, line, "birth_year", prefix + found["performed_on"]))
            # A procedure after the death or withdrawal date is reported by _check_death_dates.

    def _check_moved_procedures(self) -> None:
        """Hold the stored events and completed visits the folder does not name against their procedure's new date."""
        moved = "FROM import_moved s {join} WHERE NOT EXISTS ({named})"
        events = moved.format(
            join="JOIN events_adverseevent x ON x.procedure_id = s.procedure_id AND x.retracted_at IS NULL",
            named="SELECT FROM import_event n WHERE n.external_id = x.external_id",
        )
        for batch in self._stream(f"SELECT s.line, s.performed_on, x.id {events} ORDER BY s.line, x.external_id"):
            # The rule reads the stored event itself, a batch of them at a time.
            stored = AdverseEvent.objects.in_bulk([pk for _line, _date, pk in batch])
            for line, performed_on, pk in batch:
                event = stored[pk]
                found = adverse_event_across_errors(
                    event, performed_on=performed_on, death_date=None, allow_historical=True
                )
                if "onset_on" in found:
                    message = f"Stored adverse event {event.external_id}: {found['onset_on']}"
                    self.errors.add(RowError(PROCEDURES, line, "performed_on", message))
        # Open visits are not checked: they move with the procedure (write.py reschedules them).
        visits = moved.format(
            join="JOIN registry_followupvisit x ON x.procedure_id = s.procedure_id AND x.completed_on IS NOT NULL",
            named="SELECT FROM import_visit n WHERE n.procedure_key = s.external_id AND n.visit = x.visit",
        )
        for batch in self._stream(f"SELECT s.line, s.performed_on, x.id {visits} ORDER BY s.line, x.due_on"):
            stored = FollowUpVisit.objects.in_bulk([pk for _line, _date, pk in batch])
            for line, performed_on, pk in batch:
                visit = stored[pk]
                found = visit_across_errors(visit, performed_on=performed_on, death_date=None)
                if "completed_on" in found:
                    message = f"Stored follow-up visit {visit.visit}: {found['completed_on']}"
                    self.errors.add(RowError(PROCEDURES, line, "performed_on", message))
