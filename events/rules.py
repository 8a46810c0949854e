"""Return the validation errors of an adverse event, field by field.

Model.clean() (admin, API) and the CSV importer both call adverse_event_errors();
the CheckConstraints on the model restate the single-row rules in the database.
"""

from __future__ import annotations

import datetime as dt

from core.dates import today
from events.choices import SERIOUS_CRITERIA, Outcome

MSG = {
    "grade": "CTCAE grade must be 1, 2, 3, 4 or 5.",
    "onset_future": "Onset date cannot be in the future.",
    "onset_before_procedure": "Onset date cannot be before the procedure date ({date}).",
    "onset_before_enrolment": (
        "Onset date is before the patient's enrolment ({date}); historical events are loaded by import."
    ),
    "resolved_before_onset": "Resolution date cannot be before the onset date.",
    "resolved_future": "Resolution date cannot be in the future.",
    "serious_without_criterion": "A serious event needs at least one seriousness criterion.",
    "criterion_without_serious": "An event meeting a seriousness criterion must be marked serious.",
    "fatal_needs_grade_5": "A fatal outcome needs CTCAE grade 5 or the 'results in death' criterion.",
    "grade_5_needs_fatal": "CTCAE grade 5 (death) requires the outcome 'fatal'.",
    "death_needs_fatal": "The 'results in death' criterion requires the outcome 'fatal'.",
    "retraction_reason": "A retraction needs a reason.",
}


def adverse_event_errors(
    ae, *, performed_on: dt.date | None, enrolled_on: dt.date | None = None, allow_historical: bool = False
) -> dict[str, str]:
    """Return {field: message} for an adverse event of a procedure performed on ``performed_on``.

    Interactive entry (admin, API) records events prospectively: an onset before the
    patient's enrolment in the registry is refused. ``allow_historical`` is the
    importer's only exemption, for clinics migrating years of spreadsheets whose
    patients were enrolled after their procedures.
    """
    errors: dict[str, str] = {}
    if ae.grade is not None and ae.grade not in (1, 2, 3, 4, 5):
        errors["grade"] = MSG["grade"]
    if ae.onset_on is not None:
        if ae.onset_on > today():
            errors["onset_on"] = MSG["onset_future"]
        elif performed_on is not None and ae.onset_on < performed_on:
            errors["onset_on"] = MSG["onset_before_procedure"].format(date=performed_on)
        elif not allow_historical and enrolled_on is not None and ae.onset_on < enrolled_on:
            errors["onset_on"] = MSG["onset_before_enrolment"].format(date=enrolled_on)
    if ae.resolved_on is not None:
        if ae.resolved_on > today():
            errors["resolved_on"] = MSG["resolved_future"]
        elif ae.onset_on is not None and ae.resolved_on < ae.onset_on:
            errors["resolved_on"] = MSG["resolved_before_onset"]
    any_criterion = any(getattr(ae, f) for f in SERIOUS_CRITERIA.values())
    if ae.serious and not any_criterion:
        errors["serious"] = MSG["serious_without_criterion"]
    elif any_criterion and not ae.serious:
        errors["serious"] = MSG["criterion_without_serious"]
    if ae.outcome == Outcome.FATAL and ae.grade != 5 and not ae.serious_death:
        errors["outcome"] = MSG["fatal_needs_grade_5"]
    elif ae.grade == 5 and ae.outcome != Outcome.FATAL and "grade" not in errors:
        errors["grade"] = MSG["grade_5_needs_fatal"]
    elif ae.serious_death and ae.outcome != Outcome.FATAL:
        errors["outcome"] = MSG["death_needs_fatal"]
    if ae.retracted_at is not None and not (ae.retraction_reason or "").strip():
        errors["retraction_reason"] = MSG["retraction_reason"]
    return errors
