"""Query filters of the registry's list endpoints (applied after the row-level limit)."""

from __future__ import annotations

import django_filters as df

from registry.choices import CellSource, CellType, Site, Visit
from registry.models import FollowUpVisit, Patient, Procedure
from registry.rules import today


class PatientFilter(df.FilterSet):
    clinic = df.CharFilter(field_name="clinic__code", help_text="Clinic code.")
    enrolled_after = df.DateFilter(field_name="enrolled_on", lookup_expr="gte")
    enrolled_before = df.DateFilter(field_name="enrolled_on", lookup_expr="lte")
    withdrawn = df.BooleanFilter(field_name="withdrawn_on", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Patient
        fields = ("clinic", "sex", "birth_year")


def _overdue(queryset, name, value, visit_path):
    open_late = FollowUpVisit.objects.overdue(on=today()).values(visit_path)
    return queryset.filter(pk__in=open_late) if value else queryset.exclude(pk__in=open_late)


class ProcedureFilter(df.FilterSet):
    clinic = df.CharFilter(field_name="clinic__code", help_text="Clinic code.")
    patient = df.CharFilter(field_name="patient__registry_id", help_text="Patient registry id.")
    site = df.ChoiceFilter(choices=Site.choices)
    cell_type = df.ChoiceFilter(choices=CellType.choices)
    cell_source = df.ChoiceFilter(choices=CellSource.choices)
    performed_after = df.DateFilter(field_name="performed_on", lookup_expr="gte")
    performed_before = df.DateFilter(field_name="performed_on", lookup_expr="lte")
    product_lot = df.CharFilter()
    overdue = df.BooleanFilter(
        method=lambda qs, name, value: _overdue(qs, name, value, "procedure_id"),
        help_text="Procedures with (true) or without (false) a follow-up visit past its window.",
    )

    class Meta:
        model = Procedure
        fields = ("clinic", "patient", "site", "cell_type", "cell_source", "laterality", "guidance")


class FollowUpVisitFilter(df.FilterSet):
    clinic = df.CharFilter(field_name="procedure__clinic__code", help_text="Clinic code.")
    procedure = df.CharFilter(field_name="procedure__external_id", help_text="Procedure id.")
    visit = df.ChoiceFilter(choices=Visit.choices)
    due_after = df.DateFilter(field_name="due_on", lookup_expr="gte")
    due_before = df.DateFilter(field_name="due_on", lookup_expr="lte")
    completed = df.BooleanFilter(field_name="completed_on", lookup_expr="isnull", exclude=True)
    overdue = df.BooleanFilter(
        method=lambda qs, name, value: _overdue(qs, name, value, "pk"),
        help_text="Visits past their window and not completed.",
    )

    class Meta:
        model = FollowUpVisit
        fields = ("clinic", "procedure", "visit")
