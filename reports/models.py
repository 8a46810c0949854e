"""Incidence runs and what a succeeded run stores: an immutable snapshot.

- IncidenceRun: the request, its progress and (once succeeded) its snapshot;
- IncidenceResult: the incidence rows (strata and margins x outcomes);
- RunCurve, RunProviderRate, RunListingRow: what the run's documents show beyond the
  rows (Kaplan-Meier step curves, the provider comparison, the counted events), computed
  in the same transaction as the flip to succeeded (reports.snapshot), so a document of
  the run never changes after an edit of the registry;
- RunProviderComparison: the case-mix-adjusted provider comparison (DESIGN 2b), stored with the run;
- OutcomeDefinition: the registry's outcome definitions (risk windows), versioned and append-only;
  a run freezes the ones it used (IncidenceRun.outcome_definitions);
- ExportLog (reports.exports.models): who exported what.
"""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.models import CleanConstraintsMixin
from core.rules import rule
from core.text import validate_safe_free_text
from reports.choices import OUTCOME_LABELS, OUTCOMES, CIMethod, RunStatus, Stratum, Trigger, Unit, WindowsMode
from reports.exports.models import ExportLog

_FROZEN_FIELDS = (
    "strata",
    "outcomes",
    "cutoff_on",
    "onset_window_days",
    "ci_method",
    "clinic_ids",
    "requested_by_id",
    "trigger",
    "created_at",
    "windows_mode",
    "unit",
    "outcome_definitions",
)
_FINISHED = [RunStatus.SUCCEEDED, RunStatus.FAILED]
_SNAPSHOT_FUNC = """
                IF TG_OP <> 'INSERT' AND 'succeeded' = (SELECT status FROM reports_incidencerun r
                                                        WHERE r.id = OLD.run_id) THEN
                    RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
                        MESSAGE = 'Results of a succeeded incidence run cannot be changed.';
                END IF;
                IF TG_OP <> 'DELETE' AND 'succeeded' = (SELECT status FROM reports_incidencerun r
                                                        WHERE r.id = NEW.run_id) THEN
                    RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
                        MESSAGE = 'Results of a succeeded incidence run cannot be changed.';
                END IF;
                IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
                RETURN NEW;
                """


def _snapshot_immutable(name: str) -> pgtrigger.Trigger:
    """Return the trigger keeping a row of a succeeded run's snapshot from being added, changed or removed."""
    return pgtrigger.Trigger(
        name=name,
        when=pgtrigger.Before,
        operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete,
        func=_SNAPSHOT_FUNC,
    )


