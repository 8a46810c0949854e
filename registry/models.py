"""Clinics, memberships, patients, procedures and their follow-up schedule."""

from __future__ import annotations

import secrets

import pghistory
import pgtrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import ExtractYear

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
from registry import rules
from registry.choices import (
    ALLOGENEIC_ONLY_CELL_TYPES,
    REGISTRY_WIDE_ROLES,
    Carrier,
    CellSource,
    CellType,
    ContactMethod,
    ContactOutcome,
    Guidance,
    Laterality,
    Processing,
    Role,
    Sex,
    Site,
    Target,
    Visit,
)

_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud over the phone


def new_registry_id() -> str:
    """Return a random pseudonymous patient id, never derived from identity."""
    return "P-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def new_procedure_id() -> str:
    """Return a random external id for a procedure entered in the registry itself."""
    return "PR-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Clinic(CleanConstraintsMixin):
    code = models.CharField(
        max_length=32,
        unique=True,
        validators=[validate_safe_identifier],
        help_text="Short unique code, e.g. ES-MAD-01.",
    )
    name = models.CharField(max_length=200, validators=[validate_safe_free_text])
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code, e.g. ES.")
    city = models.CharField(max_length=120, blank=True, validators=[validate_safe_free_text])
    gmp_certified = models.BooleanField("GMP certified", default=False)
    accreditation_body = models.CharField(max_length=120, blank=True, validators=[validate_safe_free_text])
    accreditation_expires_on = models.DateField(null=True, blank=True)
    # Issue 12: the number a patient with a red flag is told to call now.
    phone = models.CharField(
        "clinic phone",
        max_length=32,
        blank=True,
        db_default="",
        validators=[validate_safe_free_text],
        help_text="Shown to patients told to contact the clinic now (e.g. +34 910 000 000).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(country__regex=r"^[A-Z]{2}$"), name="clinic_country_iso2"),
            models.CheckConstraint(condition=Q(code__regex=r"^[A-Za-z0-9_.-]+$"), name="clinic_code_charset"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"

    def clean(self):
        errors = {}
        if self.country and (len(self.country) != 2 or not self.country.isalpha() or not self.country.isupper()):
            errors["country"] = "Country must be an ISO 3166-1 alpha-2 code in capitals, e.g. ES."
        if self.code and not all(ch.isalnum() or ch in "_.-" for ch in self.code):
            errors["code"] = "Code may contain only letters, digits, '.', '_' and '-'."
        if errors:
            raise ValidationError(errors)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Membership(CleanConstraintsMixin):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(
        Clinic,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="memberships",
        help_text="Empty only for the registry-wide roles (registry administrator, safety reviewer).",
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="membership_unique_user_clinic"),
            models.CheckConstraint(
                condition=Q(role=Role.REGISTRY_ADMIN)
                | Q(role=Role.SAFETY_REVIEWER, clinic__isnull=True)
                | (~Q(role__in=REGISTRY_WIDE_ROLES) & Q(clinic__isnull=False)),
                name="membership_clinic_only_for_clinic_roles",
            ),
            models.CheckConstraint(condition=in_choices("role", Role), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        where = self.clinic.code if self.clinic_id else "all clinics"
        return f"{self.user} - {self.get_role_display()} @ {where}"

    def clean(self):
        if self.role not in REGISTRY_WIDE_ROLES and self.clinic_id is None:
            raise ValidationError({"clinic": "A clinician or coordinator must belong to a clinic."})
        if self.role == Role.SAFETY_REVIEWER and self.clinic_id is not None:
            raise ValidationError({"clinic": "A safety reviewer is registry-wide: leave the clinic empty."})


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Patient(VersionedModel, Retractable, CleanConstraintsMixin):
    registry_id = models.CharField(
        max_length=40,
        unique=True,
        default=new_registry_id,
        editable=False,
        validators=[validate_safe_identifier],
        help_text="Pseudonymous id; never derived from name, birth date or record number.",
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    sex = models.CharField(max_length=1, choices=Sex.choices)
    birth_year = models.PositiveSmallIntegerField(help_text="Year only; no full birth dates are stored.")
    enrolled_on = models.DateField()
    consent_on = models.DateField("consent date", null=True, blank=True)
    withdrawn_on = models.DateField(null=True, blank=True)
    death_date = models.DateField(null=True, blank=True)
    # A death date needs a fatal adverse event or a recorded cause (issue 9): "unrelated: stroke", "unknown".
    death_cause = models.CharField(max_length=200, blank=True, db_default="", validators=[validate_safe_free_text])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["registry_id"]
        constraints = [
            models.CheckConstraint(condition=in_choices("sex", Sex), name="patient_sex_valid"),
            models.CheckConstraint(
                condition=Q(birth_year__gte=rules.MIN_BIRTH_YEAR) & Q(birth_year__lte=ExtractYear("enrolled_on")),
                name="patient_birth_year_plausible",
            ),
            models.CheckConstraint(
                condition=Q(birth_year__gte=ExtractYear("enrolled_on") - rules.MAX_AGE_YEARS),
                name="patient_age_plausible",
            ),
            models.CheckConstraint(
                condition=Q(withdrawn_on__isnull=True) | Q(withdrawn_on__gte=models.F("enrolled_on")),
                name="patient_withdrawn_after_enrolled",
            ),
            models.CheckConstraint(
                condition=Q(death_date__isnull=True) | Q(birth_year__lte=ExtractYear("death_date")),
                name="patient_death_after_birth",
            ),
            models.CheckConstraint(
                condition=Q(death_date__isnull=True) | Q(death_date__gte=models.F("enrolled_on")),
                name=rules.DEATH_BEFORE_ENROLLED.code,
            ),
            visible_characters_only("registry_id", prefix="patient_registry_id"),
            retraction_has_reason("patient"),
        ]
        triggers = [
            bump_version_trigger("patient"),
            # Backstops of rules.patient_across_errors() (registry.services checks first, field by field).
            pgtrigger.Trigger(
                name="patient_clinic_keeps_procedures",
                when=pgtrigger.Before,
                operation=pgtrigger.UpdateOf("clinic_id"),
                condition=pgtrigger.Q(old__clinic__df=pgtrigger.F("new__clinic")),
                func=f"""
                IF EXISTS (SELECT 1 FROM registry_procedure p WHERE p.patient_id = NEW.id) THEN
                    {trigger_raise(rules.CLINIC_KEEPS_PROCEDURES)}
                END IF;
                RETURN NEW;
                """,  # noqa: S608 - the rule catalogue's constants
            ),
            # Retracted adverse events constrain nothing (events.rules reads the same way).
            pgtrigger.Trigger(
                name="patient_dates_match_its_rows",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__death_date__df=pgtrigger.F("new__death_date"))
                | pgtrigger.Q(old__withdrawn_on__df=pgtrigger.F("new__withdrawn_on")),
                func=f"""
                IF NEW.death_date IS NOT NULL THEN
                    IF EXISTS (SELECT 1 FROM registry_procedure p
                               WHERE p.patient_id = NEW.id AND p.performed_on > NEW.death_date) THEN
                        {trigger_raise(rules.DEATH_BEFORE_PROCEDURE)}
                    END IF;
                    IF EXISTS (SELECT 1 FROM registry_procedure p JOIN registry_followupvisit v ON v.procedure_id = p.id
                               WHERE p.patient_id = NEW.id AND v.completed_on > NEW.death_date) THEN
                        {trigger_raise(rules.DEATH_BEFORE_VISIT)}
                    END IF;
                    IF EXISTS (SELECT 1 FROM registry_procedure p JOIN events_adverseevent e ON e.procedure_id = p.id
                               WHERE p.patient_id = NEW.id AND e.retracted_at IS NULL
                                 AND e.onset_on > NEW.death_date) THEN
                        {trigger_raise(rules.DEATH_BEFORE_ONSET)}
                    END IF;
                ELSIF EXISTS (SELECT 1 FROM registry_procedure p JOIN events_adverseevent e ON e.procedure_id = p.id
                              WHERE p.patient_id = NEW.id AND e.retracted_at IS NULL AND e.outcome = 'fatal') THEN
                    {trigger_raise(rules.DEATH_KEPT_FOR_FATAL_EVENT)}
                END IF;
                IF NEW.withdrawn_on IS NOT NULL AND EXISTS (
                    SELECT 1 FROM registry_procedure p WHERE p.patient_id = NEW.id AND p.performed_on > NEW.withdrawn_on
                ) THEN
                    {trigger_raise(rules.WITHDRAWN_BEFORE_PROCEDURE)}
                END IF;
                RETURN NEW;
                """,  # noqa: S608 - the rule catalogue's constants
            ),
        ]

    def __str__(self) -> str:
        return self.registry_id

    def clean(self):
        # Own fields only; registry.services holds the patient against its other rows.
        errors = rules.patient_errors(self)
        if errors:
            raise ValidationError(errors)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Procedure(VersionedModel, Retractable, CleanConstraintsMixin):
    external_id = models.CharField(
        "procedure id",
        max_length=64,
        unique=True,
        default=new_procedure_id,
        validators=[validate_safe_identifier],
        help_text="Id in the clinic's own system (kept from imports so reports can be joined back).",
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="procedures")
    # Denormalised from the patient (a trigger keeps them equal) so every row-level
    # filter is one indexed column away.
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="procedures")
    performed_on = models.DateField()
    site = models.CharField("anatomical site", max_length=20, choices=Site.choices)
    laterality = models.CharField(max_length=10, choices=Laterality.choices)
    target = models.CharField(max_length=20, choices=Target.choices, blank=True)
    indication = models.CharField(max_length=200, blank=True, validators=[validate_safe_free_text])
    cell_source = models.CharField(max_length=12, choices=CellSource.choices)
    cell_type = models.CharField(max_length=24, choices=CellType.choices)
    processing = models.CharField(max_length=24, choices=Processing.choices, blank=True)
    cell_dose_millions = models.DecimalField(
        "dose (million cells)", max_digits=10, decimal_places=2, null=True, blank=True
    )
    volume_ml = models.DecimalField("volume (mL)", max_digits=7, decimal_places=2, null=True, blank=True)
    carrier = models.CharField(max_length=20, choices=Carrier.choices, blank=True)
    guidance = models.CharField(max_length=12, choices=Guidance.choices, blank=True)
    product_lot = models.CharField(max_length=64, blank=True, validators=[validate_safe_identifier])
    operator = models.CharField(
        max_length=120,
        blank=True,
        validators=[validate_safe_identifier],
        help_text="Operator's staff code, not a name.",
    )
    # Lost to follow-up: set by a coordinator once enough contact attempts are logged on its visits
    # (settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS); the procedure then leaves the overdue list.
    lost_to_follow_up_on = models.DateField(null=True, blank=True, editable=False)
    lost_to_follow_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-performed_on", "id"]
        indexes = [
            # Row-level scoping plus the changelist's default order (selectors.procedures_for_user).
            models.Index(fields=["clinic", "performed_on"], name="procedure_clinic_date_idx"),
            # Incidence strata: site x cell type grouping over the cut-off.
            models.Index(fields=["site", "cell_type", "performed_on"], name="procedure_strata_idx"),
            # Lot recalls: search by product lot.
            models.Index(fields=["product_lot"], name="procedure_lot_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=in_choices("site", Site), name="procedure_site_valid"),
            models.CheckConstraint(condition=in_choices("laterality", Laterality), name="procedure_laterality_valid"),
            models.CheckConstraint(condition=in_choices("target", Target, blank=True), name="procedure_target_valid"),
            models.CheckConstraint(condition=in_choices("cell_source", CellSource), name="procedure_cell_source_valid"),
            models.CheckConstraint(condition=in_choices("cell_type", CellType), name="procedure_cell_type_valid"),
            models.CheckConstraint(
                condition=in_choices("processing", Processing, blank=True), name="procedure_processing_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("carrier", Carrier, blank=True), name="procedure_carrier_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("guidance", Guidance, blank=True), name="procedure_guidance_valid"
            ),
            models.CheckConstraint(
                condition=Q(cell_dose_millions__isnull=True) | Q(cell_dose_millions__gt=0),
                name="procedure_dose_positive",
            ),
            models.CheckConstraint(
                condition=Q(volume_ml__isnull=True) | Q(volume_ml__gt=0), name="procedure_volume_positive"
            ),
            models.CheckConstraint(
                condition=~Q(cell_type__in=list(ALLOGENEIC_ONLY_CELL_TYPES)) | Q(cell_source=CellSource.ALLOGENEIC),
                name="procedure_donor_cells_allogeneic",
            ),
            models.CheckConstraint(
                condition=~Q(cell_type__in=list(rules.EXPANDED_CELL_TYPES))
                | ~Q(processing=Processing.MINIMALLY_MANIPULATED),
                name="procedure_expanded_processing",
            ),
            visible_characters_only("external_id", prefix="procedure_external_id"),
            visible_characters_only("product_lot", prefix="procedure_product_lot"),
            visible_characters_only("operator", prefix="procedure_operator"),
            retraction_has_reason("procedure"),
        ]
        triggers = [
            bump_version_trigger("procedure"),
            # Backstop of rules.procedure_across_errors() (registry.services checks first, field by field).
            pgtrigger.Trigger(
                name="procedure_matches_patient",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func=f"""
                DECLARE pat RECORD;
                BEGIN
                SELECT clinic_id, death_date, withdrawn_on, birth_year INTO pat
                FROM registry_patient WHERE id = NEW.patient_id;
                IF pat.clinic_id IS DISTINCT FROM NEW.clinic_id THEN
                    {trigger_raise(rules.CLINIC_MISMATCH)}
                END IF;
                IF NEW.performed_on > pat.death_date THEN
                    {trigger_raise(rules.PROCEDURE_AFTER_DEATH)}
                END IF;
                IF NEW.performed_on > pat.withdrawn_on THEN
                    {trigger_raise(rules.PROCEDURE_AFTER_WITHDRAWAL)}
                END IF;
                IF TG_OP = 'UPDATE' AND NEW.performed_on > OLD.performed_on THEN
                    IF EXISTS (SELECT 1 FROM events_adverseevent e WHERE e.procedure_id = NEW.id
                               AND e.retracted_at IS NULL AND e.onset_on < NEW.performed_on) THEN
                        {trigger_raise(rules.PROCEDURE_AFTER_ONSET)}
                    END IF;
                    IF EXISTS (SELECT 1 FROM registry_followupvisit v
                               WHERE v.procedure_id = NEW.id AND v.completed_on < NEW.performed_on) THEN
                        {trigger_raise(rules.PROCEDURE_AFTER_VISIT)}
                    END IF;
                END IF;
                IF EXTRACT(YEAR FROM NEW.performed_on) < pat.birth_year THEN
                    {trigger_raise(rules.PROCEDURE_BEFORE_BIRTH)}
                END IF;
                RETURN NEW;
                END;
                """,  # noqa: S608 - the rule catalogue's constants
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.get_site_display()} {self.get_cell_type_display()} on {self.performed_on}"

    def clean(self):
        # Own fields only; registry.services holds the procedure against its patient, events and visits.
        errors = rules.procedure_errors(self)
        if errors:
            raise ValidationError(errors)


class FollowUpVisitQuerySet(models.QuerySet):
    def overdue(self, on=None):
        """Return the visits to chase on ``on`` (default today): not completed, window closed before ``on``.

        Nobody chases a visit entered in error (the visit, its procedure or its patient retracted), a
        patient who had died or withdrawn by ``on``, or a procedure a coordinator had marked lost to
        follow-up by ``on`` (DESIGN.md 1). Death, withdrawal and the lost mark count from their dates, so a
        past day's list still shows the visits that were chased that day.
        """
        on = on or today()
        return self.filter(
            Q(procedure__patient__death_date__isnull=True) | Q(procedure__patient__death_date__gt=on),
            Q(procedure__patient__withdrawn_on__isnull=True) | Q(procedure__patient__withdrawn_on__gt=on),
            Q(procedure__lost_to_follow_up_on__isnull=True) | Q(procedure__lost_to_follow_up_on__gt=on),
            completed_on__isnull=True,
            window_end__lt=on,
            retracted_at__isnull=True,
            procedure__retracted_at__isnull=True,
            procedure__patient__retracted_at__isnull=True,
        )


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class FollowUpVisit(VersionedModel, Retractable, CleanConstraintsMixin):
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="visits")
    visit = models.CharField(max_length=10, choices=Visit.choices)
    due_on = models.DateField()
    window_start = models.DateField()
    window_end = models.DateField()
    completed_on = models.DateField(null=True, blank=True)
    contact_method = models.CharField(max_length=16, choices=ContactMethod.choices, blank=True)
    notes = models.CharField(max_length=500, blank=True, validators=[validate_safe_free_text])
    updated_at = models.DateTimeField(auto_now=True)

    objects = FollowUpVisitQuerySet.as_manager()

    class Meta:
        ordering = ["procedure_id", "due_on"]
        indexes = [
            # The overdue filter and the coordinators' chase list: open visits by window end.
            models.Index(fields=["window_end"], name="visit_open_window_idx", condition=Q(completed_on__isnull=True)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["procedure", "visit"], name="visit_unique_per_procedure"),
            models.CheckConstraint(condition=in_choices("visit", Visit), name="visit_label_valid"),
            models.CheckConstraint(
                condition=in_choices("contact_method", ContactMethod, blank=True), name="visit_contact_method_valid"
            ),
            models.CheckConstraint(
                condition=Q(window_start__lte=models.F("due_on")) & Q(due_on__lte=models.F("window_end")),
                name="visit_window_ordered",
            ),
            retraction_has_reason("visit"),
        ]
        triggers = [
            bump_version_trigger("visit"),
            # Backstop of rules.visit_across_errors() (registry.services checks first, field by field).
            # Statement-level over the transition table: an import writes a million visits in one
            # statement, and one join over them costs far less than a lookup per row.
            *(
                pgtrigger.Trigger(
                    name=f"visit_dates_match_{operation.lower()}",
                    level=pgtrigger.Statement,
                    when=pgtrigger.After,
                    operation=getattr(pgtrigger, operation),
                    referencing=pgtrigger.Referencing(new="new_visits"),
                    func=f"""
                    IF EXISTS (SELECT FROM new_visits v JOIN registry_procedure p ON p.id = v.procedure_id
                               WHERE v.completed_on < p.performed_on) THEN
                        {trigger_raise(rules.COMPLETED_BEFORE_PROCEDURE)}
                    END IF;
                    IF EXISTS (SELECT FROM new_visits v JOIN registry_procedure p ON p.id = v.procedure_id
                               JOIN registry_patient pt ON pt.id = p.patient_id
                               WHERE v.completed_on > pt.death_date) THEN
                        {trigger_raise(rules.COMPLETED_AFTER_DEATH)}
                    END IF;
                    RETURN NULL;
                    """,  # noqa: S608 - the rule catalogue's constants
                )
                for operation in ("Insert", "Update")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_visit_display()} (due {self.due_on})"

    @property
    def is_overdue(self) -> bool:
        return self.completed_on is None and self.window_end is not None and self.window_end < today()

    def clean(self):
        # Own fields only; registry.services holds the visit against its procedure and patient.
        errors = rules.visit_errors(self)
        if errors:
            raise ValidationError(errors)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ContactAttempt(models.Model):
    """One documented attempt to reach a patient about an open follow-up visit."""

    visit = models.ForeignKey(FollowUpVisit, on_delete=models.PROTECT, related_name="contact_attempts")
    attempted_on = models.DateField()
    method = models.CharField(max_length=16, choices=ContactMethod.choices)
    outcome = models.CharField(max_length=16, choices=ContactOutcome.choices)
    notes = models.CharField(max_length=500, blank=True, validators=[validate_safe_free_text])
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["visit_id", "attempted_on", "id"]
        constraints = [
            models.CheckConstraint(condition=in_choices("method", ContactMethod), name="contact_method_valid"),
            models.CheckConstraint(condition=in_choices("outcome", ContactOutcome), name="contact_outcome_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_method_display()} on {self.attempted_on}: {self.get_outcome_display()}"
