"""The XLSX workbook of a run: Incidence (the stored rows, CSV columns), Provider comparison,
Line listing (de-identified counted events), Definitions.

Every string cell is written as a string (Hardening 7): invisible characters stripped (one
control character used to make openpyxl refuse the whole workbook), the cell typed as text
("s", never "f": openpyxl would otherwise store "=HYPERLINK(...)" as a live formula) and, when
it begins like a formula, marked with quotePrefix, the XLSX form of a typed apostrophe, so Excel
keeps it text even when the cell is edited. The value itself stays exactly as stored.
"""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from core.text import starts_like_formula, strip_unsafe
from reports.documents.definitions import definitions, listing_definition
from reports.documents.linelisting import COLUMNS as LISTING_COLUMNS
from reports.documents.provider import Comparison
from reports.exports.deidentified import Plan
from reports.exports.incidence_csv import header
from reports.models import IncidenceRun

PROVIDER_COLUMNS = (
    "outcome",
    "clinic",
    "procedures",
    "cases",
    "person_years",
    "rate_per_100py",
    "rate_ci_low",
    "rate_ci_high",
    "expected_cases",
    "pooled_rate_per_100py",
    "limit_95_low",
    "limit_95_high",
    "limit_99_8_low",
    "limit_99_8_high",
    "flag",  # alarm: above the 99.8 % limit; alert: above 95 %; low: below 95 %; within
)


def _append(ws, values) -> None:
    """Append one row, every string as inert text."""
    ws.append([strip_unsafe(v) if isinstance(v, str) else v for v in values])
    for cell in ws[ws.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"
            if starts_like_formula(cell.value):
                cell.quotePrefix = True


def _sheet(wb, title, columns, rows, widths=None):
    ws = wb.create_sheet(title)
    _append(ws, columns)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        _append(ws, row)
    ws.freeze_panes = "A2"
    for i, column in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(i)].width = (widths or {}).get(column, max(12, len(column) + 2))
    return ws


def build_workbook(
    run: IncidenceRun,
    *,
    records: list[dict],
    comparisons: list[Comparison],
    listing: list[tuple],
    listing_plan: Plan | None = None,
    user,
) -> bytes:
    """Return the XLSX bytes. ``records``: the stored result rows as dicts (selectors.results_of_run().values());
    ``listing``/``listing_plan``: the de-identified line listing and how it was generalised."""
    wb = Workbook()
    wb.remove(wb.active)
    columns = header(run.strata)
    n = len(run.strata)
    _sheet(
        wb,
        "Incidence",
        columns,
        ([r["stratum"][s] for s in run.strata] + [r[c] for c in columns[n:]] for r in records),
    )
    provider_rows = []
    for comparison in comparisons:
        for c in comparison.clinics:
            provider_rows.append(
                (
                    c.outcome,
                    c.clinic,
                    c.procedures,
                    c.cases,
                    c.person_years,
                    c.rate,
                    c.rate_ci_low,
                    c.rate_ci_high,
                    c.expected,
                    comparison.pooled_rate,
                    *c.limits["95"],
                    *c.limits["99.8"],
                    c.flag or "within",
                )
            )
        provider_rows.append(
            (
                comparison.outcome,
                "ALL (pooled)",
                None,
                comparison.pooled_cases,
                comparison.pooled_person_years,
                comparison.pooled_rate,
                *([None] * 9),
            )
        )
    _sheet(wb, "Provider comparison", PROVIDER_COLUMNS, provider_rows)
    _sheet(wb, "Line listing", LISTING_COLUMNS, listing, widths={"patient": 18, "procedure": 18, "event": 18})
    terms = definitions(run, user=user)
    if listing_plan is not None:
        terms = [(t, listing_definition(listing_plan, run=run) if t == "Line listing" else d) for t, d in terms]
    ws = _sheet(wb, "Definitions", ("term", "definition"), terms, widths={"term": 24, "definition": 120})
    for row in ws.iter_rows(min_row=2):
        row[1].alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