class IncidenceRun(models.Model):
    """A request for an incidence report, its progress, and (once succeeded) its snapshot."""

    # parameters (frozen at creation by a trigger)
    strata = ArrayField(
        models.CharField(max_length=16, choices=Stratum.choices),
        default=list,
        blank=True,
        help_text="Stratum columns in report order; margins cover every subset.",
    )
    outcomes = ArrayField(models.CharField(max_length=32), help_text="Outcome codes, in report order.")
    cutoff_on = models.DateField("data cut-off date")
    onset_window_days = models.PositiveIntegerField(
        "onset window (days)",
        null=True,
        blank=True,
        help_text="Every risk window ends on this day after time zero (each start day kept); "
        "only events with onset up to then qualify.",
    )
    ci_method = models.CharField(
        "proportion interval", max_length=16, choices=CIMethod.choices, default=CIMethod.WILSON
    )
    windows_mode = models.CharField(
        "risk windows",
        max_length=12,
        choices=WindowsMode.choices,
        default=WindowsMode.OPEN,
        help_text="Open: every outcome counted from day 0 to the end of follow-up. Registry: the stored "
        "outcome definitions as they stood when the run started (copied into the run's outcome definitions).",
    )
    unit = models.CharField("unit of the report", max_length=12, choices=Unit.choices, default=Unit.PROCEDURE)
    outcome_definitions = models.JSONField(
        default=list,
        blank=True,
        help_text="The outcome definitions the run used, frozen when it started: one per outcome, in report "
        "order, with code, label, qualifies, window_start_day, window_end_day (null: open) and version "
        "(null: no stored definition, the open window). Empty for runs made before definitions existed.",
    )
    clinic_ids = ArrayField(
        models.BigIntegerField(),
        null=True,
        blank=True,
        help_text="Clinics the report covers, fixed from the requester's scope; empty means every clinic.",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    trigger = models.CharField(max_length=12, choices=Trigger.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    # progress
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    task_id = models.CharField(max_length=64, blank=True, help_text="Celery task holding the claim.")
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_by = models.CharField(max_length=200, blank=True, help_text="Worker host and process id.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life from the worker computing the run."
    )
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="When the task message reached the broker; empty until it did."
    )
    estimated_rows = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Result rows estimated before the run was accepted."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    row_count = models.PositiveIntegerField(default=0)
    listing_total = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Adverse events that counted when the run succeeded; the first REPORTS_MAX_RESULT_ROWS are stored.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Reclaiming stale runs (services.incidence_runs_requeue_stale): runs by status and claim age.
            models.Index(fields=["status", "claimed_at"], name="incidencerun_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="incidencerun_status_valid"),
            models.CheckConstraint(condition=Q(ci_method__in=CIMethod.values), name="incidencerun_ci_method_valid"),
            models.CheckConstraint(condition=Q(trigger__in=Trigger.values), name="incidencerun_trigger_valid"),
            models.CheckConstraint(
                condition=Q(windows_mode__in=WindowsMode.values), name="incidencerun_windows_mode_valid"
            ),
            models.CheckConstraint(condition=Q(unit__in=Unit.values), name="incidencerun_unit_valid"),
            models.CheckConstraint(
                condition=Q(status=RunStatus.QUEUED) | Q(claimed_at__isnull=False),
                name="incidencerun_claimed_unless_queued",
            ),
            models.CheckConstraint(
                condition=Q(status__in=_FINISHED, finished_at__isnull=False)
                | (~Q(status__in=_FINISHED) & Q(finished_at__isnull=True)),
                name="incidencerun_finished_iff_done",
            ),
            models.CheckConstraint(
                condition=~Q(status=RunStatus.FAILED) | ~Q(error=""), name="incidencerun_failure_has_error"
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="incidencerun_succeeded_is_immutable",
                operation=pgtrigger.Update | pgtrigger.Delete,
                condition=pgtrigger.Q(old__status=RunStatus.SUCCEEDED),
            ),
            pgtrigger.Protect(
                name="incidencerun_parameters_frozen",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange(*_FROZEN_FIELDS),
            ),
        ]

    def __str__(self) -> str:
        by = " x ".join(self.strata) or "overall"
        return f"Incidence run #{self.pk} ({by}, cut-off {self.cutoff_on}): {self.get_status_display()}"

    @property
    def duration_seconds(self) -> float | None:
        if self.claimed_at and self.finished_at:
            return (self.finished_at - self.claimed_at).total_seconds()
        return None


class IncidenceResult(models.Model):
    """One stratum (or margin) and outcome of a run; written once, with the status flip."""

    run = models.ForeignKey(IncidenceRun, on_delete=models.CASCADE, related_name="results")
    position = models.PositiveIntegerField(help_text="Order of the row in the report.")
    stratum = models.JSONField(help_text='Stratum values by column; margins carry "ALL".')
    outcome = models.CharField(max_length=32)
    procedures = models.PositiveIntegerField()
    cases = models.PositiveIntegerField()
    person_days = models.BigIntegerField()
    proportion = models.FloatField(null=True, blank=True)
    proportion_ci_low = models.FloatField(null=True, blank=True)
    proportion_ci_high = models.FloatField(null=True, blank=True)
    person_years = models.FloatField()
    rate_per_100py = models.FloatField("rate per 100 person-years", null=True, blank=True)
    rate_ci_low = models.FloatField(null=True, blank=True)
    rate_ci_high = models.FloatField(null=True, blank=True)
    # Kaplan-Meier 1 - S(t) at the horizons of reports.choices.HORIZONS, with the 95 % interval.
    km_cuminc_30d = models.FloatField(
        null=True, blank=True, help_text="Kaplan-Meier 1 - S(30); empty when nobody was followed 30 days."
    )
    km_cuminc_30d_ci_low = models.FloatField(null=True, blank=True)
    km_cuminc_30d_ci_high = models.FloatField(null=True, blank=True)
    km_cuminc_1y = models.FloatField(
        null=True, blank=True, help_text="Kaplan-Meier 1 - S(365); empty when nobody was followed 365 days."
    )
    km_cuminc_1y_ci_low = models.FloatField(null=True, blank=True)
    km_cuminc_1y_ci_high = models.FloatField(null=True, blank=True)
    km_cuminc_2y = models.FloatField(
        null=True, blank=True, help_text="Kaplan-Meier 1 - S(730); empty when nobody was followed 730 days."
    )
    km_cuminc_2y_ci_low = models.FloatField(null=True, blank=True)
    km_cuminc_2y_ci_high = models.FloatField(null=True, blank=True)
    km_cuminc_5y = models.FloatField(
        null=True, blank=True, help_text="Kaplan-Meier 1 - S(1826); empty when nobody was followed 1826 days."
    )
    km_cuminc_5y_ci_low = models.FloatField(null=True, blank=True)
    km_cuminc_5y_ci_high = models.FloatField(null=True, blank=True)
    # Aalen-Johansen cumulative incidence with death as a competing risk, at the same horizons (DESIGN 2b).
    aj_cuminc_30d = models.FloatField(
        null=True, blank=True, help_text="Aalen-Johansen cumulative incidence at day 30, death competing."
    )
    aj_cuminc_1y = models.FloatField(
        null=True, blank=True, help_text="Aalen-Johansen cumulative incidence at day 365, death competing."
    )
    aj_cuminc_2y = models.FloatField(
        null=True, blank=True, help_text="Aalen-Johansen cumulative incidence at day 730, death competing."
    )
    aj_cuminc_5y = models.FloatField(
        null=True, blank=True, help_text="Aalen-Johansen cumulative incidence at day 1826, death competing."
    )

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="incidenceresult_unique_position"),
            models.CheckConstraint(condition=Q(cases__lte=models.F("procedures")), name="incidenceresult_cases_le_n"),
        ]
        triggers = [
            # A succeeded run is a snapshot: its rows can be neither added, changed nor removed.
            _snapshot_immutable("incidenceresult_snapshot_immutable"),
        ]

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.stratum.items()) or "overall"
        return f"{self.outcome} @ {where}"


