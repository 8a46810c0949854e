"""Return the validation errors of registry records, field by field: the one statement of each rule.

Every rule is declared once here, in the catalogue of core.rules (code, field, message):
- Rules over a row's own fields: patient_errors(), procedure_errors(), visit_errors().
  Model.clean() calls them (no query) and a CheckConstraint named after the rule's code
  makes the state unstorable.
- Rules across rows: patient_across_errors(), procedure_across_errors(),
  visit_across_errors(), pure functions given the related values they need. The
  services gather those values (registry.services) and the importer computes them
  set-wise (intake.importer.check); a trigger raising the rule's code is the backstop.
What a rule needs from an app above the registry (an adverse event's onset, a fatal
outcome) comes through the extension points at the end: the registry never imports it.
"""

from __future__ import annotations

import datetime as dt

from django.dispatch import Signal

from core.dates import today
from core.rules import add, rule
from registry.choices import (
    ALLOGENEIC_ONLY_CELL_TYPES,
    CellSource,
    CellType,
    Processing,
)

MIN_BIRTH_YEAR = 1900
MAX_AGE_YEARS = 120
EXPANDED_CELL_TYPES = (CellType.BM_MSC_EXPANDED, CellType.ADIPOSE_MSC_EXPANDED)

# --- the catalogue: a row's own fields (CheckConstraints of the same name) --------------------
NOT_IN_FUTURE = rule("date_not_in_future", "", "Date cannot be in the future.")  # today moves: no constraint
BIRTH_YEAR_RANGE = rule(
    "patient_birth_year_plausible",
    "birth_year",
    f"Birth year must be {MIN_BIRTH_YEAR} or later and not after the enrolment year.",
)
BIRTH_YEAR_AGE = rule(
    "patient_age_plausible", "birth_year", f"Birth year makes the patient older than {MAX_AGE_YEARS} at enrolment."
)
WITHDRAWN_BEFORE_ENROLLED = rule(
    "patient_withdrawn_after_enrolled", "withdrawn_on", "Withdrawal date cannot be before the enrolment date."
)
DEATH_BEFORE_BIRTH = rule("patient_death_after_birth", "death_date", "Death date cannot be before the birth year.")
DEATH_BEFORE_ENROLLED = rule(
    "patient_death_not_before_enrolment", "death_date", "Death date cannot be before the enrolment date."
)
DOSE_POSITIVE = rule("procedure_dose_positive", "cell_dose_millions", "Cell dose must be greater than zero.")
VOLUME_POSITIVE = rule("procedure_volume_positive", "volume_ml", "Volume must be greater than zero.")
ALLOGENEIC_ONLY = rule(
    "procedure_donor_cells_allogeneic",
    "cell_source",
    "This cell type comes from a donor: cell source must be allogeneic.",
)
EXPANDED_PROCESSING = rule(
    "procedure_expanded_processing", "processing", "Culture-expanded cell types must have culture-expanded processing."
)
WINDOW_ORDER = rule(
    "visit_window_ordered", "due_on", "Visit window must satisfy window start <= due date <= window end."
)

# --- the catalogue: across rows (triggers raising the same code) -----------------------------
CLINIC_KEEPS_PROCEDURES = rule(
    "patient_clinic_keeps_procedures", "clinic", "A patient with procedures cannot move to another clinic."
)
DEATH_BEFORE_PROCEDURE = rule(
    "patient_death_not_before_procedures",
    "death_date",
    "Death date cannot be before a procedure of this patient.",
    "performed on {date}",
)
DEATH_BEFORE_VISIT = rule(
    "patient_death_not_before_visits",
    "death_date",
    "Death date cannot be before a completed follow-up visit of this patient.",
    "completed on {date}",
)
DEATH_BEFORE_ONSET = rule(
    "patient_death_not_before_events",
    "death_date",
    "Death date cannot be before the onset of an adverse event of this patient.",
    "onset on {date}",
)
DEATH_KEPT_FOR_FATAL_EVENT = rule(
    "patient_death_kept_for_fatal_events",
    "death_date",
    "The death date cannot be removed while an adverse event of this patient has the outcome 'fatal'.",
)
# No database backstop: a check at commit would make the usual two steps (death date with its
# cause, or death date first and the fatal event next) impossible to enter one at a time.
DEATH_NEEDS_CAUSE = rule(
    "patient_death_needs_fatal_event_or_cause",
    "death_date",
    "A death date needs a fatal adverse event of this patient or a recorded cause of death.",
)
WITHDRAWN_BEFORE_PROCEDURE = rule(
    "patient_withdrawal_not_before_procedures",
    "withdrawn_on",
    "Withdrawal date cannot be before a procedure of this patient.",
    "performed on {date}",
)
CLINIC_MISMATCH = rule(
    "procedure_clinic_matches_patient", "clinic", "The procedure's clinic must be the patient's clinic."
)
PROCEDURE_AFTER_DEATH = rule(
    "procedure_not_after_death", "performed_on", "Procedure date cannot be after the patient's death date.", "{date}"
)
PROCEDURE_AFTER_WITHDRAWAL = rule(
    "procedure_not_after_withdrawal",
    "performed_on",
    "Procedure date cannot be after the patient's withdrawal date.",
    "{date}",
)
PROCEDURE_BEFORE_BIRTH = rule(
    "procedure_not_before_birth", "performed_on", "Procedure date cannot be before the patient's birth year."
)
PROCEDURE_AFTER_ONSET = rule(
    "procedure_not_after_its_events",
    "performed_on",
    "Procedure date cannot be after the onset of an adverse event of this procedure.",
    "onset on {date}",
)
PROCEDURE_AFTER_VISIT = rule(
    "procedure_not_after_its_visits",
    "performed_on",
    "Procedure date cannot be after a completed follow-up visit of this procedure.",
    "completed on {date}",
)
COMPLETED_BEFORE_PROCEDURE = rule(
    "visit_completed_not_before_procedure", "completed_on", "A visit cannot be completed before the procedure date."
)
COMPLETED_AFTER_DEATH = rule(
    "visit_completed_not_after_death",
    "completed_on",
    "A visit cannot be completed after the patient's death date.",
    "{date}",
)

