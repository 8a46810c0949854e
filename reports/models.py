"""Incidence runs and what a succeeded run stores: an immutable snapshot.

- IncidenceRun: the request, its progress and (once succeeded) its snapshot;
- IncidenceResult: the incidence rows (strata and margins x outcomes);
- RunCurve, RunProviderRate, RunListingRow: what the run's documents show beyond the
  rows (Kaplan-Meier step curves, the provider comparison, the counted events), computed
  in the same transaction as the flip to succeeded (reports.snapshot), so a document of
  the run never changes after an edit of the registry;
- ExportLog (reports.exports.models): who exported what.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from reports.choices import CIMethod, RunStatus, Stratum, Trigger
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
        help_text="Only events with onset at most this many days after the procedure qualify.",
    )
    ci_method = models.CharField(
        "proportion interval", max_length=16, choices=CIMethod.choices, default=CIMethod.WILSON
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
    """A Kaplan-Meier step curve of a run: one outcome and stratum (each finest stratum and the overall one)."""

    run = models.ForeignKey(IncidenceRun, on_delete=models.CASCADE, related_name="curves")
    position = models.PositiveIntegerField(help_text="Order of the curve in the run: outcome, then stratum.")
    outcome = models.CharField(max_length=32)
    stratum = models.JSONField(help_text='Stratum values by column; the overall curve carries "ALL".')
    procedures = models.PositiveIntegerField()
    days = ArrayField(models.IntegerField(), help_text="Days where the cumulative incidence steps, from day 0.")
    cuminc = ArrayField(models.FloatField(), help_text="1 - S from each of those days on.")

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


__all__ = ["ExportLog", "IncidenceResult", "IncidenceRun", "RunCurve", "RunListingRow", "RunProviderRate"]
