"""Return the validation errors of registry records, field by field.

These functions are the single statement of the data-entry rules. Model.clean()
calls them (so the admin and the API show field-level messages) and the CSV
importer calls them on every row (so an import bypasses nothing). The database
CheckConstraints in models.py repeat the single-row rules so that a write that
skips Python (a bulk UPDATE, raw SQL) still cannot store an illegal state.
"""

from __future__ import annotations

import datetime as dt

from core.dates import today
from registry.choices import (
    ALLOGENEIC_ONLY_CELL_TYPES,
    CellSource,
    CellType,
    Processing,
)

MIN_BIRTH_YEAR = 1900
MAX_AGE_YEARS = 120
EXPANDED_CELL_TYPES = (CellType.BM_MSC_EXPANDED, CellType.ADIPOSE_MSC_EXPANDED)

MSG = {
    "birth_year_range": f"Birth year must be {MIN_BIRTH_YEAR} or later and not after the enrolment year.",
    "birth_year_age": f"Birth year makes the patient older than {MAX_AGE_YEARS} at enrolment.",
    "withdrawn_before_enrolled": "Withdrawal date cannot be before the enrolment date.",
    "death_before_enrolled_birth": "Death date cannot be before the birth year.",
    "future": "Date cannot be in the future.",
    "death_before_procedure": "Death date cannot be before a procedure of this patient (performed on {date}).",
    "procedure_after_death": "Procedure date cannot be after the patient's death date ({date}).",
    "procedure_before_birth": "Procedure date cannot be before the patient's birth year.",
    "clinic_mismatch": "The procedure's clinic must be the patient's clinic.",
    "dose_positive": "Cell dose must be greater than zero.",
    "volume_positive": "Volume must be greater than zero.",
    "allogeneic_only": "This cell type comes from a donor: cell source must be allogeneic.",
    "expanded_processing": "Culture-expanded cell types must have culture-expanded processing.",
    "window_order": "Visit window must satisfy window start <= due date <= window end.",
    "completed_before_procedure": "A visit cannot be completed before the procedure date.",
}


def patient_errors(p) -> dict[str, str]:
    """Return {field: message} for a patient's own fields."""
    errors: dict[str, str] = {}
    if p.birth_year is not None and p.enrolled_on is not None:
        if p.birth_year < MIN_BIRTH_YEAR or p.birth_year > p.enrolled_on.year:
            errors["birth_year"] = MSG["birth_year_range"]
        elif p.enrolled_on.year - p.birth_year > MAX_AGE_YEARS:
            errors["birth_year"] = MSG["birth_year_age"]
    for field in ("enrolled_on", "consent_on", "withdrawn_on", "death_date"):
        value = getattr(p, field, None)
        if value is not None and value > today():
            errors[field] = MSG["future"]
    if p.withdrawn_on and p.enrolled_on and p.withdrawn_on < p.enrolled_on and "withdrawn_on" not in errors:
        errors["withdrawn_on"] = MSG["withdrawn_before_enrolled"]
    if p.death_date and p.birth_year and p.death_date.year < p.birth_year and "death_date" not in errors:
        errors["death_date"] = MSG["death_before_enrolled_birth"]
    return errors


def procedure_errors(proc, *, patient=None) -> dict[str, str]:
    """Return {field: message} for a procedure, checked against its patient when given."""
    errors: dict[str, str] = {}
    if proc.performed_on is not None and proc.performed_on > today():
        errors["performed_on"] = MSG["future"]
    if proc.cell_dose_millions is not None and proc.cell_dose_millions <= 0:
        errors["cell_dose_millions"] = MSG["dose_positive"]
    if getattr(proc, "volume_ml", None) is not None and proc.volume_ml <= 0:
        errors["volume_ml"] = MSG["volume_positive"]
    if proc.cell_type in ALLOGENEIC_ONLY_CELL_TYPES and proc.cell_source != CellSource.ALLOGENEIC:
        errors["cell_source"] = MSG["allogeneic_only"]
    if proc.cell_type in EXPANDED_CELL_TYPES and proc.processing == Processing.MINIMALLY_MANIPULATED:
        errors["processing"] = MSG["expanded_processing"]
    if patient is not None:
        if proc.clinic_id is not None and patient.clinic_id != proc.clinic_id:
            errors["clinic"] = MSG["clinic_mismatch"]
        if proc.performed_on is not None and "performed_on" not in errors:
            if patient.death_date is not None and proc.performed_on > patient.death_date:
                errors["performed_on"] = MSG["procedure_after_death"].format(date=patient.death_date)
            elif patient.birth_year is not None and proc.performed_on.year < patient.birth_year:
                errors["performed_on"] = MSG["procedure_before_birth"]
    return errors


def visit_errors(visit, *, performed_on: dt.date | None) -> dict[str, str]:
    """Return {field: message} for a follow-up visit of a procedure performed on ``performed_on``."""
    errors: dict[str, str] = {}
    if None not in (visit.window_start, visit.due_on, visit.window_end) and not (
        visit.window_start <= visit.due_on <= visit.window_end
    ):
        errors["due_on"] = MSG["window_order"]
    if visit.completed_on is not None:
        if visit.completed_on > today():
            errors["completed_on"] = MSG["future"]
        elif performed_on is not None and visit.completed_on < performed_on:
            errors["completed_on"] = MSG["completed_before_procedure"]
    return errors