class RunCurve(models.Model):
    """A Kaplan-Meier and Aalen-Johansen step curve of a run: one outcome and stratum (each finest one and overall)."""

    run = models.ForeignKey(IncidenceRun, on_delete=models.CASCADE, related_name="curves")
    position = models.PositiveIntegerField(help_text="Order of the curve in the run: outcome, then stratum.")
    outcome = models.CharField(max_length=32)
    stratum = models.JSONField(help_text='Stratum values by column; the overall curve carries "ALL".')
    procedures = models.PositiveIntegerField()
    days = ArrayField(models.IntegerField(), help_text="Days where the cumulative incidence steps, from day 0.")
    cuminc = ArrayField(models.FloatField(), help_text="1 - S from each of those days on.")
    aj_cuminc = ArrayField(
        models.FloatField(),
        default=list,
        blank=True,
        help_text="Aalen-Johansen cumulative incidence (death competing) from each of those days on; "
        "empty on runs stored before it.",
    )

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="runcurve_unique_position"),
        ]
        triggers = [_snapshot_immutable("runcurve_snapshot_immutable")]

    def __str__(self) -> str:
        return f"{self.outcome} curve of run #{self.run_id}: {self.stratum}"


class RunProviderRate(models.Model):
    """A clinic's (or the pooled, clinic "ALL") rate for one outcome of a run: the provider comparison's input."""

    run = models.ForeignKey(IncidenceRun, on_delete=models.CASCADE, related_name="provider_rates")
    position = models.PositiveIntegerField()
    outcome = models.CharField(max_length=32)
    clinic = models.CharField(max_length=32, help_text='Clinic code; "ALL" for the pooled row.')
    procedures = models.PositiveIntegerField()
    cases = models.PositiveIntegerField()
    person_years = models.FloatField()
    rate_per_100py = models.FloatField(null=True, blank=True)
    rate_ci_low = models.FloatField(null=True, blank=True)
    rate_ci_high = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="runproviderrate_unique_position"),
        ]
        triggers = [_snapshot_immutable("runproviderrate_snapshot_immutable")]

    def __str__(self) -> str:
        return f"{self.outcome} rate of {self.clinic} in run #{self.run_id}"


