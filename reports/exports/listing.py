"""The SELECTs behind the CSV exports: de-identified line listing and overdue follow-up visits.

Each function takes an already scoped and filtered queryset (selectors, then the API's
filter set) and returns (columns, queryset of one row per line, in column order). Every
output column is an annotation named "x_<column>" so no alias clashes with a model field;
the CSV header is written from ``columns``.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import CharField, DateField, F, Func, IntegerField, QuerySet, TextField, Value
from django.db.models.functions import Cast

from events.choices import SERIOUS_CRITERIA

TOP_CODED_AGE = 90  # age at procedure (years) from which the birth year is shown as "90+"
TOP_CODED_LABEL = f"{TOP_CODED_AGE}+"

LINE_LISTING_COLUMNS: tuple[str, ...] = (
    "registry_id",
    "birth_year",
    "sex",
    "clinic",
    "country",
    "procedure_id",
    "performed_on",
    "site",
    "laterality",
    "cell_source",
    "cell_type",
    "event_id",
    "category",
    "term",
    "meddra_code",
    "onset_on",
    "days_from_procedure",
    "grade",
    "serious",
    "serious_criteria",
    "causality_procedure",
    "causality_product",
    "outcome",
    "resolved_on",
)
RETRACTED_COLUMN = "retracted"

OVERDUE_COLUMNS: tuple[str, ...] = (
    "clinic",
    "registry_id",
    "procedure_id",
    "performed_on",
    "visit",
    "due_on",
    "window_end",
    "days_overdue",
)


class DaysBetween(Func):
    """(later - earlier) in whole days: PostgreSQL's date - date is an integer."""

    template = "(%(expressions)s)"
    arg_joiner = " - "
    output_field = IntegerField()


class TopCodedBirthYear(Func):
    """The birth year as text, or "90+" when the age at the procedure (year - birth year) is 90 or more."""

    template = (
        f"CASE WHEN EXTRACT(YEAR FROM %(performed_on)s) - %(birth_year)s >= {TOP_CODED_AGE} "
        f"THEN '{TOP_CODED_LABEL}' ELSE (%(birth_year)s)::text END"
    )
    output_field = TextField()

    def __init__(self, performed_on: str, birth_year: str):
        super().__init__(F(performed_on), F(birth_year))

    def as_sql(self, compiler, connection, **extra):
        performed_on, params_p = compiler.compile(self.source_expressions[0])
        birth_year, params_b = compiler.compile(self.source_expressions[1])
        sql = self.template % {"performed_on": performed_on, "birth_year": birth_year}
        # birth_year appears twice in the template
        return sql, (*params_p, *params_b, *params_b)


class SeriousCriteria(Func):
    """The ICH E2B criteria that hold, as codes joined by ";" (empty for a non-serious event)."""

    output_field = TextField()

    def __init__(self):
        super().__init__(*(F(field) for field in SERIOUS_CRITERIA.values()))

    def as_sql(self, compiler, connection, **extra):
        parts, params = [], []
        for code, expression in zip(SERIOUS_CRITERIA, self.source_expressions, strict=True):
            sql, p = compiler.compile(expression)
            parts.append(f"CASE WHEN {sql} THEN '{code}' END")
            params.extend(p)
        return f"concat_ws(';', {', '.join(parts)})", tuple(params)


def _as_text(field: str):
    # PostgreSQL prints a boolean cast to text as true/false (COPY itself would print t/f).
    return Cast(field, CharField())


def line_listing(qs: QuerySet, *, include_retracted: bool) -> tuple[tuple[str, ...], QuerySet]:
    """Return the line listing's columns and the queryset selecting them, de-identified.

    ``qs`` is the user's scoped and filtered adverse events. The patient appears only by
    the pseudonymous registry id, the birth year is top-coded, and no free-text field
    other than the verbatim term (the event's description) is exported.
    """
    expressions = {
        "registry_id": F("procedure__patient__registry_id"),
        "birth_year": TopCodedBirthYear("procedure__performed_on", "procedure__patient__birth_year"),
        "sex": F("procedure__patient__sex"),
        "clinic": F("procedure__clinic__code"),
        "country": F("procedure__clinic__country"),
        "procedure_id": F("procedure__external_id"),
        "performed_on": F("procedure__performed_on"),
        "site": F("procedure__site"),
        "laterality": F("procedure__laterality"),
        "cell_source": F("procedure__cell_source"),
        "cell_type": F("procedure__cell_type"),
        "event_id": F("external_id"),
        "category": F("category"),
        "term": F("term"),
        "meddra_code": F("meddra_code"),
        "onset_on": F("onset_on"),
        "days_from_procedure": DaysBetween(F("onset_on"), F("procedure__performed_on")),
        "grade": F("grade"),
        "serious": _as_text("serious"),
        "serious_criteria": SeriousCriteria(),
        "causality_procedure": F("causality_procedure"),
        "causality_product": F("causality_product"),
        "outcome": F("outcome"),
        "resolved_on": F("resolved_on"),
    }
    columns = LINE_LISTING_COLUMNS
    if include_retracted:
        expressions[RETRACTED_COLUMN] = Func(
            F("retracted_at"), template="(%(expressions)s IS NOT NULL)::text", output_field=TextField()
        )
        columns = (*columns, RETRACTED_COLUMN)
    else:
        qs = qs.filter(retracted_at__isnull=True)
    return columns, _select(qs.order_by("onset_on", "id"), expressions)


def overdue_visits(qs: QuerySet, *, on: dt.date) -> tuple[tuple[str, ...], QuerySet]:
    """Return the overdue report's columns and the queryset selecting them (``qs``: visits overdue on ``on``)."""
    expressions = {
        "clinic": F("procedure__clinic__code"),
        "registry_id": F("procedure__patient__registry_id"),
        "procedure_id": F("procedure__external_id"),
        "performed_on": F("procedure__performed_on"),
        "visit": F("visit"),
        "due_on": F("due_on"),
        "window_end": F("window_end"),
        "days_overdue": DaysBetween(Value(on, output_field=DateField()), F("window_end")),
    }
    ordered = qs.order_by("procedure__clinic__code", "window_end", "procedure__external_id", "id")
    return OVERDUE_COLUMNS, _select(ordered, expressions)


def _select(qs: QuerySet, expressions: dict) -> QuerySet:
    aliases = {f"x_{name}": expression for name, expression in expressions.items()}
    # select_related of the selectors would add every joined column; values() drops it.
    return qs.annotate(**aliases).values_list(*aliases)
