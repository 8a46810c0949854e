"""Serializers of a case's follow-up reports and medical reviews (explicit fields only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import StrictCharField
from core.text import validate_safe_free_text
from events.choices import FOLLOW_UP_FIELDS, SERIOUS_CRITERIA
from events.models import AdverseEvent, FollowUpReport, MedicalReview, ReferenceSafetyInformation
from registry.api.base import RegistrySerializer


class FollowUpChangesSerializer(RegistrySerializer):
    """The event fields a follow-up changes, with their new values; any other field is refused."""

    class Meta:
        model = AdverseEvent
        fields = FOLLOW_UP_FIELDS
        extra_kwargs = {name: {"required": False} for name in FOLLOW_UP_FIELDS}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {"non_field_errors": [f"A follow-up cannot change these fields: {', '.join(unknown)}."]}
                )
        return super().to_internal_value(data)


class FollowUpReportCreateSerializer(serializers.Serializer):
    """A follow-up report as sent: when the news came, what it says, and what it changes on the event."""

    received_on = serializers.DateField(
        help_text="When the clinic learned what this follow-up reports (not before the event's awareness date)."
    )
    narrative = StrictCharField(
        max_length=20000, validators=[validate_safe_free_text], help_text="What was learned (required)."
    )
    changes = FollowUpChangesSerializer(
        required=False,
        help_text="The event fields this follow-up changes, with their new values (applied to the event).",
    )


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "type": "array",
            "items": {"type": "string", "nullable": True},
            "minItems": 2,
            "maxItems": 2,
        },
        "description": 'What the follow-up changed on the event: {field: [old, new]}, values as text ("true", '
        '"2024-03-18", "recovered"), null for "not set".',
    }
)
class ChangesField(serializers.JSONField):
    pass


class FollowUpReportSerializer(RegistrySerializer):
    """A follow-up report as stored (append-only), numbered 1, 2, 3... per event."""

    changes = ChangesField(read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who recorded it (username)."
    )

    class Meta:
        model = FollowUpReport
        fields = ("id", "number", "received_on", "narrative", "changes", "created_by", "created_at")
        read_only_fields = fields


class ReferenceSafetyInformationSerializer(RegistrySerializer):
    """An expected event of the registry's reference safety information."""

    class Meta:
        model = ReferenceSafetyInformation
        fields = ("id", "cell_type", "category", "meddra_pt_code", "term", "source", "added_on", "retired_on")
        read_only_fields = fields


class MedicalReviewSerializer(RegistrySerializer):
    """A safety reviewer's assessment of an event (append-only; the latest is current), kept beside the site's."""

    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True, help_text="The reviewer (username).")
    expectedness_basis = ReferenceSafetyInformationSerializer(
        read_only=True,
        allow_null=True,
        help_text="The reference safety information entry that makes the event expected (set by the registry).",
    )

    class Meta:
        model = MedicalReview
        fields = (
            "id",
            "reviewer",
            "reviewed_at",
            "serious",
            *SERIOUS_CRITERIA.values(),
            "causality_procedure",
            "causality_product",
            "expectedness",
            "expectedness_basis",
            "comment",
        )
        read_only_fields = ("id", "reviewer", "reviewed_at", "expectedness_basis")
        extra_kwargs = {"comment": {"max_length": 20000}}
