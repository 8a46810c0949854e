"""The SELECTs behind the CSV exports: the line listing (a limited data set) and overdue follow-up visits.

Each function takes an already scoped and filtered queryset (selectors, then the API's
filter set) and returns (columns, queryset of one row per line, in column order). Every
output column is an annotation named "x_<column>" so no alias clashes with a model field;
the CSV header is written from ``columns``.

Spreadsheet-safe inside the SELECT, so COPY can keep streaming (Hardening 7): ids and codes
a spreadsheet could read as a formula go through SpreadsheetText, free text through
SpreadsheetFreeText (core.text). Columns drawn from a vocabulary (a CHECK constraint keeps
them to lower-case codes), numbers and dates need nothing. The de-identified listing is
reports.exports.deidentified.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import (
    CharField,
    Count,
    DateField,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Coalesce

from core.text import SpreadsheetFreeText, SpreadsheetText
from events.choices import SERIOUS_CRITERIA
from registry.models import ContactAttempt

TOP_CODED_AGE = 90  # age (years) from which the birth year is shown as "90+"
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
    "contact_attempts",
    "last_attempt_on",
    "last_attempt_outcome",
)


class DaysBetween(Func):
    """(later - earlier) in whole days: PostgreSQL's date - date is an integer."""

    template = "(%(expressions)s)"
    arg_joiner = " - "
    output_field = IntegerField()


def top_coded(birth_year: int, *, export_year: int) -> str:
    """Return the birth year as exported: "90+" for a patient aged 90 or more in ``export_year``.

    Decided per patient, not per row: the export year is after every procedure, so a patient
    90 or older at any of them is "90+" on every row (a per-procedure rule once showed 1936 on
    one row and 90+ on the next, under the same registry id). HIPAA Safe Harbor asks the same
    of any birth year indicating an age over 89 today.
    """
    return TOP_CODED_LABEL if export_year - birth_year >= TOP_CODED_AGE else str(birth_year)


class TopCodedBirthYear(Func):
    """top_coded() in SQL: the birth year as text, or "90+" when the patient is 90 or older in the export year."""

    output_field = TextField()
    arity = 1

    def __init__(self, birth_year: str, *, export_year: int):
        super().__init__(F(birth_year))
        self.export_year = int(export_year)

    def as_sql(self, compiler, connection, **extra):
        birth_year, params = compiler.compile(self.source_expressions[0])
        sql = (
            f"CASE WHEN {self.export_year} - {birth_year} >= {TOP_CODED_AGE} "
            f"THEN '{TOP_CODED_LABEL}' ELSE ({birth_year})::text END"
        )
        return sql, (*params, *params)


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


def boolean_text(field: str):
    """Return the boolean column as true/false text."""
    # PostgreSQL prints a boolean cast to text as true/false (COPY itself would print t/f).
    return Cast(field, CharField())


def not_retracted(events: QuerySet) -> QuerySet:
    """Return ``events`` without those entered in error: the event, its procedure or its patient retracted."""
    return events.filter(
        retracted_at__isnull=True,
        procedure__retracted_at__isnull=True,
        procedure__patient__retracted_at__isnull=True,
    )


def line_listing(
    qs: QuerySet, *, include_retracted: bool, export_year: int, spreadsheet_safe: bool = True
) -> tuple[tuple[str, ...], QuerySet]:
    """Return the line listing's columns and the queryset selecting them: a limited data set.

    ``qs`` is the user's scoped and filtered adverse events. The patient appears by the
    pseudonymous registry id with exact dates, clinic and country, the birth year top-coded
    per patient; no free-text field other than the verbatim term (the event's description).
    ``spreadsheet_safe=False`` leaves the cells raw: only bench/bench_export_csv.py asks for it,
    to measure what neutralising costs.
    """
    text, free_text = (SpreadsheetText, SpreadsheetFreeText) if spreadsheet_safe else (F, F)
    expressions = {
        "registry_id": text("procedure__patient__registry_id"),
        "birth_year": TopCodedBirthYear("procedure__patient__birth_year", export_year=export_year),
        "sex": F("procedure__patient__sex"),
        "clinic": text("procedure__clinic__code"),
        "country": F("procedure__clinic__country"),
        "procedure_id": text("procedure__external_id"),
        "performed_on": F("procedure__performed_on"),
        "site": F("procedure__site"),
        "laterality": F("procedure__laterality"),
        "cell_source": F("procedure__cell_source"),
        "cell_type": F("procedure__cell_type"),
        "event_id": text("external_id"),
        "category": F("category"),
        "term": free_text("term"),
        "meddra_code": text("meddra_code"),
        "onset_on": F("onset_on"),
        "days_from_procedure": DaysBetween(F("onset_on"), F("procedure__performed_on")),
        "grade": F("grade"),
        "serious": boolean_text("serious"),
        "serious_criteria": SeriousCriteria(),
        "causality_procedure": F("causality_procedure"),
        "causality_product": F("causality_product"),
        "outcome": F("outcome"),
        "resolved_on": F("resolved_on"),
    }
    columns = LINE_LISTING_COLUMNS
    if include_retracted:
        # Retracted: the event itself, its procedure or its patient (entered in error).
        expressions[RETRACTED_COLUMN] = Func(
            F("retracted_at"),
            F("procedure__retracted_at"),
            F("procedure__patient__retracted_at"),
            template="(COALESCE(%(expressions)s) IS NOT NULL)::text",
            output_field=TextField(),
        )
        columns = (*columns, RETRACTED_COLUMN)
    else:
        qs = not_retracted(qs)
    return columns, _select(qs.order_by("onset_on", "id"), expressions)


_last_attempt = ContactAttempt.objects.filter(visit=OuterRef("pk")).order_by("-attempted_on", "-id")


def overdue_visits(qs: QuerySet, *, on: dt.date) -> tuple[tuple[str, ...], QuerySet]:
    """Return the overdue report's columns and the queryset selecting them (``qs``: visits overdue on ``on``)."""
    expressions = {
        "clinic": SpreadsheetText("procedure__clinic__code"),
        "registry_id": SpreadsheetText("procedure__patient__registry_id"),
        "procedure_id": SpreadsheetText("procedure__external_id"),
        "performed_on": F("procedure__performed_on"),
        "visit": F("visit"),
        "due_on": F("due_on"),
        "window_end": F("window_end"),
        "days_overdue": DaysBetween(Value(on, output_field=DateField()), F("window_end")),
        # The chase so far (issue 9): attempts logged on this visit, and the latest one.
        "contact_attempts": Coalesce(
            Subquery(
                ContactAttempt.objects.filter(visit=OuterRef("pk")).values("visit").annotate(n=Count("id")).values("n")
            ),
            0,
        ),
        "last_attempt_on": Subquery(_last_attempt.values("attempted_on")[:1]),
        "last_attempt_outcome": Coalesce(Subquery(_last_attempt.values("outcome")[:1]), Value("")),
    }
    ordered = qs.order_by("procedure__clinic__code", "window_end", "procedure__external_id", "id")
    return OVERDUE_COLUMNS, _select(ordered, expressions)


def _select(qs: QuerySet, expressions: dict) -> QuerySet:
    aliases = {f"x_{name}": expression for name, expression in expressions.items()}
    # select_related of the selectors would add every joined column; values() drops it.
    return qs.annotate(**aliases).values_list(*aliases)
