"""Return the import plan after holding every parsed row against the registry's rules.

A row is checked as the admin would check it, through the same rule functions
(registry.rules, events.rules), against the state the registry will be in after
the import: rows of the folder replace the stored rows they name, stored rows
the folder does not name stay. The stored state comes from a handful of bulk
queries (load_stored); nothing here queries per row or writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection

from events.choices import SERIOUS_CRITERIA
from events.models import AdverseEvent
from events.rules import adverse_event_errors
from registry.choices import VISIT_SCHEDULE, visit_window
from registry.importer.errors import RowError
from registry.importer.read import (
    CLINICS,
    EVENTS,
    FOLLOW_UPS,
    PATIENTS,
    PROCEDURES,
    SPECS,
    Parsed,
    VisitRow,
)
from registry.models import Clinic, FollowUpVisit
from registry.rules import MSG, patient_errors, procedure_errors, visit_errors

# The event columns a retracted event may not change (it can only be re-imported unchanged).
_EVENT_VALUES = ("procedure_key", "category", "term", "onset_on", "grade", "serious", *SERIOUS_CRITERIA.values())
_EVENT_VALUES += ("outcome", "resolved_on", "causality_procedure")


@dataclass(slots=True)
class StoredPatient:
    pk: int
    registry_id: str
    clinic_id: str  # the clinic's code, as on parsed rows
    birth_year: int
    enrolled_on: dt.date
    death_date: dt.date | None


@dataclass(slots=True)
class StoredProcedure:
    pk: int
    external_id: str
    patient_key: str
    clinic_id: str  # the clinic's code, as on parsed rows
    performed_on: dt.date
    cell_source: str
    cell_type: str
    processing: str
    cell_dose_millions: Decimal | None
    volume_ml: Decimal | None


@dataclass
class Stored:
    """The stored rows the folder refers to or replaces."""

    clinic_codes: set[str] = field(default_factory=set)
    patients: dict[str, StoredPatient] = field(default_factory=dict)
    procedures: dict[str, StoredProcedure] = field(default_factory=dict)
    retracted: dict[str, tuple] = field(default_factory=dict)  # event id -> _EVENT_VALUES


@dataclass
class Plan:
    """What the writer applies: the folder's rows plus what the registry's own logic adds."""

    clinics: list = field(default_factory=list)
    patients: list = field(default_factory=list)
    procedures: list = field(default_factory=list)
    visits: list = field(default_factory=list)
    events: list = field(default_factory=list)
    # Procedures that get the full schedule: the folder's and those its follow-ups name.
    scheduled: set[str] = field(default_factory=set)
    # Open stored visits of procedures whose date moved, due again from the new date.
    rescheduled: list[VisitRow] = field(default_factory=list)
    # registry_id -> stored death date to keep until the patient's procedures have moved (see write.py).
    deferred_deaths: dict[str, dt.date | None] = field(default_factory=dict)


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def load_stored(*, parsed: Parsed) -> Stored:
    """Return the stored rows ``parsed`` names, replaces or depends on, in four queries."""
    rows = parsed.rows
    stored = Stored(clinic_codes=set(Clinic.objects.values_list("code", flat=True)))
    procedure_keys = {r.external_id for r in rows[PROCEDURES]}
    procedure_keys |= {r.procedure_key for r in rows[FOLLOW_UPS]} | {r.procedure_key for r in rows[EVENTS]}
    patient_keys = [r.registry_id for r in rows[PATIENTS] if r.registry_id]
    # Procedures named by the folder, and every procedure of the folder's patients (their
    # death date, birth year and clinic must still fit them).
    for values in _fetch(
        """SELECT pr.id, pr.external_id, pt.registry_id, c.code, pr.performed_on, pr.cell_source, pr.cell_type,
                  pr.processing, pr.cell_dose_millions, pr.volume_ml
           FROM registry_procedure pr JOIN registry_patient pt ON pt.id = pr.patient_id
           JOIN registry_clinic c ON c.id = pr.clinic_id
           WHERE pr.external_id = ANY(%s) OR pt.registry_id = ANY(%s)""",
        [[k for k in procedure_keys if k], patient_keys],
    ):
        procedure = StoredProcedure(*values)
        stored.procedures[procedure.external_id] = procedure
    patient_keys += [r.patient_key for r in rows[PROCEDURES] if r.patient_key]
    patient_keys += [p.patient_key for p in stored.procedures.values()]
    for values in _fetch(
        """SELECT p.id, p.registry_id, c.code, p.birth_year, p.enrolled_on, p.death_date
           FROM registry_patient p JOIN registry_clinic c ON c.id = p.clinic_id WHERE p.registry_id = ANY(%s)""",
        [list(set(patient_keys))],
    ):
        stored.patients[values[1]] = StoredPatient(*values)
    event_keys = [r.external_id for r in rows[EVENTS] if r.external_id]
    for values in _fetch(
        f"""SELECT e.external_id, pr.external_id, {", ".join("e." + f for f in _EVENT_VALUES[1:])}
            FROM events_adverseevent e JOIN registry_procedure pr ON pr.id = e.procedure_id
            WHERE e.retracted_at IS NOT NULL AND e.external_id = ANY(%s)""",  # noqa: S608 - column names are constants
        [event_keys],
    ):
        stored.retracted[values[0]] = values[1:]
    return stored


class _Errors:
    """Collects errors; a cell that could not be read (or names nothing) is not also blamed by a rule."""

    def __init__(self, errors: list[RowError]):
        self.list = list(errors)
        self._unreadable = {(e.file, e.line, e.column) for e in errors}
        self._seen: set[tuple] = set()

    def add(self, file: str, line: int, column: str, message: str, *, unreadable: bool = False) -> None:
        cell = (file, line, column)
        if cell in self._unreadable or (cell, message) in self._seen:
            return
        self._seen.add((cell, message))
        if unreadable:
            self._unreadable.add(cell)
        self.list.append(RowError(file, line, column, message))

    def add_rules(self, file: str, line: int, found: dict[str, str], prefix: str = "") -> None:
        column_of = SPECS[file].column_of
        for name, message in found.items():
            self.add(file, line, column_of.get(name, f"{name} (stored value)"), prefix + message)


def check(*, parsed: Parsed, stored: Stored) -> tuple[Plan, list[RowError]]:
    """Return the plan and every error of the folder; the plan is only to be written when there is none."""
    rows = parsed.rows
    errors = _Errors(parsed.errors)
    plan = Plan(
        clinics=rows[CLINICS],
        patients=rows[PATIENTS],
        procedures=rows[PROCEDURES],
        visits=rows[FOLLOW_UPS],
        events=rows[EVENTS],
    )
    clinic_codes = stored.clinic_codes | {r.code for r in rows[CLINICS] if r.code}
    for r in rows[CLINICS]:
        # The clinic rules live in Clinic.clean(); an unsaved instance runs them without a query.
        try:
            Clinic(code=r.code or "", name=r.name or "", country=r.country or "", city=r.city).clean()
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                errors.add(CLINICS, r.line, name, " ".join(messages))

    patients = {r.registry_id: r for r in rows[PATIENTS] if r.registry_id}
    for r in rows[PATIENTS]:
        if r.clinic_id and r.clinic_id not in clinic_codes:
            errors.add(PATIENTS, r.line, "clinic_code", f"Unknown clinic {r.clinic_id!r}.", unreadable=True)
        found = patient_errors(r)
        if found:
            errors.add_rules(PATIENTS, r.line, found)

    procedures = {r.external_id: r for r in rows[PROCEDURES] if r.external_id}
    moved = []
    for r in rows[PROCEDURES]:
        patient = patients.get(r.patient_key) or stored.patients.get(r.patient_key)
        if r.patient_key and patient is None:
            errors.add(
                PROCEDURES, r.line, "patient_registry_id", f"Unknown patient {r.patient_key!r}.", unreadable=True
            )
        if r.clinic_id is None and patient is not None:
            r.clinic_id = patient.clinic_id
        elif r.clinic_id and r.clinic_id not in clinic_codes:
            errors.add(PROCEDURES, r.line, "clinic_code", f"Unknown clinic {r.clinic_id!r}.", unreadable=True)
        old = stored.procedures.get(r.external_id)
        if old is not None:
            r.processing, r.volume_ml = old.processing, old.volume_ml
            if r.performed_on is not None and r.performed_on != old.performed_on:
                moved.append((r, old))
        found = procedure_errors(r, patient=patient)
        if found:
            errors.add_rules(PROCEDURES, r.line, found)

    _check_patients_against_procedures(patients, procedures, stored, plan, errors)
    _check_moved_procedures(moved, rows, plan, errors)

    def procedure_of(key):
        return procedures.get(key) or stored.procedures.get(key)

    for r in rows[FOLLOW_UPS]:
        procedure = procedure_of(r.procedure_key)
        if r.procedure_key and procedure is None:
            errors.add(FOLLOW_UPS, r.line, "procedure_id", f"Unknown procedure {r.procedure_key!r}.", unreadable=True)
        performed_on = procedure.performed_on if procedure is not None else None
        if r.visit is not None and r.due_on is None and performed_on is not None:
            r.due_on = performed_on + timedelta(days=VISIT_SCHEDULE[r.visit][0])
        if r.visit is not None and r.due_on is not None:
            r.window_start, r.window_end = visit_window(r.visit, r.due_on)
        found = visit_errors(r, performed_on=performed_on)
        if found:
            errors.add_rules(FOLLOW_UPS, r.line, found)
        if r.procedure_key:
            plan.scheduled.add(r.procedure_key)
    plan.scheduled |= procedures.keys()

    for r in rows[EVENTS]:
        procedure = procedure_of(r.procedure_key)
        if r.procedure_key and procedure is None:
            errors.add(EVENTS, r.line, "procedure_id", f"Unknown procedure {r.procedure_key!r}.", unreadable=True)
        patient = None
        if procedure is not None:
            patient = patients.get(procedure.patient_key) or stored.patients.get(procedure.patient_key)
        found = adverse_event_errors(
            r,
            performed_on=procedure.performed_on if procedure is not None else None,
            enrolled_on=patient.enrolled_on if patient is not None else None,
            allow_historical=True,  # migrating clinics load events from before their patients' enrolment
        )
        if found:
            errors.add_rules(EVENTS, r.line, found)
        kept = stored.retracted.get(r.external_id)
        if kept is not None and kept != tuple(getattr(r, name) for name in _EVENT_VALUES):
            errors.add(EVENTS, r.line, "event_id", "A retracted adverse event cannot be edited.")
    return plan, errors.list


def _check_patients_against_procedures(patients, procedures, stored: Stored, plan: Plan, errors: _Errors) -> None:
    """Hold each patient of the folder against all of its procedures, the folder's and the stored ones."""
    latest: dict[str, dt.date] = {}
    for r in procedures.values():
        if r.patient_key in patients and r.performed_on is not None:
            latest[r.patient_key] = max(r.performed_on, latest.get(r.patient_key, r.performed_on))
    latest_stored: dict[str, dt.date] = {}
    for p in stored.procedures.values():
        latest_stored[p.patient_key] = max(p.performed_on, latest_stored.get(p.patient_key, p.performed_on))
        patient = patients.get(p.patient_key)
        if patient is None or p.external_id in procedures:
            continue  # not the folder's patient, or the folder's row for it is checked instead
        latest[p.patient_key] = max(p.performed_on, latest.get(p.patient_key, p.performed_on))
        # The same rule that checks a procedure against its patient, read from the patient's side.
        found = procedure_errors(p, patient=patient)
        prefix = f"Stored procedure {p.external_id}: "
        if "clinic" in found:
            errors.add(PATIENTS, patient.line, "clinic_code", prefix + found["clinic"])
        if found.get("performed_on") == MSG["procedure_before_birth"]:
            errors.add(PATIENTS, patient.line, "birth_year", prefix + found["performed_on"])
        # A procedure after the death date is reported below with the folder's own procedures.
    for key, r in patients.items():
        if r.death_date is not None and key in latest and latest[key] > r.death_date:
            errors.add(PATIENTS, r.line, "death_date", MSG["death_before_procedure"].format(date=latest[key]))
        old = stored.patients.get(key)
        # The database refuses a death date before a procedure as it stands at that moment,
        # so a death date that is only valid once procedures have moved is written last.
        if old is not None and r.death_date is not None and latest_stored.get(key, r.death_date) > r.death_date:
            plan.deferred_deaths[key] = old.death_date


