"""The XLSX workbook of a run: Incidence (the stored rows, CSV columns, Aalen-Johansen included),
Provider comparison (case-mix adjusted, every outcome by clinic, country and GMP certification, with the
funnel's control limits at each group's expected count), Funnel data and Funnel plots (an Excel scatter
chart per outcome and grouping: SIR against expected cases with the exact Poisson limits), Line listing
(de-identified counted events), Outcome definitions (as the run froze them), Definitions (the run, its
counting rules and methods).

Every string cell is written as a string (Hardening 7): invisible characters stripped (one
control character used to make openpyxl refuse the whole workbook), the cell typed as text
("s", never "f": openpyxl would otherwise store "=HYPERLINK(...)" as a live formula) and, when
it begins like a formula, marked with quotePrefix, the XLSX form of a typed apostrophe, so Excel
keeps it text even when the cell is edited. The value itself stays exactly as stored.
"""

from __future__ import annotations

import io

import numpy as np
from openpyxl import Workbook
from openpyxl.chart import Reference, ScatterChart, Series
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from core.text import starts_like_formula, strip_unsafe
from reports.documents.definitions import definitions, listing_definition, outcome_definitions
from reports.documents.linelisting import COLUMNS as LISTING_COLUMNS
from reports.documents.provider import GROUPINGS, Comparison, sir_limits
from reports.documents.solicited import DAYS, solicited_table, table_rows
from reports.engine.providers import COLUMNS as COMPARISON_COLUMNS
from reports.exports.deidentified import Plan
from reports.exports.incidence_csv import header
from reports.models import IncidenceRun

MEDDRA_COLUMNS = ("soc_code", "soc_name", "pt_code", "pt_name", "events", "procedures")
# Issue 12: entries per day, then each symptom's and pain grade's share of the day's entries (0-1).
SOLICITED_COLUMNS = ("section", "label", *(f"day_{d}" for d in DAYS))
PROVIDER_COLUMNS = (
    "grouping",
    # The columns of manage.py compare_providers, in its order.
    *COMPARISON_COLUMNS,
    "flag_meaning",
    "followup_visits_due",
    "followup_visits_completed",
    "followup_completeness",
    "sir_limit_95_low",
    "sir_limit_95_high",
    "sir_limit_99_8_low",
    "sir_limit_99_8_high",
)
DEFINITION_COLUMNS = (
    "code",
    "label",
    "qualifies",
    "window_start_day",
    "window_end_day",
    "version",
    "risk",
    "shown_as",
)
FUNNEL_COLUMNS = (
    "outcome",
    "grouping",
    "expected",
    "limit_95_low",
    "limit_95_high",
    "limit_99_8_low",
    "limit_99_8_high",
)
FUNNEL_POINTS = 60  # expected counts each funnel's limits are given at
FUNNEL_ROWS = 24  # sheet rows a chart takes


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


