"""Adverse events: never deleted, retracted with a reason."""

from __future__ import annotations

import secrets

import pghistory
import pgtrigger
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.dates import today
from core.models import (
    CleanConstraintsMixin,
    Retractable,
    VersionedModel,
    bump_version_trigger,
    in_choices,
    retraction_has_reason,
    visible_characters_only,
)
from core.rules import trigger_raise
from core.text import validate_safe_free_text, validate_safe_identifier
from events import rules
from events.choices import (
    SERIOUS_CRITERIA,
    ActionTaken,
    CaseStatus,
    Category,
    Causality,
    Expectedness,
    Grade,
    Outcome,
    ReporterType,
)
from events.validators import MEDDRA_CODE_PATTERN, validate_meddra_code
from registry.models import Procedure


def new_event_id() -> str:
    """Return a random external id for an event entered in the registry itself."""
    return "AE-" + secrets.token_hex(6).upper()


def _derived(verbose_name: str, max_length: int) -> models.CharField:
    """Return a field coding derives from the MedDRA code: read-only everywhere, empty when uncoded.

    The database default (not only Django's) lets the importer's INSERTs leave it out.
    """
    return models.CharField(verbose_name, max_length=max_length, blank=True, default="", db_default="", editable=False)


class AdverseEventQuerySet(models.QuerySet):
    def active(self):
        """Return events that count: retracted events are kept for audit only."""
        return self.filter(retracted_at__isnull=True)


_NOTHING_DERIVED = Q(**dict.fromkeys(rules.MEDDRA_DERIVED_FIELDS, ""))
_ALL_DERIVED = Q()
for _field in rules.MEDDRA_DERIVED_FIELDS:
    _ALL_DERIVED &= ~Q(**{_field: ""})

ANY_SERIOUS_CRITERION = Q()
for _field in SERIOUS_CRITERIA.values():
    ANY_SERIOUS_CRITERION |= Q(**{_field: True})