def _check_moved_procedures(moved: list, rows: dict, plan: Plan, errors: _Errors) -> None:
    """Hold the stored events and visits the folder does not name against their procedure's new date."""
    if not moved:
        return
    by_pk = {old.pk: r for r, old in moved}
    named_events = {r.external_id for r in rows[EVENTS]}
    named_visits = {(r.procedure_key, r.visit) for r in rows[FOLLOW_UPS]}
    for event in AdverseEvent.objects.filter(procedure_id__in=list(by_pk)):
        if event.external_id in named_events:
            continue  # its row in the folder is checked instead
        r = by_pk[event.procedure_id]
        found = adverse_event_errors(event, performed_on=r.performed_on, allow_historical=True)
        if "onset_on" in found:
            prefix = f"Stored adverse event {event.external_id}: "
            errors.add_rules(PROCEDURES, r.line, {"performed_on": found["onset_on"]}, prefix)
    for visit in FollowUpVisit.objects.filter(procedure_id__in=list(by_pk)):
        r = by_pk[visit.procedure_id]
        if (r.external_id, visit.visit) in named_visits:
            continue
        if visit.completed_on is None:
            # As services.procedure_save does: open visits follow the procedure's date.
            due = r.performed_on + timedelta(days=VISIT_SCHEDULE[visit.visit][0])
            start, end = visit_window(visit.visit, due)
            plan.rescheduled.append(VisitRow(0, r.external_id, visit.visit, due, None, start, end))
            continue
        found = visit_errors(visit, performed_on=r.performed_on)
        if "completed_on" in found:
            prefix = f"Stored follow-up visit {visit.visit}: "
            errors.add_rules(PROCEDURES, r.line, {"performed_on": found["completed_on"]}, prefix)
