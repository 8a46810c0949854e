"""Query filters of the registry's list endpoints (applied after the row-level limit)."""

from __future__ import annotations

import django_filters as df
from django import forms

from registry.choices import CellSource, CellType, Site, Visit
from registry.models import Clinic, FollowUpVisit, Patient, Procedure
from registry.selectors import filter_overdue


class StrictBooleanField(forms.Field):
    """true/false (or 1/0); empty means "not filtered"; anything else is a 400, never silently ignored."""

    widget = forms.Select(choices=[("", "---------"), ("true", "Yes"), ("false", "No")])
    default_error_messages = {"invalid": "Use true or false."}
    _VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        try:
            return self._VALUES[str(value).lower()]
        except KeyError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class StrictBooleanFilter(df.BooleanFilter):
    """django-filter's BooleanFilter treats ?serious=yes as no filter at all and returns every row."""

    field_class = StrictBooleanField


class IntegerFilter(df.NumberFilter):
    """NumberFilter takes any decimal (?birth_year=0.5); a year or a grade is a whole number."""

    field_class = forms.IntegerField


class ClinicFilter(df.FilterSet):
    gmp_certified = StrictBooleanFilter()

    class Meta:
        model = Clinic
        fields = ("country", "gmp_certified")


class PatientFilter(df.FilterSet):
    clinic = df.CharFilter(field_name="clinic__code", help_text="Clinic code.")
    enrolled_after = df.DateFilter(field_name="enrolled_on", lookup_expr="gte")
    enrolled_before = df.DateFilter(field_name="enrolled_on", lookup_expr="lte")
    withdrawn = StrictBooleanFilter(field_name="withdrawn_on", lookup_expr="isnull", exclude=True)
    birth_year = IntegerFilter()
    retracted = StrictBooleanFilter(field_name="retracted_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Patient
        fields = ("clinic", "sex", "birth_year")


def _overdue(queryset, name, value, visit_id_field):
    return filter_overdue(queryset, overdue=value, visit_id_field=visit_id_field)


class ProcedureFilter(df.FilterSet):
    clinic = df.CharFilter(field_name="clinic__code", help_text="Clinic code.")
    patient = df.CharFilter(field_name="patient__registry_id", help_text="Patient registry id.")
    site = df.ChoiceFilter(choices=Site.choices)
    cell_type = df.ChoiceFilter(choices=CellType.choices)
    cell_source = df.ChoiceFilter(choices=CellSource.choices)
    performed_after = df.DateFilter(field_name="performed_on", lookup_expr="gte")
    performed_before = df.DateFilter(field_name="performed_on", lookup_expr="lte")
    product_lot = df.CharFilter()
    overdue = StrictBooleanFilter(
        method=lambda qs, name, value: _overdue(qs, name, value, "procedure_id"),
        help_text="Procedures with (true) or without (false) a follow-up visit on the overdue list.",
    )
    lost_to_follow_up = StrictBooleanFilter(field_name="lost_to_follow_up_on", lookup_expr="isnull", exclude=True)
    retracted = StrictBooleanFilter(field_name="retracted_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Procedure
        fields = ("clinic", "patient", "site", "cell_type", "cell_source", "laterality", "guidance")


class FollowUpVisitFilter(df.FilterSet):
    clinic = df.CharFilter(field_name="procedure__clinic__code", help_text="Clinic code.")
    procedure = df.CharFilter(field_name="procedure__external_id", help_text="Procedure id.")
    visit = df.ChoiceFilter(choices=Visit.choices)
    due_after = df.DateFilter(field_name="due_on", lookup_expr="gte")
    due_before = df.DateFilter(field_name="due_on", lookup_expr="lte")
    completed = StrictBooleanFilter(field_name="completed_on", lookup_expr="isnull", exclude=True)
    overdue = StrictBooleanFilter(
        method=lambda qs, name, value: _overdue(qs, name, value, "pk"),
        help_text="Visits past their window, not completed, of patients still followed up (not retracted, "
        "died, withdrawn or lost to follow-up).",
    )
    retracted = StrictBooleanFilter(field_name="retracted_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = FollowUpVisit
        fields = ("clinic", "procedure", "visit")
