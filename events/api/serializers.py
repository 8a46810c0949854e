"""Adverse-event serializers (explicit fields only)."""

from __future__ import annotations

from rest_framework import serializers

from core.text import validate_safe_identifier
from events.models import AdverseEvent
from events.rules import MEDDRA_DERIVED_FIELDS
from registry import selectors
from registry.api.base import RegistrySerializer
from registry.models import Procedure


class AdverseEventSerializer(RegistrySerializer):
    event_id = serializers.CharField(
        source="external_id",
        max_length=64,
        required=False,
        # Declared here (it is renamed), so the model field's validators must be named again.
        validators=[validate_safe_identifier],
        help_text="Your system's id for the event; generated when omitted; fixed after creation.",
    )
    procedure = serializers.SlugRelatedField(
        slug_field="external_id", queryset=Procedure.objects.none(), help_text="The procedure id."
    )
    retracted = serializers.BooleanField(source="is_retracted", read_only=True)

    class Meta:
        model = AdverseEvent
        fields = (
            "id",
            "event_id",
            "procedure",
            "category",
            "term",
            "meddra_code",
            *MEDDRA_DERIVED_FIELDS,
            "onset_on",
            "onset_estimated",
            "recorded_at",
            "aware_on",
            "case_status",
            "narrative",
            "reporter_type",
            "communicable_disease",
            "grade",
            "serious",
            "serious_death",
            "serious_life_threatening",
            "serious_hospitalisation",
            "serious_disability",
            "serious_congenital_anomaly",
            "serious_medically_important",
            "causality_procedure",
            "causality_product",
            "expectedness",
            "outcome",
            "resolved_on",
            "action_taken",
            "reporter",
            "retracted",
            "retracted_at",
            "retraction_reason",
            "version",
            "updated_at",
        )
        read_only_fields = (
            "id",
            # Derived by coding from meddra_code (the LLT) in the newest loaded MedDRA version.
            *MEDDRA_DERIVED_FIELDS,
            "recorded_at",
            "retracted",
            "retracted_at",
            "retraction_reason",
            "version",
            "updated_at",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scope("procedure", selectors.procedures_for_user)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["event_id"].read_only = True
