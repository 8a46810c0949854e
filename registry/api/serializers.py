"""Serializers of clinics, patients, procedures and follow-up visits (explicit fields only)."""

from __future__ import annotations

from rest_framework import serializers

from core.api.fields import StrictCharField
from core.text import validate_safe_free_text, validate_safe_identifier
from registry import selectors
from registry.api.base import RegistrySerializer
from registry.choices import ContactMethod
from registry.models import Clinic, ContactAttempt, FollowUpVisit, Patient, Procedure


class ClinicSerializer(RegistrySerializer):
    class Meta:
        model = Clinic
        fields = (
            "id",
            "code",
            "name",
            "country",
            "city",
            "gmp_certified",
            "accreditation_body",
            "accreditation_expires_on",
        )
        read_only_fields = fields


RETRACTION_FIELDS = ("retracted", "retracted_at", "retraction_reason")


class PatientSerializer(RegistrySerializer):
    retracted = serializers.BooleanField(source="is_retracted", read_only=True)
    clinic = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Clinic.objects.none(),
        required=False,
        help_text="Clinic code; may be omitted by a user who belongs to exactly one clinic.",
    )

    class Meta:
        model = Patient
        fields = (
            "id",
            "registry_id",
            "clinic",
            "sex",
            "birth_year",
            "enrolled_on",
            "consent_on",
            "withdrawn_on",
            "death_date",
            "death_cause",
            "retracted",
            "retracted_at",
            "retraction_reason",
            "version",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "registry_id", *RETRACTION_FIELDS, "version", "created_at", "updated_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scope("clinic", selectors.clinics_for_user)


class ProcedureSerializer(RegistrySerializer):
    procedure_id = serializers.CharField(
        source="external_id",
        max_length=64,
        required=False,
        # Declared here (it is renamed), so the model field's validators must be named again.
        validators=[validate_safe_identifier],
        help_text="Your system's id for the procedure; generated when omitted; fixed after creation.",
    )
    patient = serializers.SlugRelatedField(slug_field="registry_id", queryset=Patient.objects.none())
    clinic = serializers.SlugRelatedField(slug_field="code", read_only=True)
    retracted = serializers.BooleanField(source="is_retracted", read_only=True)

    class Meta:
        model = Procedure
        fields = (
            "id",
            "procedure_id",
            "patient",
            "clinic",
            "performed_on",
            "site",
            "laterality",
            "target",
            "indication",
            "cell_source",
            "cell_type",
            "processing",
            "cell_dose_millions",
            "volume_ml",
            "carrier",
            "guidance",
            "product_lot",
            "operator",
            "lost_to_follow_up_on",
            "retracted",
            "retracted_at",
            "retraction_reason",
            "version",
            "created_at",
            "updated_at",
        )
        read_only_fields = (
            "id",
            "clinic",
            "lost_to_follow_up_on",
            *RETRACTION_FIELDS,
            "version",
            "created_at",
            "updated_at",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scope("patient", selectors.patients_for_user)
        if self.instance is not None:
            self.fields["procedure_id"].read_only = True


class FollowUpVisitSerializer(RegistrySerializer):
    procedure = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    overdue = serializers.SerializerMethodField(
        help_text="On the overdue list: window closed, not completed, and the patient still followed up."
    )
    retracted = serializers.BooleanField(source="is_retracted", read_only=True)

    class Meta:
        model = FollowUpVisit
        fields = (
            "id",
            "procedure",
            "visit",
            "due_on",
            "window_start",
            "window_end",
            "completed_on",
            "contact_method",
            "notes",
            "overdue",
            "retracted",
            "retracted_at",
            "retraction_reason",
            "version",
            "updated_at",
        )
        read_only_fields = (
            "id",
            "procedure",
            "visit",
            "due_on",
            "window_start",
            "window_end",
            *RETRACTION_FIELDS,
            "version",
            "updated_at",
        )

    def get_overdue(self, visit) -> bool:
        return selectors.visit_is_overdue(visit)


class RetractionSerializer(serializers.Serializer):
    reason = StrictCharField(
        max_length=2000,
        validators=[validate_safe_free_text],
        help_text="Why the record is withdrawn (duplicate, wrong patient, entered in error...).",
    )


class ContactAttemptSerializer(RegistrySerializer):
    # Named as on the visit (one vocabulary, one name in the schema).
    contact_method = serializers.ChoiceField(
        source="method",
        choices=ContactMethod.choices,
        error_messages={
            "invalid_choice": f'"{{input}}" is not a valid choice. Allowed values: {", ".join(ContactMethod.values)}.'
        },
    )
    recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ContactAttempt
        fields = ("id", "attempted_on", "contact_method", "outcome", "notes", "recorded_by", "created_at")
        read_only_fields = ("id", "recorded_by", "created_at")
