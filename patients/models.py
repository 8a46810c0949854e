"""Patient links (a procedure's token for its patient), what patients send, and the submission log.

A patient has no account: the link's token, shown once and stored only as its SHA-256, is the key
to one procedure's pages. What a patient sends (a diary day or a later problem) is a PatientReport,
"patient-reported, unconfirmed" until a clinician of the clinic confirms it (an adverse event with
reporter = patient, events.services) or rejects it with a reason. Adverse events, not reports, are
what the incidence engine counts.
"""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from core.models import CleanConstraintsMixin, in_choices
from core.text import validate_safe_free_text
from events.models import AdverseEvent
from patients.choices import DIARY_LAST_DAY, ReportKind, ReportStatus, Severity, SubmissionAction, Swelling
from registry.models import Procedure


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class PatientLink(CleanConstraintsMixin):
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="patient_links")
    # sha256 hex of the token: the token itself is shown once and never stored (DESIGN 4.9).
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    language = models.CharField(max_length=5, choices=[("en", "English"), ("es", "Español")])
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    issued_at = models.DateTimeField(auto_now_add=True)
    expires_on = models.DateField(help_text="The link answers up to and including this day.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    revoke_reason = models.CharField(max_length=500, blank=True, validators=[validate_safe_free_text])

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.CheckConstraint(condition=Q(language__in=["en", "es"]), name="patientlink_language_valid"),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | ~Q(revoke_reason=""), name="patientlink_revoked_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"Patient link #{self.pk} for {self.procedure.external_id}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class PatientReport(CleanConstraintsMixin):
    """A diary day (day 0-7, one per procedure and day) or a problem reported later."""

    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="patient_reports")
    link = models.ForeignKey(PatientLink, on_delete=models.PROTECT, related_name="reports")
    kind = models.CharField(max_length=8, choices=ReportKind.choices)
    # The diary: the server's date in the registry's time zone when it was sent (core.dates.today).
    day = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Days after the procedure (diary).")
    entry_on = models.DateField(help_text="The diary's day, or the day a problem was reported.")
    pain = models.PositiveSmallIntegerField(null=True, blank=True)
    swelling = models.CharField(max_length=10, choices=Swelling.choices, blank=True)
    redness = models.BooleanField(null=True, blank=True)
    redness_cm = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    warmth = models.BooleanField(null=True, blank=True)
    temperature_c = models.DecimalField(max_digits=3, decimal_places=1, null=True, blank=True)
    discharge = models.BooleanField(null=True, blank=True)
    flu_like = models.BooleanField(null=True, blank=True)
    fatigue = models.BooleanField(null=True, blank=True)
    weakness_numbness = models.BooleanField(null=True, blank=True)
    # The problem report (after day 7, or any time).
    what = models.TextField(blank=True, max_length=2000, validators=[validate_safe_free_text])
    since_on = models.DateField(null=True, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, blank=True)
    # Red flags found when it was sent (patients.redflags): urgent for the clinic.
    red_flags = ArrayField(models.CharField(max_length=24), default=list, blank=True)
    urgent = models.BooleanField(default=False)
    notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    submitted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The clinician's decision.
    status = models.CharField(max_length=12, choices=ReportStatus.choices, default=ReportStatus.UNCONFIRMED)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reject_reason = models.CharField(max_length=1000, blank=True, validators=[validate_safe_free_text])
    adverse_event = models.ForeignKey(
        AdverseEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="patient_reports"
    )

    class Meta:
        ordering = ["-urgent", "-submitted_at"]
        indexes = [
            # The clinic's queue: unreviewed reports, urgent first (PatientReportAdmin's default view).
            models.Index(fields=["procedure", "status"], name="patientreport_queue_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=in_choices("kind", ReportKind), name="patientreport_kind_valid"),
            models.CheckConstraint(condition=in_choices("status", ReportStatus), name="patientreport_status_valid"),
            models.CheckConstraint(
                condition=in_choices("swelling", Swelling, blank=True), name="patientreport_swelling_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("severity", Severity, blank=True), name="patientreport_severity_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind=ReportKind.DIARY) | (Q(day__gte=0) & Q(day__lte=DIARY_LAST_DAY)),
                name="patientreport_diary_day_0_to_7",
            ),
            models.CheckConstraint(
                condition=Q(pain__isnull=True) | (Q(pain__gte=0) & Q(pain__lte=10)), name="patientreport_pain_0_10"
            ),
            models.CheckConstraint(
                condition=Q(temperature_c__isnull=True) | (Q(temperature_c__gte=30) & Q(temperature_c__lte=45)),
                name="patientreport_temperature_plausible",
            ),
            models.CheckConstraint(
                condition=Q(redness_cm__isnull=True) | (Q(redness_cm__gte=0) & Q(redness_cm__lte=100)),
                name="patientreport_redness_cm_range",
            ),
            models.CheckConstraint(
                condition=~Q(status=ReportStatus.REJECTED) | ~Q(reject_reason=""),
                name="patientreport_rejected_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(status=ReportStatus.CONFIRMED) | Q(adverse_event__isnull=False),
                name="patientreport_confirmed_has_event",
            ),
            models.UniqueConstraint(
                fields=["procedure", "day"], condition=Q(kind="diary"), name="patientreport_one_diary_day"
            ),
        ]

    def __str__(self) -> str:
        if self.kind == ReportKind.DIARY:
            return f"Diary day {self.day} of {self.procedure.external_id}"
        return f"Problem reported {self.entry_on} for {self.procedure.external_id}"


class SubmissionLog(models.Model):
    """One row per patient submission: when, which link, a keyed hash of the address (append-only)."""

    at = models.DateTimeField(auto_now_add=True)
    link = models.ForeignKey(PatientLink, on_delete=models.PROTECT, related_name="submissions")
    report = models.ForeignKey(PatientReport, on_delete=models.PROTECT, related_name="submissions")
    action = models.CharField(max_length=16, choices=SubmissionAction.choices)
    address_hash = models.CharField(max_length=64, help_text="HMAC-SHA256 of the client address (never the address).")

    class Meta:
        ordering = ["-at"]
        constraints = [
            models.CheckConstraint(condition=in_choices("action", SubmissionAction), name="submissionlog_action_valid")
        ]
        triggers = [pgtrigger.Protect(name="submissionlog_append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.get_action_display()} at {self.at:%Y-%m-%d %H:%M}"
