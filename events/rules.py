"""Return the validation errors of an adverse event, field by field: the one statement of each rule.

As registry.rules, in the same catalogue (core.rules): adverse_event_errors() holds the
event's own fields (Model.clean(), backed by CheckConstraints named after the codes);
adverse_event_across_errors() holds it against its procedure and patient (the services and,
set-wise, the importer; backed by triggers raising the codes).
"""

from __future__ import annotations

import datetime as dt

from core.dates import today
from core.rules import RETRACTION_REASON, add, rule
from events.choices import SERIOUS_CRITERIA, Outcome

RECOVERED = (Outcome.RECOVERED, Outcome.RECOVERED_WITH_SEQUELAE)

# --- the event's own fields (CheckConstraints of the same name) --------------------------------
GRADE = rule("ae_grade_1_to_5", "grade", "CTCAE grade must be 1, 2, 3, 4 or 5.")
ONSET_FUTURE = rule("ae_onset_not_in_future", "onset_on", "Onset date cannot be in the future.")
RESOLVED_FUTURE = rule("ae_resolved_not_in_future", "resolved_on", "Resolution date cannot be in the future.")
RESOLVED_BEFORE_ONSET = rule(
    "ae_resolved_not_before_onset", "resolved_on", "Resolution date cannot be before the onset date."
)
RECOVERED_NEEDS_RESOLUTION = rule(
    "ae_recovered_needs_resolution", "resolved_on", "A recovered outcome needs the resolution date."
)
NOT_RECOVERED_UNRESOLVED = rule(
    "ae_not_recovered_unresolved",
    "outcome",
    "An event with a resolution date cannot have the outcome 'not recovered'.",
)
SERIOUS_WITHOUT_CRITERION = rule(
    "ae_serious_needs_criterion", "serious", "A serious event needs at least one seriousness criterion."
)
CRITERION_WITHOUT_SERIOUS = rule(
    "ae_criterion_needs_serious", "serious", "An event meeting a seriousness criterion must be marked serious."
)
FATAL_NEEDS_GRADE_5 = rule(
    "ae_fatal_needs_grade5_or_death",
    "outcome",
    "A fatal outcome needs CTCAE grade 5 or the 'results in death' criterion.",
)
GRADE_5_NEEDS_FATAL = rule("ae_grade5_is_fatal", "grade", "CTCAE grade 5 (death) requires the outcome 'fatal'.")
DEATH_NEEDS_FATAL = rule(
    "ae_death_criterion_is_fatal", "outcome", "The 'results in death' criterion requires the outcome 'fatal'."
)
# Issue 10: awareness starts the expedited-report clocks (CheckConstraint ae_aware_not_before_onset).
AWARE_BEFORE_ONSET = rule(
    "ae_aware_not_before_onset", "aware_on", "The awareness date cannot be before the onset date."
)
AWARE_FUTURE = rule("ae_aware_not_in_future", "aware_on", "The awareness date cannot be in the future.")

# --- against the procedure and the patient (triggers raising the same code) --------------------
ONSET_BEFORE_PROCEDURE = rule(
    "ae_onset_not_before_procedure", "onset_on", "Onset date cannot be before the procedure date.", "{date}"
)
# Interactive entry only (no database backstop): imports load historical events.
ONSET_BEFORE_ENROLMENT = rule(
    "ae_onset_not_before_enrolment",
    "onset_on",
    "Onset date is before the patient's enrolment; historical events are loaded by import.",
    "{date}",
)
ONSET_AFTER_DEATH = rule(
    "ae_onset_not_after_death", "onset_on", "Onset date cannot be after the patient's death date.", "{date}"
)
FATAL_NEEDS_DEATH_DATE = rule(
    "ae_fatal_needs_death_date",
    "outcome",
    "A fatal outcome needs the patient's death date: record the death date first.",
)
# --- MedDRA coding, against the loaded dictionary (triggers ae_meddra_coded_* raise the same codes) --
MEDDRA_NOT_CURRENT = rule(
    "ae_meddra_code_current_llt",
    "meddra_code",
    "Not a current lowest level term of the MedDRA dictionary.",
    "MedDRA {version}",
)
# A caller of the service named a version that is not loaded (the API and the admin code with the newest).
MEDDRA_VERSION_NOT_LOADED = rule(
    "ae_meddra_version_loaded", "meddra_code", "This MedDRA version is not loaded.", "MedDRA {version}"
)
# Own fields (CheckConstraint of the same name): the registry derives PT, SOC and version from the code.
MEDDRA_DERIVED = rule(
    "ae_meddra_derivation_whole",
    "meddra_code",
    "The MedDRA version, preferred term and system organ class come from the coded term, all or none.",
)
LAST_FATAL_EXPLAINS_DEATH = rule(
    "ae_outcome_keeps_death_explained",
    "outcome",
    "This is the patient's only fatal event: record a cause of death on the patient before changing the outcome.",
)


