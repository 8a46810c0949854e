"""The de-identified line listing (HIPAA Safe Harbor style, k-anonymous): the SELECT behind its CSV and XLSX.

What leaves: one row per counting adverse event (neither it, its procedure nor its patient retracted) with
- export-local pseudonyms for the patient, the procedure and the event, drawn afresh for
  every export (a keyed hash of the row id with a random key that is never stored), so two
  exports cannot be joined with each other or back to the registry;
- the quasi-identifiers, generalised: birth year (top-coded "90+" per patient, see
  listing.top_coded), sex, country and the procedure's calendar year; no clinic, no date:
  onset and resolution are days since the procedure;
- the event's coded description (site, cell type, category, MedDRA code, grade, seriousness,
  causality, outcome); no free text (verbatim term, notes, indication, action taken), no
  product lot, operator, reporter or clinic-own id.

k-anonymity (DESIGN 2b "Publication": no count from 1 to 10): every combination of the
quasi-identifiers as published is shared by at least ``min_k`` patients (settings
DEIDENTIFIED_MIN_K, 11). The generalisation is global (the same for every row of an export)
and chosen from a small lattice, birth year x sex x country x period:

    birth:   year, 5-year band, 10-year band, 20-year band, *      (90+ stays 90+ but at *)
    sex:     kept, *
    country: kept, *
    period:  year, 2 years, 5 years, *

Rows whose combination still has fewer than ``min_k`` patients are left out (record
suppression); the chosen node is the one losing least information (discernibility metric:
sum of squared class sizes, plus every suppressed row costing the whole listing) among those
suppressing at most DEIDENTIFIED_MAX_SUPPRESSED_PERCENT of the rows, or, when none does, the one
suppressing least. A listing covering fewer than ``min_k`` patients therefore has no rows.
The counts are read in one aggregate query (flat memory), the choice is made in Python over
the aggregated cells only, and the final SELECT streams through COPY like the limited listing.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import F, IntegerField, QuerySet
from django.db.models.functions import Cast, ExtractYear

from reports.exports.listing import (
    TOP_CODED_LABEL,
    DaysBetween,
    SeriousCriteria,
    TopCodedBirthYear,
    boolean_text,
    not_retracted,
)
from reports.exports.streaming import compose_select

QUASI_IDENTIFIERS: tuple[str, ...] = ("birth_year", "sex", "country", "procedure_period")
SUPPRESSED = "*"
BIRTH_WIDTHS: tuple[int | None, ...] = (1, 5, 10, 20, None)  # None: every birth year in one class
PERIOD_WIDTHS: tuple[int, ...] = (1, 2, 5, 0)  # 0: every year in one class
# The columns copied as they are: codes from a vocabulary (CHECK-constrained), numbers and
# the MedDRA code (8 digits, CHECK-constrained): nothing a spreadsheet would evaluate.
_CODED = (
    "site",
    "laterality",
    "cell_source",
    "cell_type",
    "category",
    "meddra_code",
    "onset_day",
    "grade",
    "serious",
    "serious_criteria",
    "causality_procedure",
    "causality_product",
    "outcome",
    "resolved_day",
)
# Export-local pseudonyms first, then the generalised quasi-identifiers, then the coded columns.
COLUMNS: tuple[str, ...] = ("patient", "procedure", "event", *QUASI_IDENTIFIERS, *_CODED)


@dataclass(frozen=True)
class Generalisation:
    """One node of the lattice: how far each quasi-identifier is coarsened (0 = as stored)."""

    birth: int
    sex: int
    country: int
    period: int

    @property
    def height(self) -> int:
        return self.birth + self.sex + self.country + self.period

    def describe(self) -> str:
        """Return the node as text (birth_year=10y;sex=kept;...), as the response header and the workbook show it."""
        birth = BIRTH_WIDTHS[self.birth]
        period = PERIOD_WIDTHS[self.period]
        return ";".join(
            (
                f"birth_year={'*' if birth is None else f'{birth}y'}",
                f"sex={'kept' if self.sex == 0 else '*'}",
                f"country={'kept' if self.country == 0 else '*'}",
                f"procedure_period={'*' if period == 0 else f'{period}y'}",
            )
        )

    def labels(self, birth: str, sex: str, country: str, period_start: int) -> tuple[str, str, str, str]:
        """Return the published quasi-identifiers of a cell (birth as top-coded text, period by its start)."""
        return (
            _band(birth, BIRTH_WIDTHS[self.birth]),
            sex if self.sex == 0 else SUPPRESSED,
            country if self.country == 0 else SUPPRESSED,
            _period(period_start, PERIOD_WIDTHS[self.period]),
        )


LATTICE = tuple(
    Generalisation(b, s, c, p)
    for b, s, c, p in itertools.product(range(len(BIRTH_WIDTHS)), range(2), range(2), range(len(PERIOD_WIDTHS)))
)


@dataclass(frozen=True)
class Plan:
    """What the final SELECT publishes: the node, and the label of every stored cell not suppressed."""

    node: Generalisation
    min_k: int
    k: int | None  # the smallest class published, in patients (None: nothing published)
    rows: int
    suppressed_rows: int
    patients: int
    mapping: tuple[dict, ...]  # {"b", "s", "c", "y", "birth_year", "sex", "country", "procedure_period"}


def _band(birth: str, width: int | None) -> str:
    if width is None:
        return SUPPRESSED
    if birth == TOP_CODED_LABEL or width == 1:
        return birth
    start = int(birth) - int(birth) % width
    return f"{start}-{start + width - 1}"


def _period(start: int, width: int) -> str:
    if width == 0:
        return SUPPRESSED
    return str(start) if width == 1 else f"{start}-{start + width - 1}"


def _event_columns(*, export_year: int | None) -> dict:
    """Return {x-name: expression over an adverse event}: internal ids, quasi-identifiers, coded columns.

    ``export_year`` None keeps the birth year as stored (a run's snapshot); otherwise it is
    top-coded as the export publishes it.
    """
    birth = "procedure__patient__birth_year"
    return {
        "patient_pk": F("procedure__patient_id"),
        "procedure_pk": F("procedure_id"),
        "event_pk": F("id"),
        "birth": F(birth) if export_year is None else TopCodedBirthYear(birth, export_year=export_year),
        "sex": F("procedure__patient__sex"),
        "country": F("procedure__clinic__country"),
        "year": Cast(ExtractYear("procedure__performed_on"), IntegerField()),
        "site": F("procedure__site"),
        "laterality": F("procedure__laterality"),
        "cell_source": F("procedure__cell_source"),
        "cell_type": F("procedure__cell_type"),
        "category": F("category"),
        "meddra_code": F("meddra_code"),
        "onset_day": DaysBetween(F("onset_on"), F("procedure__performed_on")),
        "grade": F("grade"),
        "serious": boolean_text("serious"),
        "serious_criteria": SeriousCriteria(),
        "causality_procedure": F("causality_procedure"),
        "causality_product": F("causality_product"),
        "outcome": F("outcome"),
        "resolved_day": DaysBetween(F("resolved_on"), F("procedure__performed_on")),
    }


# The field of reports.models.RunListingRow (a run's frozen listing) holding each x-name.
SNAPSHOT_FIELDS: dict[str, str] = {
    "patient_pk": "patient_id",
    "procedure_pk": "procedure_id",
    "event_pk": "event_id",
    "birth": "birth_year",
    "sex": "sex",
    "country": "country",
    "year": "year",
    **{name: name for name in _CODED},
}


def _aliased(qs: QuerySet, expressions: dict) -> QuerySet:
    aliases = {f"x_{name}": expression for name, expression in expressions.items()}
    return qs.order_by().annotate(**aliases).values_list(*aliases)


def _base(events: QuerySet, *, export_year: int) -> QuerySet:
    """Return one row per counting event: internal ids, raw quasi-identifiers and the coded columns."""
    return _aliased(not_retracted(events), _event_columns(export_year=export_year))


def snapshot_base(events: QuerySet) -> QuerySet:
    """Return the events as a run's snapshot stores them (x-names of SNAPSHOT_FIELDS, birth year as stored)."""
    return _aliased(events, _event_columns(export_year=None))


def stored_base(rows: QuerySet, *, export_year: int) -> QuerySet:
    """Return a run's stored listing rows (reports.models.RunListingRow) as the de-identification reads them."""
    expressions = {name: F(field) for name, field in SNAPSHOT_FIELDS.items()}
    expressions["birth"] = TopCodedBirthYear("birth_year", export_year=export_year)
    return _aliased(rows, expressions)


def _cells(base_sql: str) -> dict[int, dict[tuple, tuple[int, int]]]:
    """Return {period width: {(birth, sex, country, period start): (patients, rows)}} in one aggregate query.

    Birth year, sex and country are the patient's own (a procedure is always at the patient's
    clinic), so within one period width the cells partition the patients and their counts add
    up over any coarsening of those three; only the period decides whether two procedures of a
    patient fall in one class, hence one grouping per period width.
    """
    widths = ", ".join(f"({w})" for w in PERIOD_WIDTHS)
    sql = (
        "SELECT w, x_birth, x_sex, x_country, "  # noqa: S608 - composed by the ORM and psycopg, constants
        "CASE WHEN w = 0 THEN 0 ELSE x_year - x_year % w END AS period_start, "
        "count(DISTINCT x_patient_pk), count(*) "
        f"FROM ({base_sql}) AS base CROSS JOIN (VALUES {widths}) AS widths(w) "
        "GROUP BY 1, 2, 3, 4, 5"
    )
    cells: dict[int, dict[tuple, tuple[int, int]]] = defaultdict(dict)
    with connection.cursor() as cursor:
        # No parameters: the base SELECT is already composed, and psycopg reads no placeholder in it.
        cursor.execute(sql)
        for width, birth, sex, country, start, patients, rows in cursor.fetchall():
            cells[width][(birth, sex, country, start)] = (patients, rows)
    return cells


def _classes(node: Generalisation, cells) -> dict[tuple, list[int]]:
    classes: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for (birth, sex, country, start), (patients, rows) in cells[PERIOD_WIDTHS[node.period]].items():
        counts = classes[node.labels(birth, sex, country, start)]
        counts[0] += patients
        counts[1] += rows
    return classes


def plan(cells, *, min_k: int, max_suppressed_percent: int) -> Plan:
    """Return the generalisation and suppression publishing only classes of ``min_k`` patients or more."""
    total_rows = sum(rows for _, rows in cells[PERIOD_WIDTHS[0]].values())
    total_patients = sum(patients for patients, _ in cells[PERIOD_WIDTHS[-1]].values())
    best = None
    for node in LATTICE:
        classes = _classes(node, cells)
        suppressed = sum(rows for patients, rows in classes.values() if patients < min_k)
        # Discernibility: a published row costs the size of its class, a suppressed one the whole listing.
        cost = sum(rows * rows for patients, rows in classes.values() if patients >= min_k) + suppressed * total_rows
        within = suppressed * 100 <= max_suppressed_percent * total_rows
        key = (not within, suppressed if not within else 0, cost, node.height)
        if best is None or key < best[0]:
            best = (key, node, classes, suppressed)
    _, node, classes, suppressed = best
    published = [patients for patients, _ in classes.values() if patients >= min_k]
    mapping = []
    width = PERIOD_WIDTHS[node.period]
    for birth, sex, country, year in cells[PERIOD_WIDTHS[0]]:
        start = 0 if width == 0 else year - year % width
        labels = node.labels(birth, sex, country, start)
        if classes[labels][0] >= min_k:
            keys = ("b", "s", "c", "y", *QUASI_IDENTIFIERS)
            mapping.append(dict(zip(keys, (birth, sex, country, year, *labels), strict=True)))
    return Plan(
        node=node,
        min_k=min_k,
        k=min(published) if published else None,
        rows=total_rows,
        suppressed_rows=suppressed,
        patients=total_patients,
        mapping=tuple(mapping),
    )


def deidentified_listing(
    events: QuerySet, *, export_year: int, min_k: int, max_suppressed_percent: int
) -> tuple[tuple[str, ...], str, Plan]:
    """Return the columns, the SELECT (parameters bound, ready for COPY) and the plan of a de-identified listing.

    ``events`` is the user's scoped and filtered adverse events; retracted ones never count.
    """
    return deidentify(
        _base(events, export_year=export_year), min_k=min_k, max_suppressed_percent=max_suppressed_percent
    )


def deidentify(base: QuerySet, *, min_k: int, max_suppressed_percent: int) -> tuple[tuple[str, ...], str, Plan]:
    """Return the columns, the SELECT and the plan publishing ``base`` (_base, stored_base) de-identified."""
    base_sql = compose_select(base)
    decided = plan(_cells(base_sql), min_k=min_k, max_suppressed_percent=max_suppressed_percent)
    key = secrets.token_hex(16)  # never stored: the pseudonyms cannot be recomputed, even by us

    def pseudonym(prefix: str, column: str) -> str:
        return f"'{prefix}-' || upper(left(md5('{key}:{prefix}:' || base.{column}::text), 12))"

    # The mapping goes in as one quoted literal; the base SELECT is never parsed for placeholders again.
    mapping = connection.ops.compose_sql("%s::jsonb", [json.dumps(decided.mapping)])
    coded = ", ".join(f"base.x_{name}" for name in _CODED)
    qi = ", ".join(f"g.{name}" for name in QUASI_IDENTIFIERS)
    sql = (
        f"SELECT {pseudonym('P', 'x_patient_pk')} AS patient, "  # noqa: S608 - composed by the ORM and psycopg
        f"{pseudonym('R', 'x_procedure_pk')} AS procedure, "
        f"{pseudonym('E', 'x_event_pk')} AS event, {qi}, {coded} "
        f"FROM ({base_sql}) AS base "
        f"JOIN jsonb_to_recordset({mapping}) AS g(b text, s text, c text, y integer, "
        "birth_year text, sex text, country text, procedure_period text) "
        "ON g.b = base.x_birth AND g.s = base.x_sex AND g.c = base.x_country AND g.y = base.x_year "
        # Ordered by the pseudonyms, which are random: the order says nothing about the registry.
        "ORDER BY 1, 2, base.x_onset_day, 3"
    )
    return COLUMNS, sql, decided


def fetch_rows(select_sql: str) -> list[tuple]:
    """Return every row of a composed de-identified SELECT (the run workbook's sheet; the CSV streams instead)."""
    with connection.cursor() as cursor:
        cursor.execute(select_sql)
        return cursor.fetchall()