# A provider comparison groups by clinic, country or GMP certification, on proportions (closed windows)
# or person-time (open windows).
COMPARISON_GROUPINGS: tuple[str, ...] = ("clinic", "country", "gmp")
COMPARISON_BASES: tuple[str, ...] = ("proportion", "person_time")


class RunProviderComparison(models.Model):
    """A group's (clinic, country or GMP status) observed and case-mix-expected cases for one outcome of a run.

    Indirect standardisation (DESIGN 2b): expected = sum over adjustment strata of the group's
    procedures (basis proportion) or person-years (basis person_time) times the reference risk or rate.
    """

    run = models.ForeignKey(IncidenceRun, on_delete=models.CASCADE, related_name="provider_comparisons")
    position = models.PositiveIntegerField()
    grouping = models.CharField(max_length=8, choices=[(g, g) for g in COMPARISON_GROUPINGS])
    group = models.TextField(help_text='The clinic code, the country, or "true"/"false" for GMP certification.')
    outcome = models.CharField(max_length=32)
    basis = models.CharField(max_length=12, choices=[(b, b) for b in COMPARISON_BASES])
    procedures = models.PositiveIntegerField(help_text="Units of the group in the outcome's denominator.")
    observed = models.PositiveIntegerField()
    person_years = models.FloatField()
    expected = models.FloatField()
    sir = models.FloatField(null=True, blank=True, help_text="Observed / expected; empty when expected is 0.")
    sir_ci_low = models.FloatField(null=True, blank=True)
    sir_ci_high = models.FloatField(null=True, blank=True)
    p_high = models.FloatField(null=True, blank=True, help_text="P(X >= observed), X ~ Poisson(expected).")
    p_low = models.FloatField(null=True, blank=True, help_text="P(X <= observed), X ~ Poisson(expected).")
    flag = models.TextField(blank=True)
    # Shown beside a low flag: fewer cases than expected may be safer care or under-reporting.
    followup_due = models.PositiveIntegerField(
        null=True, blank=True, help_text="Follow-up visits of the group's units due by the cut-off."
    )
    followup_completed = models.PositiveIntegerField(null=True, blank=True, help_text="Of those, the visits completed.")

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="runprovidercomparison_unique_position"),
            models.CheckConstraint(
                condition=Q(grouping__in=COMPARISON_GROUPINGS), name="runprovidercomparison_grouping_valid"
            ),
            models.CheckConstraint(condition=Q(basis__in=COMPARISON_BASES), name="runprovidercomparison_basis_valid"),
        ]
        triggers = [_snapshot_immutable("runprovidercomparison_snapshot_immutable")]

    def __str__(self) -> str:
        return f"{self.outcome} SIR of {self.grouping} {self.group} in run #{self.run_id}"


class RunMeddraCount(models.Model):
    """Counted events of a run by MedDRA primary SOC and preferred term (only coded events), as they stood."""

    run = models.ForeignKey(IncidenceRun, on_delete=models.CASCADE, related_name="meddra_counts")
    position = models.PositiveIntegerField(help_text="Order in the table: SOC, then PT (by name).")
    soc_code = models.CharField(max_length=8)
    soc_name = models.TextField()
    pt_code = models.CharField(max_length=8)
    pt_name = models.TextField()
    events = models.PositiveIntegerField(help_text="Counted events coded to this PT.")
    procedures = models.PositiveIntegerField(help_text="Procedures with at least one of them.")

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="runmeddracount_unique_position"),
        ]
        triggers = [_snapshot_immutable("runmeddracount_snapshot_immutable")]

    def __str__(self) -> str:
        return f"{self.pt_name} ({self.soc_name}) in run #{self.run_id}"


