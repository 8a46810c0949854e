"""Admin forms of the safety app: the reporting rule, a submission, a withdrawal. Validation is the services'."""

from __future__ import annotations

from django import forms

from core.text import validate_safe_free_text, validate_safe_identifier
from events.choices import Category
from safety.choices import QUALIFYING_OUTCOMES
from safety.models import ReportingRule


class CommaListField(forms.CharField):
    """A list typed as comma-separated values (country codes, MedDRA codes)."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [part.strip().upper() for part in text.split(",") if part.strip()]


class ReportingRuleForm(forms.ModelForm):
    jurisdiction = CommaListField(
        required=False, help_text="ISO 3166-1 alpha-2 codes of the clinics' countries, comma separated (e.g. ES, DE)."
    )
    any_of_outcomes = forms.MultipleChoiceField(
        choices=list(QUALIFYING_OUTCOMES.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Any of these outcomes",
        help_text="The case needs one of those ticked; none ticked: any case.",
    )
    categories = forms.MultipleChoiceField(
        choices=Category.choices, required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: any."
    )
    meddra_pt_codes = CommaListField(
        required=False, label="MedDRA preferred terms", help_text="8-digit PT codes, comma separated; empty: any."
    )

    class Meta:
        model = ReportingRule
        fields = [
            "code",
            "name",
            "active",
            "all_countries",
            "jurisdiction",
            "requires_serious",
            "any_of_outcomes",
            "categories",
            "meddra_pt_codes",
            "requires_related",
            "requires_unexpected",
            "requires_communicable_disease",
            "supersedes",
            "clock_days",
            "recipient",
            "form",
            "legal_basis",
        ]


class SubmissionForm(forms.Form):
    submitted_on = forms.DateField(
        label="Submitted on", widget=forms.DateInput(attrs={"type": "date"}), help_text="Not in the future."
    )
    reference_number = forms.CharField(
        max_length=64,
        validators=[validate_safe_identifier],
        help_text="The recipient's acknowledgement or case number.",
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=2000,
        validators=[validate_safe_free_text],
        help_text="Why the report is not owed (e.g. the reviewer judged the case not reportable).",
    )