def adverse_event_errors(ae) -> dict[str, str]:
    """Return {field: message} for an adverse event's own fields."""
    errors: dict[str, str] = {}
    if ae.grade is not None and ae.grade not in (1, 2, 3, 4, 5):
        add(errors, GRADE)
    if ae.onset_on is not None and ae.onset_on > today():
        add(errors, ONSET_FUTURE)
    if ae.resolved_on is not None:
        if ae.resolved_on > today():
            add(errors, RESOLVED_FUTURE)
        elif ae.onset_on is not None and ae.resolved_on < ae.onset_on:
            add(errors, RESOLVED_BEFORE_ONSET)
        if ae.outcome == Outcome.NOT_RECOVERED:
            add(errors, NOT_RECOVERED_UNRESOLVED)
    elif ae.outcome in RECOVERED:
        add(errors, RECOVERED_NEEDS_RESOLUTION)
    aware_on = getattr(ae, "aware_on", None)
    if aware_on is not None:
        if aware_on > today():
            add(errors, AWARE_FUTURE)
        elif ae.onset_on is not None and aware_on < ae.onset_on:
            add(errors, AWARE_BEFORE_ONSET)
    any_criterion = any(getattr(ae, f) for f in SERIOUS_CRITERIA.values())
    if ae.serious and not any_criterion:
        add(errors, SERIOUS_WITHOUT_CRITERION)
    elif any_criterion and not ae.serious:
        add(errors, CRITERION_WITHOUT_SERIOUS)
    if ae.outcome == Outcome.FATAL and ae.grade != 5 and not ae.serious_death:
        add(errors, FATAL_NEEDS_GRADE_5)
    elif ae.grade == 5 and ae.outcome != Outcome.FATAL:
        add(errors, GRADE_5_NEEDS_FATAL)
    elif ae.serious_death and ae.outcome != Outcome.FATAL:
        add(errors, DEATH_NEEDS_FATAL)
    if ae.retracted_at is not None and not (ae.retraction_reason or "").strip():
        add(errors, RETRACTION_REASON)
    # The importer's rows carry no MedDRA coding (imports leave it empty): nothing to hold them to.
    derived = [getattr(ae, f, "") for f in MEDDRA_DERIVED_FIELDS]
    if any(derived) and not (getattr(ae, "meddra_code", "") and all(derived)):
        add(errors, MEDDRA_DERIVED)
    return errors


# What coding derives from the lowest level term (events.services fills them; never entered).
MEDDRA_DERIVED_FIELDS = (
    "meddra_version",
    "meddra_llt_name",
    "meddra_pt_code",
    "meddra_pt_name",
    "meddra_soc_code",
    "meddra_soc_name",
)


def adverse_event_coding_errors(ae, *, version: str | None, coding) -> dict[str, str]:
    """Return {field: message} for an event's MedDRA code held against the dictionary.

    ``version``: the MedDRA version the code was looked up in, None when no dictionary is loaded
    (then only the code's shape counts, as Model.clean() checks it). ``coding``: the look-up's
    answer (meddra.selectors.Coding, None for a code the version does not have).
    """
    errors: dict[str, str] = {}
    if ae.meddra_code and version is not None and (coding is None or not coding.current):
        add(errors, MEDDRA_NOT_CURRENT, version=version)
    return errors


