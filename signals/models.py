"""A stored signal run: its screen rows, its product-lot cluster alerts, and the reviews of its signals."""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import in_choices
from core.text import validate_safe_free_text
from registry.models import Clinic
from signals.choices import SignalRunStatus, SignalTrigger


class SignalRun(models.Model):
    """One screen of the registry at a data cut-off: running, then succeeded (with its rows) or failed (with why).

    Its rows and alerts are written in one transaction with its flip to succeeded, so no half run is
    ever seen; a worker lost mid-run leaves it running with no rows, and the next run marks it failed.
    The nightly schedule stores at most one succeeded run per cut-off.
    """

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    cutoff_on = models.DateField("data cut-off date")
    status = models.CharField(max_length=12, choices=SignalRunStatus.choices)
    trigger = models.CharField(max_length=12, choices=SignalTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    parameters = models.JSONField(
        default=dict, blank=True, help_text="What was screened: attributes (by), windows mode and definitions, unit."
    )
    error = models.TextField(blank=True)
    signal_count = models.PositiveIntegerField(default=0)
    new_signal_count = models.PositiveIntegerField(default=0)
    alert_count = models.PositiveIntegerField(default=0)
    new_alert_count = models.PositiveIntegerField(default=0)
    # Set when the email of what is new was handed to the mail server (claimed once: never two emails).
    notified_at = models.DateTimeField(null=True, blank=True)
    notify_error = models.TextField(blank=True)

    class Meta:
        # The admin index lists the Signals page (its changelist) under this name.
        verbose_name_plural = "signals"
        ordering = ["-finished_at", "-id"]
        indexes = [
            # The latest succeeded run (the Signals page) and the previous one (what is new).
            models.Index(fields=["status", "finished_at"], name="signalrun_status_finished_idx"),
        ]
        constraints = [
            # Two deliveries of the nightly task for one cut-off store one run (the second is skipped; this
            # is the database's backstop should two ever race past the service's lock).
            models.UniqueConstraint(
                fields=["cutoff_on"],
                condition=Q(trigger=SignalTrigger.BEAT, status=SignalRunStatus.SUCCEEDED),
                name="signalrun_one_nightly_run_per_cutoff",
            ),
            models.CheckConstraint(condition=in_choices("status", SignalRunStatus), name="signalrun_status_valid"),
            models.CheckConstraint(condition=in_choices("trigger", SignalTrigger), name="signalrun_trigger_valid"),
            models.CheckConstraint(
                condition=Q(finished_at__gte=models.F("started_at")), name="signalrun_finished_after_start"
            ),
            models.CheckConstraint(
                condition=Q(status=SignalRunStatus.FAILED) | Q(error=""), name="signalrun_error_only_when_failed"
            ),
            models.CheckConstraint(
                condition=Q(status=SignalRunStatus.RUNNING, finished_at__isnull=True)
                | (~Q(status=SignalRunStatus.RUNNING) & Q(finished_at__isnull=False)),
                name="signalrun_finished_unless_running",
            ),
        ]

    def __str__(self) -> str:
        return f"Signal run #{self.pk} (cut-off {self.cutoff_on}, {self.get_status_display().lower()})"


class SignalRow(models.Model):
    """One row of the screen (the CSV of compute_signals), plus whether it is a signal new in this run."""

    run = models.ForeignKey(SignalRun, on_delete=models.CASCADE, related_name="rows")
    position = models.PositiveIntegerField(help_text="The row's place in compute_signals' output.")
    attribute = models.CharField(max_length=32)
    value = models.CharField(max_length=200)
    outcome = models.CharField(max_length=32)
    basis = models.CharField(max_length=16)
    procedures = models.PositiveIntegerField()
    cases = models.PositiveIntegerField()
    person_years = models.FloatField(null=True, blank=True)
    rest_procedures = models.PositiveIntegerField()
    rest_cases = models.PositiveIntegerField()
    rest_person_years = models.FloatField(null=True, blank=True)
    ratio = models.FloatField(null=True, blank=True)
    ratio_ci_low = models.FloatField(null=True, blank=True)
    ratio_ci_high = models.FloatField(null=True, blank=True)
    p_value = models.FloatField(null=True, blank=True)
    q_value = models.FloatField(null=True, blank=True)
    events_a = models.PositiveIntegerField(null=True, blank=True)
    events_b = models.PositiveIntegerField(null=True, blank=True)
    events_c = models.PositiveIntegerField(null=True, blank=True)
    events_d = models.PositiveIntegerField(null=True, blank=True)
    prr = models.FloatField(null=True, blank=True)
    prr_ci_low = models.FloatField(null=True, blank=True)
    prr_ci_high = models.FloatField(null=True, blank=True)
    ror = models.FloatField(null=True, blank=True)
    ror_ci_low = models.FloatField(null=True, blank=True)
    ror_ci_high = models.FloatField(null=True, blank=True)
    chi2_yates = models.FloatField(null=True, blank=True)
    ic = models.FloatField(null=True, blank=True)
    ic025 = models.FloatField(null=True, blank=True)
    signal = models.BooleanField()
    evans_signal = models.BooleanField()
    is_new = models.BooleanField(
        default=False,
        help_text="A signal (either kind) whose attribute, value and outcome were no signal in the previous run.",
    )

    class Meta:
        ordering = ["run_id", "position"]
        indexes = [
            # The Signals page and the next run's "what is new": the signals of one run.
            models.Index(
                fields=["run", "attribute", "value", "outcome"],
                condition=Q(signal=True) | Q(evans_signal=True),
                name="signalrow_run_signals_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["run", "attribute", "value", "outcome"], name="signalrow_unique_key"),
            models.CheckConstraint(
                condition=Q(is_new=False) | Q(signal=True) | Q(evans_signal=True), name="signalrow_new_is_a_signal"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.attribute}={self.value}, {self.outcome}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.attribute, self.value, self.outcome)

    @property
    def is_signal(self) -> bool:
        return self.signal or self.evans_signal


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class SignalReview(models.Model):
    """A reviewer's note that a signal (attribute, value, outcome) was looked at. Append-only and audited.

    Made on one run's row, it speaks for the signal's key: the Signals page shows it on that key in
    later runs too. Triggers refuse any update or delete; pghistory records the insert with who made it.
    """

    attribute = models.CharField(max_length=32)
    value = models.CharField(max_length=200)
    outcome = models.CharField(max_length=32)
    row = models.ForeignKey(SignalRow, on_delete=models.PROTECT, related_name="reviews")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(default=timezone.now)
    comment = models.TextField(validators=[validate_safe_free_text])

    class Meta:
        ordering = ["-reviewed_at", "-id"]
        indexes = [
            # The Signals page: the reviews of each signal's key, newest first.
            models.Index(fields=["attribute", "value", "outcome", "reviewed_at"], name="signalreview_key_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(comment__regex=r"\S"), name="signalreview_has_comment"),
        ]
        triggers = [
            pgtrigger.Protect(name="signalreview_never_updated", operation=pgtrigger.Update),
            pgtrigger.Protect(name="signalreview_never_deleted", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"Review of {self.attribute}={self.value}, {self.outcome} by {self.reviewed_by}"


class LotClusterAlert(models.Model):
    """3 or more events of one category in one product lot with onsets at most 30 days apart (a run's alert).

    The events are those of every such 30-day span of the lot and category, so first and last onset
    may lie further apart when spans follow one another. ``clinic`` is the lot's clinic when all the
    events are at one clinic (``clinic_ids`` lists every clinic, for the row-level limit).
    """

    run = models.ForeignKey(SignalRun, on_delete=models.CASCADE, related_name="lot_alerts")
    product_lot = models.CharField(max_length=64)
    category = models.CharField(max_length=32)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    clinic_ids = ArrayField(models.BigIntegerField(), default=list)
    event_count = models.PositiveIntegerField()
    first_onset_on = models.DateField()
    last_onset_on = models.DateField()
    event_ids = ArrayField(models.BigIntegerField(), default=list, help_text="The adverse events' database ids.")
    is_new = models.BooleanField(default=False, help_text="The lot and category had no alert in the previous run.")

    class Meta:
        ordering = ["run_id", "-is_new", "product_lot", "category"]
        constraints = [
            models.UniqueConstraint(fields=["run", "product_lot", "category"], name="lotclusteralert_unique_key"),
            models.CheckConstraint(
                condition=Q(last_onset_on__gte=models.F("first_onset_on")), name="lotclusteralert_onsets_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"Lot {self.product_lot}: {self.event_count} {self.category} events"

    @property
    def key(self) -> tuple[str, str]:
        return (self.product_lot, self.category)