# --- the catalogue: retraction and contact attempts (the services and the importer; no backstop) -----
# A retracted row is kept exactly as it was for the audit, and nothing is added under it. "{kind}" is
# the model's verbose name ("patient", "procedure", "follow-up visit", "adverse event").
RETRACTED_FROZEN = rule("retracted_row_frozen", "", "This {kind} is retracted and can no longer be edited.")
PARENT_RETRACTED = rule(
    "retracted_parent_frozen",
    "",
    "The {kind} this record belongs to is retracted: nothing can be added to it or changed in it.",
)
ATTEMPT_BEFORE_PROCEDURE = rule(
    "contact_attempt_not_before_procedure", "attempted_on", "A contact attempt cannot be before the procedure date."
)

# --- a row's own fields --------------------------------------------------------------------------


def patient_errors(p) -> dict[str, str]:
    """Return {field: message} for a patient's own fields."""
    errors: dict[str, str] = {}
    if p.birth_year is not None and p.enrolled_on is not None:
        if p.birth_year < MIN_BIRTH_YEAR or p.birth_year > p.enrolled_on.year:
            add(errors, BIRTH_YEAR_RANGE)
        elif p.enrolled_on.year - p.birth_year > MAX_AGE_YEARS:
            add(errors, BIRTH_YEAR_AGE)
    for field in ("enrolled_on", "consent_on", "withdrawn_on", "death_date"):
        value = getattr(p, field, None)
        if value is not None and value > today():
            add(errors, NOT_IN_FUTURE, field)
    if p.withdrawn_on and p.enrolled_on and p.withdrawn_on < p.enrolled_on:
        add(errors, WITHDRAWN_BEFORE_ENROLLED)
    if p.death_date and p.birth_year and p.death_date.year < p.birth_year:
        add(errors, DEATH_BEFORE_BIRTH)
    if p.death_date and p.enrolled_on and p.death_date < p.enrolled_on:
        add(errors, DEATH_BEFORE_ENROLLED)
    return errors


def procedure_errors(proc) -> dict[str, str]:
    """Return {field: message} for a procedure's own fields."""
    errors: dict[str, str] = {}
    if proc.performed_on is not None and proc.performed_on > today():
        add(errors, NOT_IN_FUTURE, "performed_on")
    if proc.cell_dose_millions is not None and proc.cell_dose_millions <= 0:
        add(errors, DOSE_POSITIVE)
    if getattr(proc, "volume_ml", None) is not None and proc.volume_ml <= 0:
        add(errors, VOLUME_POSITIVE)
    if proc.cell_type in ALLOGENEIC_ONLY_CELL_TYPES and proc.cell_source != CellSource.ALLOGENEIC:
        add(errors, ALLOGENEIC_ONLY)
    if proc.cell_type in EXPANDED_CELL_TYPES and proc.processing == Processing.MINIMALLY_MANIPULATED:
        add(errors, EXPANDED_PROCESSING)
    return errors


def visit_errors(visit) -> dict[str, str]:
    """Return {field: message} for a follow-up visit's own fields."""
    errors: dict[str, str] = {}
    if None not in (visit.window_start, visit.due_on, visit.window_end) and not (
        visit.window_start <= visit.due_on <= visit.window_end
    ):
        add(errors, WINDOW_ORDER)
    if visit.completed_on is not None and visit.completed_on > today():
        add(errors, NOT_IN_FUTURE, "completed_on")
    return errors