class RunSafetyFigure(models.Model):
    """Issue 10: the safety-reporting figures of each clinic in a run's scope, and their total, as they stood
    when the run succeeded (safety.selectors.clinic_safety_figures)."""

    run = models.ForeignKey(IncidenceRun, on_delete=models.CASCADE, related_name="safety_figures")
    position = models.PositiveIntegerField(help_text="Order in the table: clinics by code, the total last.")
    clinic_code = models.CharField(max_length=32, blank=True, help_text="Empty: every clinic of the run's scope.")
    events = models.PositiveIntegerField()
    median_onset_to_recording = models.FloatField(null=True, help_text="Days; empty without events.")
    submissions = models.PositiveIntegerField(help_text="Expedited reports submitted.")
    median_awareness_to_submission = models.FloatField(null=True, help_text="Days from the clock's awareness date.")
    on_time = models.PositiveIntegerField(help_text="Submissions made by their due date.")
    open_overdue = models.PositiveIntegerField(help_text="Open expedited reports past their due date.")
    stale_open_cases = models.PositiveIntegerField(help_text="Open cases aware > 30 days, without a follow-up.")

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="runsafetyfigure_unique_position"),
        ]
        triggers = [_snapshot_immutable("runsafetyfigure_snapshot_immutable")]

    def __str__(self) -> str:
        return f"Safety figures of {self.clinic_code or 'every clinic'} in run #{self.run_id}"

    @property
    def on_time_share(self) -> float | None:
        """Return the share of submissions made on time (None: none submitted)."""
        return self.on_time / self.submissions if self.submissions else None


class RunListingRow(models.Model):
    """An adverse event that counted for a run, as it stood when the run succeeded (the line listing's source).

    Internal ids are plain numbers, not foreign keys: the snapshot outlives edits of the
    registry. The documents publish them only under export-local pseudonyms
    (reports.exports.deidentified), and only the rows of clinics the reader may see.
    """

    run = models.ForeignKey(IncidenceRun, on_delete=models.CASCADE, related_name="listing_rows")
    clinic_id = models.BigIntegerField()
    patient_id = models.BigIntegerField()
    procedure_id = models.BigIntegerField()
    event_id = models.BigIntegerField()
    birth_year = models.IntegerField()
    sex = models.TextField()
    country = models.TextField()
    year = models.IntegerField(help_text="Calendar year of the procedure.")
    site = models.TextField()
    laterality = models.TextField()
    cell_source = models.TextField()
    cell_type = models.TextField()
    category = models.TextField()
    meddra_code = models.TextField()
    onset_day = models.IntegerField(help_text="Days from the procedure to the onset.")
    grade = models.IntegerField()
    serious = models.TextField()
    serious_criteria = models.TextField()
    causality_procedure = models.TextField()
    causality_product = models.TextField()
    outcome = models.TextField()
    resolved_day = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "onset_day", "event_id"]
        indexes = [
            # A download reads one run's rows, limited to the reader's clinics (documents.linelisting).
            models.Index(fields=["run", "clinic_id"], name="runlistingrow_run_clinic_idx"),
        ]
        triggers = [_snapshot_immutable("runlistingrow_snapshot_immutable")]

    def __str__(self) -> str:
        return f"Event {self.event_id} counted in run #{self.run_id}"


# --- Outcome definitions (DESIGN 2b) ---------------------------------------------------------------

