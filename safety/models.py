"""Expedited reporting: the rules (data), the reports a case makes due, and their submissions.

Nothing here is ever deleted: a rule is deactivated, a due report is submitted or withdrawn with
a reason, a submission is append-only (late ones are kept late).
"""

from __future__ import annotations

import re

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from core.models import CleanConstraintsMixin, in_choices
from core.text import validate_safe_free_text, validate_safe_identifier
from events.choices import Category
from events.models import AdverseEvent, FollowUpReport, MedicalReview
from safety.choices import QUALIFYING_OUTCOMES, DueReportStatus, ReportForm, StartedBy

COUNTRY_CODE = re.compile(r"[A-Z]{2}")
PT_CODE = re.compile(r"[0-9]{8}")


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class ReportingRule(CleanConstraintsMixin):
    """A regulator's expedited-reporting rule: which cases, in which countries, to whom, within how many days.

    Every criterion narrows: an empty list means "any". A rule that ``supersedes`` another (ICH E2A
    7 days over 15 days) takes its place when both are met, so a case gets the stricter clock only.
    """

    code = models.SlugField(max_length=40, unique=True, help_text="Short stable id, e.g. us-hctp-1271-350.")
    name = models.CharField(max_length=200, validators=[validate_safe_free_text])
    all_countries = models.BooleanField(default=False, help_text="Applies to clinics in every country.")
    jurisdiction = ArrayField(
        models.CharField(max_length=2),
        default=list,
        blank=True,
        help_text="ISO 3166-1 alpha-2 codes of the clinics' countries it applies to, comma separated (e.g. ES,DE).",
    )
    requires_serious = models.BooleanField("case must be serious", default=False)
    any_of_outcomes = ArrayField(
        models.CharField(max_length=24),
        default=list,
        blank=True,
        verbose_name="any of these outcomes",
        help_text="Seriousness criteria (or intervention) of which the case needs one; empty: any.",
    )
    categories = ArrayField(
        models.CharField(max_length=32), default=list, blank=True, help_text="Registry categories; empty: any."
    )
    meddra_pt_codes = ArrayField(
        models.CharField(max_length=8),
        default=list,
        blank=True,
        verbose_name="MedDRA preferred terms",
        help_text="8-digit PT codes, comma separated; empty: any.",
    )
    requires_related = models.BooleanField(
        "at least possibly related", default=False, help_text="Certain, probable or possible (WHO-UMC)."
    )
    requires_unexpected = models.BooleanField("case must be unexpected", default=False)
    requires_communicable_disease = models.BooleanField("must involve a communicable disease", default=False)
    supersedes = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
        help_text="A laxer rule this one replaces when both are met (e.g. 7 days over 15 days).",
    )
    clock_days = models.PositiveSmallIntegerField(help_text="Calendar days from the clock start to the due date.")
    recipient = models.CharField(max_length=200, validators=[validate_safe_free_text])
    form = models.CharField(max_length=16, choices=ReportForm.choices)
    legal_basis = models.CharField(max_length=200, blank=True, validators=[validate_safe_free_text])
    active = models.BooleanField(default=True, help_text="Inactive rules make nothing due (rules are never deleted).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(all_countries=True) | ~Q(jurisdiction=[]), name="rule_has_jurisdiction"),
            models.CheckConstraint(condition=Q(clock_days__gte=1), name="rule_clock_positive"),
            models.CheckConstraint(condition=in_choices("form", ReportForm), name="rule_form_valid"),
            models.CheckConstraint(condition=~Q(supersedes=F("pk")), name="rule_not_superseding_itself"),
        ]
        triggers = [pgtrigger.Protect(name="rule_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.name} ({self.clock_days} days)"

    def clean(self):
        errors = {}
        self.jurisdiction = sorted({code.strip().upper() for code in self.jurisdiction if code.strip()})
        if bad := [code for code in self.jurisdiction if not COUNTRY_CODE.fullmatch(code)]:
            errors["jurisdiction"] = f"Not ISO 3166-1 alpha-2 country codes: {', '.join(bad)}."
        elif not self.all_countries and not self.jurisdiction:
            errors["jurisdiction"] = "Name at least one country, or tick 'all countries'."
        if bad := [value for value in self.any_of_outcomes if value not in QUALIFYING_OUTCOMES]:
            errors["any_of_outcomes"] = f"Unknown outcomes: {', '.join(bad)}."
        if bad := [value for value in self.categories if value not in Category.values]:
            errors["categories"] = f"Unknown categories: {', '.join(bad)}."
        self.meddra_pt_codes = [code.strip() for code in self.meddra_pt_codes if code.strip()]
        if bad := [code for code in self.meddra_pt_codes if not PT_CODE.fullmatch(code)]:
            errors["meddra_pt_codes"] = f"Not 8-digit MedDRA codes: {', '.join(bad)}."
        if self.supersedes_id is not None and self.supersedes_id == self.pk:
            errors["supersedes"] = "A rule cannot supersede itself."
        elif self.supersedes_id is not None and self.pk is not None:
            # A cycle (A supersedes B supersedes A) would make every rule in it drop the others: none fires.
            seen, current = {self.pk}, self.supersedes_id
            while current is not None and current not in seen:
                seen.add(current)
                current = ReportingRule.objects.filter(pk=current).values_list("supersedes_id", flat=True).first()
            if current is not None:
                errors["supersedes"] = "Rules cannot supersede each other in a circle: this one leads back here."
        if errors:
            raise ValidationError(errors)

    def applies_to_country(self, country: str) -> bool:
        """Return True when the rule covers clinics in ``country``."""
        return self.all_countries or country.upper() in self.jurisdiction


class CaseRuleState(models.Model):
    """Whether a case met a rule at its last evaluation: a rule is "newly met" only on a change from not met."""

    event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(ReportingRule, on_delete=models.PROTECT, related_name="+")
    met = models.BooleanField()
    evaluated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "rule"], name="caserulestate_unique")]

    def __str__(self) -> str:
        return f"{self.event_id} {'meets' if self.met else 'does not meet'} rule {self.rule_id}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class DueReport(CleanConstraintsMixin):
    """An expedited report a case owes a recipient by ``due_on`` (clock_start + the rule's calendar days).

    Recipient and form are copied from the rule when it becomes due, so a later edit of the rule
    does not change what was owed. Never deleted: submitted (a Submission) or withdrawn with a reason.
    """

    event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="due_reports")
    rule = models.ForeignKey(ReportingRule, on_delete=models.PROTECT, related_name="due_reports")
    clock_start = models.DateField(help_text="The awareness date of the information that made the case reportable.")
    due_on = models.DateField()
    started_by = models.CharField(max_length=12, choices=StartedBy.choices)
    follow_up = models.ForeignKey(FollowUpReport, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    review = models.ForeignKey(MedicalReview, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    recipient = models.CharField(max_length=200)
    form = models.CharField(max_length=16, choices=ReportForm.choices)
    status = models.CharField(max_length=12, choices=DueReportStatus.choices, default=DueReportStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    withdrawn_at = models.DateTimeField(null=True, blank=True, editable=False)
    withdrawn_reason = models.TextField(blank=True, validators=[validate_safe_free_text])

    class Meta:
        verbose_name = "due report"
        verbose_name_plural = "reports due"
        ordering = ["due_on", "id"]
        indexes = [
            # The reminder task: open due reports by due date, reminder not yet sent.
            models.Index(
                fields=["due_on"],
                name="duereport_open_due_idx",
                condition=Q(status=DueReportStatus.OPEN, reminder_sent_at__isnull=True),
            ),
        ]
        constraints = [
            # One open report per case and rule, however many saves race (safety.services locks first).
            models.UniqueConstraint(
                fields=["event", "rule"], condition=Q(status=DueReportStatus.OPEN), name="duereport_one_open_per_rule"
            ),
            models.CheckConstraint(condition=Q(due_on__gte=F("clock_start")), name="duereport_due_after_start"),
            models.CheckConstraint(condition=in_choices("status", DueReportStatus), name="duereport_status_valid"),
            models.CheckConstraint(condition=in_choices("started_by", StartedBy), name="duereport_started_by_valid"),
            models.CheckConstraint(
                condition=~Q(status=DueReportStatus.WITHDRAWN)
                | (Q(withdrawn_at__isnull=False) & ~Q(withdrawn_reason="")),
                name="duereport_withdrawn_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(started_by=StartedBy.FOLLOW_UP) | Q(follow_up__isnull=False),
                name="duereport_follow_up_named",
            ),
        ]
        triggers = [pgtrigger.Protect(name="duereport_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.rule.name} for {self.event.external_id}, due {self.due_on:%Y-%m-%d}"

    @property
    def started_by_label(self) -> str:
        """Return what started the clock, naming the follow-up's number."""
        if self.started_by == StartedBy.FOLLOW_UP and self.follow_up is not None:
            return f"Follow-up {self.follow_up.number}"
        return self.get_started_by_display()


@pghistory.track(pghistory.InsertEvent())
class Submission(models.Model):
    """The record that a due report was sent: when, under which reference, by whom (append-only; late kept)."""

    due_report = models.OneToOneField(DueReport, on_delete=models.PROTECT, related_name="submission")
    submitted_on = models.DateField()
    reference_number = models.CharField(
        max_length=64,
        validators=[validate_safe_identifier],
        help_text="The recipient's acknowledgement or case number.",
    )
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    late = models.BooleanField(editable=False, help_text="Submitted after the due date (kept, never cleared).")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-submitted_on", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reference_number=""), name="submission_has_reference"),
        ]
        triggers = [
            pgtrigger.Protect(name="submission_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.reference_number} on {self.submitted_on:%Y-%m-%d}" + (" (late)" if self.late else "")
