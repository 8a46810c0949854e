"""The adverse-event inline shown on the procedure page."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from events.models import AdverseEvent
from registry.admin import procedure_frozen
from registry.rules import RETRACTED_FROZEN


class AdverseEventForm(forms.ModelForm):
    """Refuses edits of a retracted event: it is kept exactly as it was for the audit."""

    class Meta:
        model = AdverseEvent
        fields = (
            "external_id",
            "procedure",
            "category",
            "term",
            "meddra_code",
            "onset_on",
            "onset_estimated",
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
        )

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and self.instance.retracted_at and self.has_changed():
            raise ValidationError(RETRACTED_FROZEN.message.format(kind=AdverseEvent._meta.verbose_name))
        return cleaned


class AdverseEventInline(admin.StackedInline):
    model = AdverseEvent
    form = AdverseEventForm
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        ("category", "term", "meddra_code"),
        ("onset_on", "onset_estimated", "grade"),
        (
            "serious",
            "serious_death",
            "serious_life_threatening",
            "serious_hospitalisation",
            "serious_disability",
            "serious_congenital_anomaly",
            "serious_medically_important",
        ),
        ("causality_procedure", "causality_product", "expectedness"),
        ("outcome", "resolved_on", "action_taken", "reporter"),
        "retraction_state",
    )
    readonly_fields = ("retraction_state",)

    # ``obj`` is the procedure: no event is added to or changed under a retracted procedure or patient.
    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not procedure_frozen(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not procedure_frozen(obj)

    @admin.display(description="retraction")
    def retraction_state(self, obj):
        if obj.pk and obj.retracted_at:
            return f"Retracted {obj.retracted_at:%Y-%m-%d} by {obj.retracted_by}: {obj.retraction_reason}"
        return "-"