def adverse_event_across_errors(
    ae,
    *,
    performed_on: dt.date | None,
    death_date: dt.date | None,
    enrolled_on: dt.date | None = None,
    allow_historical: bool = False,
    was_only_unexplained_fatal: bool = False,
) -> dict[str, str]:
    """Return {field: message} for an adverse event held against its procedure and its patient.

    Interactive entry (admin, API) records events prospectively: an onset before the
    patient's enrolment in the registry is refused. ``allow_historical`` is the exemption
    of imports (clinics migrating years of spreadsheets) and of an onset already on record.
    ``was_only_unexplained_fatal``: the stored event is the patient's only fatal one and the
    patient has a death date without a recorded cause.
    """
    errors: dict[str, str] = {}
    if ae.onset_on is not None and ae.onset_on <= today():
        if performed_on is not None and ae.onset_on < performed_on:
            add(errors, ONSET_BEFORE_PROCEDURE, date=performed_on)
        elif not allow_historical and enrolled_on is not None and ae.onset_on < enrolled_on:
            add(errors, ONSET_BEFORE_ENROLMENT, date=enrolled_on)
        if death_date is not None and ae.onset_on > death_date:
            add(errors, ONSET_AFTER_DEATH, date=death_date)
    if ae.retracted_at is None and ae.outcome == Outcome.FATAL and death_date is None:
        add(errors, FATAL_NEEDS_DEATH_DATE)
    if was_only_unexplained_fatal and (ae.outcome != Outcome.FATAL or ae.retracted_at is not None):
        add(errors, LAST_FATAL_EXPLAINS_DEATH)
    return errors


# --- Issue 10: follow-up reports and medical reviews -------------------------------------------
FOLLOW_UP_RECEIVED_BEFORE_AWARENESS = rule(
    "followup_received_not_before_awareness",
    "received_on",
    "A follow-up cannot be received before the clinic became aware of the event.",
    "aware on {date}",
)
FOLLOW_UP_RECEIVED_FUTURE = rule(
    "followup_received_not_in_future", "received_on", "The date a follow-up was received cannot be in the future."
)
FOLLOW_UP_NARRATIVE = rule(
    "followup_needs_narrative",
    "narrative",
    "A follow-up needs a narrative: what was learned, even when it changes nothing on the event.",
)
FOLLOW_UP_FIELD_NOT_CHANGEABLE = rule(
    "followup_changes_known_fields",
    "changes",
    "A follow-up cannot change these fields.",
    "{fields}",
)
FOLLOW_UP_ON_RETRACTED = rule(
    "followup_not_on_retracted_event", "event", "A retracted event takes no follow-up reports or reviews."
)
REVIEW_SERIOUS_WITHOUT_CRITERION = rule(
    "review_serious_needs_criterion", "serious", "A serious assessment needs at least one seriousness criterion."
)
REVIEW_CRITERION_WITHOUT_SERIOUS = rule(
    "review_criterion_needs_serious", "serious", "An assessment naming a seriousness criterion must be serious."
)


def follow_up_errors(*, received_on: dt.date | None, narrative: str, aware_on: dt.date | None) -> dict[str, str]:
    """Return {field: message} for a follow-up report's own fields held against its event's awareness date."""
    errors: dict[str, str] = {}
    if received_on is not None:
        if received_on > today():
            add(errors, FOLLOW_UP_RECEIVED_FUTURE)
        elif aware_on is not None and received_on < aware_on:
            add(errors, FOLLOW_UP_RECEIVED_BEFORE_AWARENESS, date=aware_on)
    if not (narrative or "").strip():
        add(errors, FOLLOW_UP_NARRATIVE)
    return errors


def medical_review_errors(review) -> dict[str, str]:
    """Return {field: message} for a medical review's own fields (its seriousness against its criteria)."""
    errors: dict[str, str] = {}
    any_criterion = any(getattr(review, f) for f in SERIOUS_CRITERIA.values())
    if review.serious and not any_criterion:
        add(errors, REVIEW_SERIOUS_WITHOUT_CRITERION)
    elif any_criterion and not review.serious:
        add(errors, REVIEW_CRITERION_WITHOUT_SERIOUS)
    return errors