_MEDDRA_CODED_FUNC = f"""
BEGIN
IF NEW.meddra_version = '' THEN
    IF EXISTS (SELECT FROM meddra_meddraversion) THEN
        {trigger_raise(rules.MEDDRA_NOT_CURRENT)}
    END IF;
    RETURN NEW;
END IF;
IF NOT EXISTS (SELECT FROM meddra_meddraversion WHERE version = NEW.meddra_version) THEN
    {trigger_raise(rules.MEDDRA_VERSION_NOT_LOADED)}
END IF;
IF NOT EXISTS (
    SELECT FROM meddra_meddraversion v
    JOIN meddra_llt l ON l.version_id = v.id AND l.code = NEW.meddra_code AND l.currency = 'Y'
    JOIN meddra_mdhier h ON h.version_id = v.id AND h.pt_code = l.pt_code AND h.primary_soc_fg = 'Y'
    WHERE v.version = NEW.meddra_version AND l.pt_code = NEW.meddra_pt_code AND h.soc_code = NEW.meddra_soc_code
) THEN
    {trigger_raise(rules.MEDDRA_NOT_CURRENT)}
END IF;
RETURN NEW;
END;
"""  # noqa: S608 - the rule catalogue's constants


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class AdverseEvent(VersionedModel, Retractable, CleanConstraintsMixin):
    external_id = models.CharField(
        "event id",
        max_length=64,
        unique=True,
        default=new_event_id,
        validators=[validate_safe_identifier],
        help_text="Id in the clinic's own system (kept from imports so reports can be joined back).",
    )
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="adverse_events")
    # description
    category = models.CharField(max_length=32, choices=Category.choices)
    term = models.CharField("verbatim term", max_length=200, validators=[validate_safe_free_text])
    # MedDRA coding: the lowest level term (LLT) chosen; the rest is derived from it by events.services
    # in the dictionary version stored with it (meddra app), never entered.
    meddra_code = models.CharField(
        "MedDRA code (LLT)",
        max_length=12,
        blank=True,
        validators=[validate_meddra_code],
        help_text="The lowest level term's 8-digit code; once a MedDRA release is loaded, a current term of it.",
    )
    meddra_version = _derived("MedDRA version", 16)
    meddra_llt_name = _derived("MedDRA lowest level term", 250)
    meddra_pt_code = _derived("MedDRA preferred term code", 8)
    meddra_pt_name = _derived("MedDRA preferred term", 250)
    meddra_soc_code = _derived("MedDRA primary SOC code", 8)
    meddra_soc_name = _derived("MedDRA primary system organ class", 250)
    onset_on = models.DateField("onset date")
    onset_estimated = models.BooleanField("onset date estimated", default=False)
    recorded_at = models.DateTimeField(auto_now_add=True)
    # Issue 10: the case's life. Awareness starts the expedited-report clocks.
    aware_on = models.DateField(
        "awareness date",
        default=today,
        help_text=(
            "When the clinic first learned of the event (defaults to today; not before onset, not in the future)."
        ),
    )
    case_status = models.CharField(max_length=8, choices=CaseStatus.choices, default=CaseStatus.OPEN, db_default="open")
    narrative = models.TextField(
        "case narrative",
        blank=True,
        db_default="",
        validators=[validate_safe_free_text],
        help_text="What happened, in the reporter's words: presentation, course, treatment (no patient names).",
    )
    reporter_type = models.CharField(
        "reported by",
        max_length=12,
        choices=ReporterType.choices,
        default=ReporterType.CLINICIAN,
        db_default="clinician",
    )
    communicable_disease = models.BooleanField(
        "involves a communicable disease",
        default=False,
        db_default=False,
        help_text="A communicable disease transmitted by, or involved with, the cell product (21 CFR 1271.350(a)).",
    )
    grade = models.PositiveSmallIntegerField("CTCAE grade", choices=Grade.choices)
    # seriousness (ICH E2B)
    serious = models.BooleanField(default=False)
    serious_death = models.BooleanField("results in death", default=False)
    serious_life_threatening = models.BooleanField("life-threatening", default=False)
    serious_hospitalisation = models.BooleanField("requires or prolongs hospitalisation", default=False)
    serious_disability = models.BooleanField("persistent disability / incapacity", default=False)
    serious_congenital_anomaly = models.BooleanField("congenital anomaly / birth defect", default=False)
    serious_medically_important = models.BooleanField("other medically important condition", default=False)
    # causality (WHO-UMC)
    causality_procedure = models.CharField(
        "causality to the procedure", max_length=16, choices=Causality.choices, blank=True
    )
    causality_product = models.CharField(
        "causality to the cell product", max_length=16, choices=Causality.choices, blank=True
    )
    expectedness = models.CharField(max_length=12, choices=Expectedness.choices, blank=True)
    # outcome
    outcome = models.CharField(max_length=24, choices=Outcome.choices, default=Outcome.UNKNOWN)
    resolved_on = models.DateField("resolution date", null=True, blank=True)
    action_taken = models.CharField(max_length=16, choices=ActionTaken.choices, blank=True)
    reporter = models.CharField(
        max_length=120, blank=True, validators=[validate_safe_free_text], help_text="Reporter's role or staff code."
    )
    # retraction (core.models.Retractable): the only way an event leaves the statistics
    updated_at = models.DateTimeField(auto_now=True)

    objects = AdverseEventQuerySet.as_manager()

    class Meta:
        ordering = ["-onset_on", "id"]
        indexes = [
            # Incidence: first qualifying onset per procedure and category, counting events only.
            models.Index(
                fields=["procedure", "category", "onset_on"],
                name="ae_proc_cat_onset_idx",
                condition=Q(retracted_at__isnull=True),
            ),
            # Admin search by verbatim term.
            models.Index(fields=["term"], name="ae_term_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(grade__gte=1) & Q(grade__lte=5), name="ae_grade_1_to_5"),
            models.CheckConstraint(condition=in_choices("category", Category), name="ae_category_valid"),
            models.CheckConstraint(condition=in_choices("outcome", Outcome), name="ae_outcome_valid"),
            models.CheckConstraint(
                condition=in_choices("causality_procedure", Causality, blank=True), name="ae_causality_procedure_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("causality_product", Causality, blank=True), name="ae_causality_product_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("expectedness", Expectedness, blank=True), name="ae_expectedness_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("action_taken", ActionTaken, blank=True), name="ae_action_taken_valid"
            ),
            models.CheckConstraint(
                condition=Q(serious=False) | ANY_SERIOUS_CRITERION, name=rules.SERIOUS_WITHOUT_CRITERION.code
            ),
            models.CheckConstraint(
                condition=Q(serious=True) | ~ANY_SERIOUS_CRITERION, name=rules.CRITERION_WITHOUT_SERIOUS.code
            ),
            models.CheckConstraint(
                condition=~Q(outcome=Outcome.FATAL) | Q(grade=5) | Q(serious_death=True),
                name="ae_fatal_needs_grade5_or_death",
            ),
            models.CheckConstraint(condition=~Q(grade=5) | Q(outcome=Outcome.FATAL), name="ae_grade5_is_fatal"),
            models.CheckConstraint(
                condition=~Q(serious_death=True) | Q(outcome=Outcome.FATAL), name="ae_death_criterion_is_fatal"
            ),
            models.CheckConstraint(
                condition=Q(resolved_on__isnull=True) | Q(resolved_on__gte=models.F("onset_on")),
                name="ae_resolved_not_before_onset",
            ),
            # Issue 10: nobody learns of an event before it starts (the future: events.rules, per request).
            models.CheckConstraint(condition=Q(aware_on__gte=models.F("onset_on")), name=rules.AWARE_BEFORE_ONSET.code),
            models.CheckConstraint(condition=in_choices("case_status", CaseStatus), name="ae_case_status_valid"),
            models.CheckConstraint(condition=in_choices("reporter_type", ReporterType), name="ae_reporter_type_valid"),
            models.CheckConstraint(
                condition=~Q(outcome__in=list(rules.RECOVERED)) | Q(resolved_on__isnull=False),
                name=rules.RECOVERED_NEEDS_RESOLUTION.code,
            ),
            models.CheckConstraint(
                condition=~Q(outcome=Outcome.NOT_RECOVERED) | Q(resolved_on__isnull=True),
                name=rules.NOT_RECOVERED_UNRESOLVED.code,
            ),
            retraction_has_reason("ae"),
            # Hardening 8: no control, bidi or zero-width character in the id (one made every XLSX
            # covering the event fail); validate_safe_identifier says so field by field first.
            visible_characters_only("external_id", prefix="ae_external_id"),
            # Hardening 9: a MedDRA code has 8 digits, or is empty (the dictionary look-up: the triggers below).
            models.CheckConstraint(condition=Q(meddra_code__regex=MEDDRA_CODE_PATTERN), name="ae_meddra_code_shape"),
            # Coded against a dictionary: the version, LLT name, PT and primary SOC all come with the code;
            # coded without one (or not coded): none of them.
            models.CheckConstraint(
                condition=_NOTHING_DERIVED | (~Q(meddra_code="") & _ALL_DERIVED), name=rules.MEDDRA_DERIVED.code
            ),
        ]
        triggers = [
            bump_version_trigger("ae"),
            pgtrigger.Protect(name="ae_never_hard_deleted", operation=pgtrigger.Delete),
            # Backstop of rules.adverse_event_across_errors() (events.services checks first, field by field).
            # A retracted event constrains nothing: it can always be retracted, and restoring re-checks it.
            pgtrigger.Trigger(
                name="ae_matches_procedure_and_patient",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                condition=pgtrigger.Q(new__retracted_at__isnull=True),
                func=f"""
                DECLARE performed date; died date;
                BEGIN
                SELECT p.performed_on, pt.death_date INTO performed, died
                FROM registry_procedure p JOIN registry_patient pt ON pt.id = p.patient_id
                WHERE p.id = NEW.procedure_id;
                IF NEW.onset_on < performed THEN
                    {trigger_raise(rules.ONSET_BEFORE_PROCEDURE)}
                END IF;
                IF NEW.onset_on > died THEN
                    {trigger_raise(rules.ONSET_AFTER_DEATH)}
                END IF;
                IF NEW.outcome = 'fatal' AND died IS NULL THEN
                    {trigger_raise(rules.FATAL_NEEDS_DEATH_DATE)}
                END IF;
                RETURN NEW;
                END;
                """,  # noqa: S608 - the rule catalogue's constants
            ),
            # Backstop of rules.adverse_event_coding_errors() (events.services codes first, field by field):
            # a code set or changed is a current LLT of the version stored with it, with that LLT's PT and
            # primary SOC; an event coded without a version only while no dictionary is loaded at all.
            # Two triggers: an INSERT's condition cannot name OLD. Uncoded rows (every import) skip both.
            *(
                pgtrigger.Trigger(
                    name=name,
                    when=pgtrigger.Before,
                    operation=operation,
                    condition=pgtrigger.Condition(condition),
                    func=_MEDDRA_CODED_FUNC,
                )
                for name, operation, condition in (
                    ("ae_meddra_coded_insert", pgtrigger.Insert, "NEW.meddra_code <> ''"),
                    (
                        "ae_meddra_coded_update",
                        pgtrigger.Update,
                        "NEW.meddra_code <> '' AND (NEW.meddra_code, NEW.meddra_version, NEW.meddra_pt_code, "
                        "NEW.meddra_soc_code) IS DISTINCT FROM (OLD.meddra_code, OLD.meddra_version, "
                        "OLD.meddra_pt_code, OLD.meddra_soc_code)",
                    ),
                )
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.term} (grade {self.grade})"

    def clean(self):
        # Own fields only; events.services holds the event against its procedure and patient.
        errors = rules.adverse_event_errors(self)
        if errors:
            raise ValidationError(errors)
