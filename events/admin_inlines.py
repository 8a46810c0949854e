"""The adverse-event inline shown on the procedure page, and the MedDRA term picker both event forms share."""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteMixin, get_select2_language
from django.core.exceptions import ValidationError
from django.urls import reverse

from events.models import AdverseEvent
from meddra import selectors as meddra_selectors
from registry.admin import procedure_frozen
from registry.rules import RETRACTED_FROZEN

MEDDRA_TERMS_URL_NAME = "events_adverseevent_meddra_terms"


class MeddraTermSelect(forms.Select):
    """The admin's autocomplete (select2) over the current LLT names of a MedDRA version; the value is the code.

    Django's AutocompleteSelect serves a foreign key; the event keeps the LLT's code as text, so this
    widget asks the event admin's own term search (AdverseEventAdmin.meddra_terms_view) instead, with
    the admin's own select2 files and styling.
    """

    def __init__(self, *, url: str, version, attrs=None):
        super().__init__(attrs)
        self.url = url
        self.version = version
        self.i18n_name = get_select2_language()

    media = AutocompleteMixin.media

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = super().build_attrs(base_attrs, extra_attrs=extra_attrs)
        css = attrs.get("class", "")
        attrs.update(
            {
                "data-ajax--cache": "true",
                "data-ajax--delay": 250,
                "data-ajax--type": "GET",
                "data-ajax--url": self.url,
                "data-theme": "admin-autocomplete",
                "data-allow-clear": "true",
                "data-placeholder": f"Type the verbatim term (MedDRA {self.version.version})",
                "lang": self.i18n_name,
                "class": f"{css} admin-autocomplete".strip(),
            }
        )
        return attrs

    def optgroups(self, name, value, attrs=None):
        # Only the chosen code is an option; select2 fetches the others as the user types.
        codes = [v for v in value if v]
        options = [self.create_option(name, "", "", not codes, 0)]
        for index, code in enumerate(codes, start=1):
            options.append(self.create_option(name, code, meddra_selectors.llt_label(self.version, code), True, index))
        return [(None, options, 0)]


class MeddraCodingAdminMixin:
    """Codes by typing the verbatim term once a MedDRA release is loaded (a plain 8-digit code field before)."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "meddra_code":
            version = meddra_selectors.latest_version()
            if version is not None:
                url = reverse(f"{self.admin_site.name}:{MEDDRA_TERMS_URL_NAME}")
                kwargs["widget"] = MeddraTermSelect(url=url, version=version)
                kwargs["help_text"] = (
                    f"Type the verbatim term and pick a current lowest level term of MedDRA {version.version}; "
                    "its preferred term and primary system organ class follow."
                )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="MedDRA coding")
    def meddra_coding(self, obj):
        if obj is None or not obj.meddra_code:
            return "-"
        if not obj.meddra_version:
            return f"{obj.meddra_code} (coded without a loaded dictionary)"
        return (
            f"LLT {obj.meddra_llt_name} ({obj.meddra_code}); PT {obj.meddra_pt_name} ({obj.meddra_pt_code}); "
            f"primary SOC {obj.meddra_soc_name} ({obj.meddra_soc_code}); MedDRA {obj.meddra_version}"
        )


# Issue 10's case fields: a form that leaves them out (an older client, a script) keeps the stored value,
# or the model's default for a new event (aware today, open, reported by a clinician).
CASE_FIELDS_WITH_DEFAULTS = ("aware_on", "case_status", "reporter_type")


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
            "aware_on",
            "case_status",
            "reporter_type",
            "communicable_disease",
            "narrative",
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in CASE_FIELDS_WITH_DEFAULTS:
            if name in self.fields:
                self.fields[name].required = False

    def _default(self, name: str):
        if self.instance.pk:
            return getattr(self.instance, name)
        return AdverseEvent._meta.get_field(name).get_default()

    def clean_aware_on(self):
        return self.cleaned_data.get("aware_on") or self._default("aware_on")

    def clean_case_status(self):
        return self.cleaned_data.get("case_status") or self._default("case_status")

    def clean_reporter_type(self):
        return self.cleaned_data.get("reporter_type") or self._default("reporter_type")

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and self.instance.retracted_at and self.has_changed():
            raise ValidationError(RETRACTED_FROZEN.message.format(kind=AdverseEvent._meta.verbose_name))
        return cleaned


class AdverseEventInline(MeddraCodingAdminMixin, admin.StackedInline):
    model = AdverseEvent
    form = AdverseEventForm
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        ("category", "term", "meddra_code"),
        "meddra_coding",
        ("onset_on", "onset_estimated", "aware_on", "grade"),
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
    readonly_fields = ("retraction_state", "meddra_coding")

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