# --- across rows: each function takes the row and the related values it needs ------------------


def patient_across_errors(
    p,
    *,
    moves_clinic_with_procedures: bool = False,
    last_performed_on: dt.date | None = None,
    last_completed_on: dt.date | None = None,
    last_onset_on: dt.date | None = None,
    has_fatal_event: bool = False,
) -> dict[str, str]:
    """Return {field: message} for a patient held against its procedures, visits and adverse events.

    ``last_*`` are the latest procedure date, completed visit and (non-retracted) onset of the
    patient's rows; ``has_fatal_event``: one of its non-retracted events has the outcome fatal.
    """
    errors: dict[str, str] = {}
    if moves_clinic_with_procedures:
        add(errors, CLINIC_KEEPS_PROCEDURES)
    death = p.death_date
    if death is not None:
        if last_performed_on is not None and last_performed_on > death:
            add(errors, DEATH_BEFORE_PROCEDURE, date=last_performed_on)
        if last_completed_on is not None and last_completed_on > death:
            add(errors, DEATH_BEFORE_VISIT, date=last_completed_on)
        if last_onset_on is not None and last_onset_on > death:
            add(errors, DEATH_BEFORE_ONSET, date=last_onset_on)
        if not has_fatal_event and not (getattr(p, "death_cause", "") or "").strip():
            add(errors, DEATH_NEEDS_CAUSE)
    elif has_fatal_event:
        add(errors, DEATH_KEPT_FOR_FATAL_EVENT)
    if p.withdrawn_on is not None and last_performed_on is not None and last_performed_on > p.withdrawn_on:
        add(errors, WITHDRAWN_BEFORE_PROCEDURE, date=last_performed_on)
    return errors


def procedure_across_errors(
    proc, *, patient, first_onset_on: dt.date | None = None, first_completed_on: dt.date | None = None
) -> dict[str, str]:
    """Return {field: message} for a procedure held against its patient, its events and its visits.

    ``patient`` reads clinic_id, birth_year, death_date and withdrawn_on. ``first_onset_on`` and
    ``first_completed_on`` are the earliest onset and completed visit of the stored procedure.
    """
    errors: dict[str, str] = {}
    if patient is not None and proc.clinic_id is not None and patient.clinic_id != proc.clinic_id:
        add(errors, CLINIC_MISMATCH)
    performed = proc.performed_on
    if performed is None:
        return errors
    if patient is not None:
        if patient.death_date is not None and performed > patient.death_date:
            add(errors, PROCEDURE_AFTER_DEATH, date=patient.death_date)
        if patient.withdrawn_on is not None and performed > patient.withdrawn_on:
            add(errors, PROCEDURE_AFTER_WITHDRAWAL, date=patient.withdrawn_on)
        if patient.birth_year is not None and performed.year < patient.birth_year:
            add(errors, PROCEDURE_BEFORE_BIRTH)
    if first_onset_on is not None and first_onset_on < performed:
        add(errors, PROCEDURE_AFTER_ONSET, date=first_onset_on)
    if first_completed_on is not None and first_completed_on < performed:
        add(errors, PROCEDURE_AFTER_VISIT, date=first_completed_on)
    return errors


def visit_across_errors(visit, *, performed_on: dt.date | None, death_date: dt.date | None) -> dict[str, str]:
    """Return {field: message} for a follow-up visit held against its procedure's date and its patient's death."""
    errors: dict[str, str] = {}
    if visit.completed_on is not None:
        if performed_on is not None and visit.completed_on < performed_on:
            add(errors, COMPLETED_BEFORE_PROCEDURE)
        if death_date is not None and visit.completed_on > death_date:
            add(errors, COMPLETED_AFTER_DEATH, date=death_date)
    return errors


# --- extension points: facts from the apps above the registry ----------------------------------
# registry.services sends these before saving; each receiver (events connects one in its
# AppConfig.ready) returns a dict of keyword arguments for patient_across_errors() or
# procedure_across_errors(): the events' onsets and fatal outcomes the registry cannot query.
patient_facts = Signal()  # send(sender=Patient, patient=...) -> {"last_onset_on": ..., "has_fatal_event": ...}
procedure_facts = Signal()  # send(sender=Procedure, procedure=...) -> {"first_onset_on": ...}


def facts_from(signal: Signal, sender, **kwargs) -> dict:
    """Return the facts every receiver of ``signal`` contributes, merged (later receivers win)."""
    merged: dict = {}
    for _receiver, facts in signal.send(sender=sender, **kwargs):
        merged.update(facts or {})
    return merged