def provider_rows(comparisons: list[Comparison]) -> list[tuple]:
    """Return the Provider comparison sheet's rows (PROVIDER_COLUMNS)."""
    out = []
    for comparison in comparisons:
        limits = sir_limits([r.expected for r in comparison.rows])
        for i, r in enumerate(comparison.rows):
            bounds = [limits[key][side][i] for key in ("95", "99.8") for side in (0, 1)]
            out.append(
                (
                    r.grouping,
                    r.label,
                    r.outcome,
                    r.basis,
                    r.procedures,
                    r.observed,
                    r.person_years,
                    r.expected,
                    r.sir,
                    r.sir_ci_low,
                    r.sir_ci_high,
                    r.p_high,
                    r.p_low,
                    r.flag or "within",
                    r.flag_text,
                    r.followup_due,
                    r.followup_completed,
                    r.completeness,
                    *(None if b != b else float(b) for b in bounds),  # NaN (no expected cases): empty
                )
            )
    return out


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
    ``comparisons``: the stored provider comparisons (documents.provider); ``listing``/``listing_plan``: the
    de-identified line listing and how it was generalised."""
    wb = Workbook()
    wb.remove(wb.active)
    columns = header(run.strata)
    n = len(run.strata)
    _sheet(
        wb,
        "Incidence",
        columns,
        ([r["stratum"][s] for s in run.strata] + [r.get(c) for c in columns[n:]] for r in records),
    )
    provider = _sheet(
        wb, "Provider comparison", PROVIDER_COLUMNS, provider_rows(comparisons), widths={"flag_meaning": 48}
    )
    _funnel_sheets(wb, comparisons, provider)
    _sheet(wb, "Line listing", LISTING_COLUMNS, listing, widths={"patient": 18, "procedure": 18, "event": 18})
    meddra = list(run.meddra_counts.order_by("position").values_list(*MEDDRA_COLUMNS))
    if meddra:
        # Counted events by MedDRA primary SOC and PT, when events are coded.
        _sheet(wb, "MedDRA SOC-PT", MEDDRA_COLUMNS, meddra, widths={"soc_name": 40, "pt_name": 40})
    solicited = solicited_table(run)
    if solicited is not None:  # issue 12: patient diaries, shares of the day's entries
        _sheet(wb, "Solicited reactions", SOLICITED_COLUMNS, table_rows(solicited), widths={"label": 30})
    _sheet(
        wb,
        "Outcome definitions",
        DEFINITION_COLUMNS,
        (
            (
                d.code,
                d.label,
                d.qualifies,
                d.start,
                d.end,
                d.version,
                "acute" if d.acute else "long-term",
                d.presented_as,
            )
            for d in outcome_definitions(run)
        ),
        widths={"label": 28, "shown_as": 70},
    )
    terms = definitions(run, user=user)
    if listing_plan is not None:
        terms = [(t, listing_definition(listing_plan, run=run) if t == "Line listing" else d) for t, d in terms]
    ws = _sheet(wb, "Definitions", ("term", "definition"), terms, widths={"term": 30, "definition": 120})
    for row in ws.iter_rows(min_row=2):
        row[1].alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def funnel_grid(comparison: Comparison) -> list[tuple[float, float, float, float, float]]:
    """Return (expected, 95 % low, 95 % high, 99.8 % low, 99.8 % high) on FUNNEL_POINTS expected counts spanning
    the comparison's groups: the control limits of SIR = observed / expected (documents.provider.sir_limits)."""
    expected = [r.expected for r in comparison.rows if r.expected > 0]
    if not expected:
        return []
    grid = np.geomspace(min(expected) / 2, max(expected) * 1.2, FUNNEL_POINTS)
    limits = sir_limits(grid)
    return [
        (float(e), *(float(limits[key][side][i]) for key in ("95", "99.8") for side in (0, 1)))
        for i, e in enumerate(grid)
    ]


def _funnel_sheets(wb, comparisons: list[Comparison], provider_sheet) -> None:
    """Add Funnel data (each comparison's control limits over a grid of expected counts) and Funnel plots
    (an Excel scatter chart per comparison: its groups' SIR against expected, from the Provider comparison
    sheet, and the limits): native charts over cell ranges, no formula in any cell."""
    data = _sheet(wb, "Funnel data", FUNNEL_COLUMNS, [])
    plots = wb.create_sheet("Funnel plots")
    columns = {name: i for i, name in enumerate(PROVIDER_COLUMNS, 1)}
    first_group_row = 2
    anchor_row = 1
    for comparison in comparisons:
        groups = range(first_group_row, first_group_row + len(comparison.rows))
        first_group_row += len(comparison.rows)
        grid = funnel_grid(comparison)
        if not grid:
            continue
        start = data.max_row + 1
        for point in grid:
            _append(data, (comparison.outcome, comparison.grouping, *point))
        end = data.max_row
        chart = ScatterChart()
        chart.title = f"{comparison.outcome} by {GROUPINGS[comparison.grouping]}: SIR against expected cases"
        chart.style = 13
        chart.height, chart.width = 11, 24
        chart.x_axis.title = "Expected cases (case-mix adjusted)"
        chart.y_axis.title = "SIR (observed / expected)"
        chart.x_axis.scaling.logBase = 10
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        chart.y_axis.scaling.min = 0
        x_grid = Reference(data, min_col=3, min_row=start, max_row=end)
        for col, title, colour, dash in (
            (4, "95 % limit", "FF7F0E", "dash"),
            (5, "95 % limit", "FF7F0E", "dash"),
            (6, "99.8 % limit", "D62728", "solid"),
            (7, "99.8 % limit", "D62728", "solid"),
        ):
            line = Series(Reference(data, min_col=col, min_row=start, max_row=end), x_grid, title=title)
            line.marker.symbol = "none"
            line.smooth = False
            line.graphicalProperties.line.solidFill = colour
            line.graphicalProperties.line.dashStyle = dash
            chart.series.append(line)
        points = Series(
            Reference(provider_sheet, min_col=columns["sir"], min_row=groups.start, max_row=groups.stop - 1),
            Reference(provider_sheet, min_col=columns["expected"], min_row=groups.start, max_row=groups.stop - 1),
            title=GROUPINGS[comparison.grouping],
        )
        points.marker.symbol = "circle"
        points.marker.size = 8
        points.graphicalProperties.line.noFill = True
        chart.series.append(points)
        plots.add_chart(chart, f"A{anchor_row}")
        anchor_row += FUNNEL_ROWS
