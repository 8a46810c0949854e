"""Query filters of the adverse-event list (applied after the row-level limit)."""

from __future__ import annotations

import django_filters as df

from events.choices import Category, Grade, Outcome
from events.models import AdverseEvent
from registry.api.filters import IntegerFilter, StrictBooleanFilter
from registry.choices import CellSource, CellType, Site


class AdverseEventFilter(df.FilterSet):
    clinic = df.CharFilter(field_name="procedure__clinic__code", help_text="Clinic code.")
    procedure = df.CharFilter(field_name="procedure__external_id", help_text="Procedure id.")
    patient = df.CharFilter(field_name="procedure__patient__registry_id", help_text="Patient registry id.")
    site = df.ChoiceFilter(field_name="procedure__site", choices=Site.choices)
    cell_type = df.ChoiceFilter(field_name="procedure__cell_type", choices=CellType.choices)
    cell_source = df.ChoiceFilter(field_name="procedure__cell_source", choices=CellSource.choices)
    category = df.ChoiceFilter(choices=Category.choices)
    outcome = df.ChoiceFilter(choices=Outcome.choices)
    grade = df.TypedChoiceFilter(choices=Grade.choices, coerce=int)
    grade_min = IntegerFilter(field_name="grade", lookup_expr="gte", help_text="Grade at least this (1-5).")
    serious = StrictBooleanFilter()
    onset_after = df.DateFilter(field_name="onset_on", lookup_expr="gte")
    onset_before = df.DateFilter(field_name="onset_on", lookup_expr="lte")
    retracted = StrictBooleanFilter(field_name="retracted_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = AdverseEvent
        fields = ("clinic", "procedure", "patient", "category", "grade", "serious", "outcome")