# Rules on a definition's own fields: a CHECK named after each code backs clean(), and
# core.integrity maps a refusal by the database back to the field and message.
WINDOW_START_NOT_NEGATIVE = rule(
    "outcomedefinition_window_start_not_negative",
    "window_start_day",
    "The window starts on day 0 (the procedure) or later.",
)
WINDOW_END_NOT_BEFORE_START = rule(
    "outcomedefinition_window_end_not_before_start",
    "window_end_day",
    "The window cannot end before it starts: give an end day on or after the start day, or leave it open.",
)
QUALIFIES_IS_CODE = rule(
    "outcomedefinition_qualifies_is_code",
    "qualifies",
    "For now the events that qualify are those of the outcome's own code (its category, any, serious "
    "or grade 3 or higher).",
)
VERSION_POSITIVE = rule("outcomedefinition_version_positive", "version", "Versions are numbered from 1.")


# The audit trail records who stored each version (and in which request); rows never change afterwards.
@pghistory.track(pghistory.InsertEvent())
class OutcomeDefinition(CleanConstraintsMixin):
    """One version of an outcome definition: which events qualify, and the risk window after time zero.

    Append-only: an edit stores a new row with the next version (reports.services.outcome_definition_save),
    and the database refuses any UPDATE or DELETE. The current definition of a code is its highest
    version (reports.outcomes). A run copies the definitions it used into IncidenceRun.outcome_definitions.
    """

    code = models.CharField(max_length=32, choices=[(o, OUTCOME_LABELS[o]) for o in OUTCOMES])
    label = models.CharField(max_length=200, validators=[validate_safe_free_text])
    qualifies = models.CharField(
        max_length=64,
        help_text="The events that qualify: for now the outcome's own code (its category, any, serious or "
        "grade_3_plus); sets of MedDRA preferred terms may come later.",
    )
    window_start_day = models.IntegerField(
        "window start (day)", help_text="Day s after time zero (0: the day of the procedure) the risk window opens."
    )
    window_end_day = models.IntegerField(
        "window end (day)",
        null=True,
        blank=True,
        help_text="Day e after time zero the risk window closes (inclusive); empty: open, to the end of follow-up.",
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+"
    )
    note = models.TextField(blank=True, validators=[validate_safe_free_text], help_text="Why this version.")

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="outcomedefinition_unique_code_version"),
            models.CheckConstraint(condition=Q(code__in=OUTCOMES), name="outcomedefinition_code_valid"),
            models.CheckConstraint(condition=Q(qualifies=models.F("code")), name=QUALIFIES_IS_CODE.code),
            models.CheckConstraint(condition=Q(window_start_day__gte=0), name=WINDOW_START_NOT_NEGATIVE.code),
            models.CheckConstraint(
                condition=Q(window_end_day__isnull=True) | Q(window_end_day__gte=models.F("window_start_day")),
                name=WINDOW_END_NOT_BEFORE_START.code,
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name=VERSION_POSITIVE.code),
        ]
        triggers = [
            # Versions are append-only: a stored definition is never changed or removed.
            pgtrigger.Protect(name="outcomedefinition_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}: {self.window_display}"

    @property
    def window_display(self) -> str:
        end = "open" if self.window_end_day is None else f"day {self.window_end_day}"
        return f"day {self.window_start_day} to {end}"

    def clean(self):
        errors: dict[str, str] = {}
        if self.code and self.code not in OUTCOMES:
            errors["code"] = f"Unknown outcome: choose from {', '.join(OUTCOMES)}."
        if self.qualifies and self.code and self.qualifies != self.code:
            errors.update(QUALIFIES_IS_CODE.error())
        start, end = self.window_start_day, self.window_end_day
        if start is not None and start < 0:
            errors.update(WINDOW_START_NOT_NEGATIVE.error())
        elif start is not None and end is not None and end < start:
            errors.update(WINDOW_END_NOT_BEFORE_START.error())
        if errors:
            raise ValidationError(errors)


__all__ = [
    "ExportLog",
    "IncidenceResult",
    "IncidenceRun",
    "OutcomeDefinition",
    "RunCurve",
    "RunListingRow",
    "RunMeddraCount",
    "RunProviderComparison",
    "RunProviderRate",
]
