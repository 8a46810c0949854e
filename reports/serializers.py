"""API shapes of incidence runs: the request, the run, its result rows. Fields listed explicitly."""

from __future__ import annotations

from rest_framework import serializers

from reports.choices import DEFAULT_STRATA, HORIZONS, OUTCOMES, CIMethod, Stratum, Unit, WindowsMode
from reports.models import IncidenceResult, IncidenceRun


class IncidenceRunRequestSerializer(serializers.Serializer):
    strata = serializers.ListField(
        child=serializers.ChoiceField(choices=Stratum.choices), required=False, default=list(DEFAULT_STRATA)
    )
    outcomes = serializers.ListField(
        child=serializers.ChoiceField(choices=list(OUTCOMES)), required=False, allow_empty=True, default=list
    )
    cutoff_on = serializers.DateField()
    onset_window_days = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    ci_method = serializers.ChoiceField(choices=CIMethod.choices, required=False, default=CIMethod.WILSON)
    windows_mode = serializers.ChoiceField(
        choices=WindowsMode.choices,
        required=False,
        default=WindowsMode.REGISTRY,
        help_text="Risk windows: the registry's outcome definitions as they stand now (the default; the run keeps "
        "a copy, returned as outcome_definitions), or open (every outcome from day 0 to the end of follow-up).",
    )
    unit = serializers.ChoiceField(
        choices=Unit.choices,
        required=False,
        default=Unit.PROCEDURE,
        help_text="procedure (the default): each procedure from its own date; patient: each patient once, "
        "from the first procedure on or before the cut-off.",
    )


_KM_FIELDS = [f"km_cuminc_{label}{suffix}" for label, _ in HORIZONS for suffix in ("", "_ci_low", "_ci_high")]
_AJ_FIELDS = [f"aj_cuminc_{label}" for label, _ in HORIZONS]


class OutcomeDefinitionUsedSerializer(serializers.Serializer):
    """One outcome definition a run used, as it stood when the run started."""

    code = serializers.CharField()
    label = serializers.CharField()
    qualifies = serializers.CharField()
    window_start_day = serializers.IntegerField()
    window_end_day = serializers.IntegerField(allow_null=True, help_text="Empty: open, to the end of follow-up.")
    version = serializers.IntegerField(
        allow_null=True, help_text="The stored definition's version; empty for an open window (no definition)."
    )


class IncidenceResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidenceResult
        fields = [
            "stratum",
            "outcome",
            "procedures",
            "cases",
            "person_days",
            "proportion",
            "proportion_ci_low",
            "proportion_ci_high",
            "person_years",
            "rate_per_100py",
            "rate_ci_low",
            "rate_ci_high",
            *_KM_FIELDS,
            *_AJ_FIELDS,
        ]


class IncidenceRunSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    outcome_definitions = OutcomeDefinitionUsedSerializer(many=True, read_only=True)

    class Meta:
        model = IncidenceRun
        fields = [
            "id",
            "status",
            "strata",
            "outcomes",
            "cutoff_on",
            "onset_window_days",
            "ci_method",
            "windows_mode",
            "unit",
            "outcome_definitions",
            "clinic_ids",
            "trigger",
            "requested_by",
            "created_at",
            "claimed_at",
            "finished_at",
            "duration_seconds",
            "attempts",
            "heartbeat_at",
            "published_at",
            "estimated_rows",
            "error",
            "row_count",
        ]
        read_only_fields = fields


class IncidenceRunDetailSerializer(IncidenceRunSerializer):
    results = serializers.SerializerMethodField()

    class Meta(IncidenceRunSerializer.Meta):
        fields = [*IncidenceRunSerializer.Meta.fields, "results"]
        read_only_fields = fields

    def get_results(self, run: IncidenceRun) -> list[dict]:
        return IncidenceResultSerializer(self.context["results"], many=True).data
