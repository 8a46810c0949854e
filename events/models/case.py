"""Issue 10: the case's life after the initial report (follow-ups, reference safety information, reviews)."""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.dates import today
from core.models import CleanConstraintsMixin, in_choices
from core.rules import trigger_raise
from core.text import validate_safe_free_text
from events import rules
from events.choices import SERIOUS_CRITERIA, Category, Causality, Expectedness
from events.models.adverse_event import ANY_SERIOUS_CRITERION, AdverseEvent
from registry.choices import CellType


@pghistory.track(pghistory.InsertEvent())
class FollowUpReport(CleanConstraintsMixin, models.Model):
    """A dated follow-up on an event: a narrative and the changes it brought (append-only).

    ``changes`` is {field: [old, new]} for the event fields (events.choices.FOLLOW_UP_FIELDS) the
    follow-up changed, applied to the event through events.services in the same transaction.
    """

    event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="follow_ups")
    number = models.PositiveSmallIntegerField(help_text="1 for the first follow-up of the event, then 2, 3...")
    received_on = models.DateField(
        "information received on", help_text="When the clinic learned what this follow-up reports (its awareness date)."
    )
    narrative = models.TextField(validators=[validate_safe_free_text])
    changes = models.JSONField(default=dict, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["event", "number"], name="followup_unique_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="followup_number_positive"),
            models.CheckConstraint(condition=~Q(narrative=""), name=rules.FOLLOW_UP_NARRATIVE.code),
        ]
        triggers = [
            pgtrigger.Protect(name="followup_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
            # Backstop of rules.follow_up_errors() (events.services checks first, field by field).
            pgtrigger.Trigger(
                name="followup_matches_event",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func=f"""
                DECLARE aware date; retracted timestamptz;
                BEGIN
                SELECT aware_on, retracted_at INTO aware, retracted FROM events_adverseevent WHERE id = NEW.event_id;
                IF retracted IS NOT NULL THEN
                    {trigger_raise(rules.FOLLOW_UP_ON_RETRACTED)}
                END IF;
                IF NEW.received_on < aware THEN
                    {trigger_raise(rules.FOLLOW_UP_RECEIVED_BEFORE_AWARENESS)}
                END IF;
                RETURN NEW;
                END;
                """,  # noqa: S608 - the rule catalogue's constants
            ),
        ]

    def __str__(self) -> str:
        return f"Follow-up {self.number} of {self.event_id} ({self.received_on})"

    def clean(self):
        # Own fields and the event's awareness date; events.services applies the changes to the event.
        event = self.event if self.event_id else None
        errors = rules.follow_up_errors(
            received_on=self.received_on, narrative=self.narrative, aware_on=getattr(event, "aware_on", None)
        )
        if errors:
            raise ValidationError(errors)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent())
class ReferenceSafetyInformation(models.Model):
    """An expected event in the registry's reference safety information (issue 10).

    Per cell type (blank: every cell type), a category (blank: judged by the MedDRA preferred term)
    and/or a MedDRA preferred term. An event matching an active entry is expected; retired entries
    are kept (retired_on) so an old review can be read against the list as it stood.
    """

    cell_type = models.CharField(max_length=24, choices=CellType.choices, blank=True)
    category = models.CharField(max_length=32, choices=Category.choices, blank=True)
    meddra_pt_code = models.CharField("MedDRA preferred term code", max_length=8, blank=True)
    term = models.CharField(
        "expected term", max_length=200, validators=[validate_safe_free_text], help_text="As the reviewer reads it."
    )
    source = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_safe_free_text],
        help_text="Where the expectation comes from (e.g. the patient guide, a product's labelling).",
    )
    added_on = models.DateField(default=today)
    retired_on = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = "reference safety information entry"
        verbose_name_plural = "reference safety information"
        ordering = ["cell_type", "category", "term"]
        constraints = [
            models.CheckConstraint(condition=~Q(category="", meddra_pt_code=""), name="rsi_category_or_pt"),
            models.CheckConstraint(condition=in_choices("category", Category, blank=True), name="rsi_category_valid"),
            models.CheckConstraint(condition=in_choices("cell_type", CellType, blank=True), name="rsi_cell_type_valid"),
            models.CheckConstraint(
                condition=Q(retired_on__isnull=True) | Q(retired_on__gte=models.F("added_on")),
                name="rsi_retired_after_added",
            ),
        ]
        triggers = [pgtrigger.Protect(name="rsi_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.term} ({self.get_cell_type_display() or 'every cell type'})"


@pghistory.track(pghistory.InsertEvent())
class MedicalReview(CleanConstraintsMixin, models.Model):
    """A safety reviewer's assessment of an event (append-only; the latest one is current).

    The site's own seriousness, causality and expectedness stay on the event: a disagreement is
    kept, not overwritten.
    """

    event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(auto_now_add=True)
    serious = models.BooleanField()
    serious_death = models.BooleanField("results in death", default=False)
    serious_life_threatening = models.BooleanField("life-threatening", default=False)
    serious_hospitalisation = models.BooleanField("requires or prolongs hospitalisation", default=False)
    serious_disability = models.BooleanField("persistent disability / incapacity", default=False)
    serious_congenital_anomaly = models.BooleanField("congenital anomaly / birth defect", default=False)
    serious_medically_important = models.BooleanField("other medically important condition", default=False)
    causality_procedure = models.CharField("causality to the procedure", max_length=16, choices=Causality.choices)
    causality_product = models.CharField("causality to the cell product", max_length=16, choices=Causality.choices)
    expectedness = models.CharField(max_length=12, choices=Expectedness.choices)
    expectedness_basis = models.ForeignKey(
        ReferenceSafetyInformation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The reference safety information entry that makes the event expected, if any.",
    )
    comment = models.TextField(blank=True, validators=[validate_safe_free_text])

    class Meta:
        ordering = ["event_id", "-reviewed_at", "-id"]
        get_latest_by = ["reviewed_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=in_choices("causality_procedure", Causality), name="review_causality_procedure_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("causality_product", Causality), name="review_causality_product_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("expectedness", Expectedness), name="review_expectedness_valid"
            ),
            models.CheckConstraint(
                condition=Q(serious=False) | ANY_SERIOUS_CRITERION, name="review_serious_needs_criterion"
            ),
            models.CheckConstraint(
                condition=Q(serious=True) | ~ANY_SERIOUS_CRITERION, name="review_criterion_needs_serious"
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="review_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
            pgtrigger.Trigger(
                name="review_not_on_retracted_event",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func=f"""
                BEGIN
                IF EXISTS (SELECT FROM events_adverseevent WHERE id = NEW.event_id AND retracted_at IS NOT NULL) THEN
                    {trigger_raise(rules.FOLLOW_UP_ON_RETRACTED)}
                END IF;
                RETURN NEW;
                END;
                """,
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.reviewed_at:%Y-%m-%d}" if self.reviewed_at else "unsaved"
        return f"Review of {self.event_id} by {self.reviewer_id} ({when})"

    def clean(self):
        errors = rules.medical_review_errors(self)
        if errors:
            raise ValidationError(errors)

    @property
    def criteria(self) -> list[str]:
        """Return the seriousness criteria (import codes) this review names."""
        return [code for code, field in SERIOUS_CRITERIA.items() if getattr(self, field)]
