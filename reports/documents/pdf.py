"""The PDF safety report of a run (reportlab, A4 landscape): title, provenance, methods, tables, charts."""

from __future__ import annotations

import io
from collections.abc import Sequence
from html import escape

from django.conf import settings
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, LongTable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from reports.choices import HORIZONS
from reports.documents import formatting as fmt
from reports.documents.charts import outcome_label
from reports.documents.curves import stratum_label
from reports.documents.definitions import (
    KM_VS_AJ,
    LINE_LISTING,
    MIN_UNITS,
    NO_COMPARISON,
    methods,
    outcome_definitions,
    unit_word,
)
from reports.documents.page import basis_text, result_cells
from reports.documents.provider import GROUPINGS, Comparison, GroupRow
from reports.documents.solicited import DAYS, share_text, solicited_table
from reports.models import IncidenceRun

PAGE = landscape(A4)
MARGIN = 15 * mm
TABLE_ROWS = 400  # the full table is in the XLSX and CSV


def _text(value) -> str:
    """Return ``value`` as Paragraph markup: escaped, so "<=" or "&" print as themselves."""
    return escape(str(value), quote=False)


def _table(rows: list[list], widths=None, *, font_size: float = 8.5, extra=()) -> Table:
    table = LongTable(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", font_size),
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", font_size),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                *extra,
            ]
        )
    )
    return table


def _image(data: bytes, max_width: float, max_height: float) -> Image:
    image = Image(io.BytesIO(data))
    scale = min(max_width / image.imageWidth, max_height / image.imageHeight)
    image.drawWidth, image.drawHeight = image.imageWidth * scale, image.imageHeight * scale
    return image


class _Cells:
    """Paragraph cells of a table, small enough to wrap in narrow columns."""

    def __init__(self, styles):
        self.plain = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=7.5, leading=9)
        self.number = ParagraphStyle("number", parent=self.plain, alignment=TA_RIGHT)
        self.why = ParagraphStyle("why", parent=self.number, fontName="Helvetica-Oblique", textColor="#555555")
        self.why_centre = ParagraphStyle("why_centre", parent=self.why, alignment=TA_CENTER)
        self.head = ParagraphStyle("head", parent=self.plain, fontName="Helvetica-Bold")

    def __call__(self, value, *, number: bool = True, why: bool = False, centre: bool = False) -> Paragraph:
        style = (self.why_centre if centre else self.why) if why else (self.number if number else self.plain)
        return Paragraph(_text(value), style)

    def cell(self, cell) -> Paragraph:
        return self(cell.text, why=cell.empty)

    def header(self, names) -> list[Paragraph]:
        return [Paragraph(_text(n), self.head) for n in names]


def _incidence_tables(run: IncidenceRun, results: Sequence, cells: _Cells, width: float, body) -> list:
    """Return one table per outcome (acute: proportion; long-term: rate, KM beside AJ), TABLE_ROWS rows at most."""
    story, shown = [], 0
    units = unit_word(run)
    by_outcome: dict[str, list] = {}
    for r in results:
        by_outcome.setdefault(r.outcome, []).append(r)
    for definition in outcome_definitions(run):
        rows = by_outcome.get(definition.code, [])
        if not rows or shown >= TABLE_ROWS:
            continue
        rows = rows[: TABLE_ROWS - shown]
        shown += len(rows)
        kind = "acute" if definition.acute else "long-term"
        story.append(
            Paragraph(f"{_text(definition.label)} ({kind}, risk window {_text(definition.window_text)})", body)
        )
        if definition.acute:
            head = ["stratum", units, "cases", "proportion within the window (95% CI)"]
            widths = [90 * mm, 25 * mm, 25 * mm, 60 * mm]
        else:
            head = ["stratum", units, "cases", "person-years", "rate /100 PY (95% CI)"]
            head += [f"{method} {label}" for label, _ in HORIZONS for method in ("KM", "AJ")]
            fixed = [48 * mm, 16 * mm, 14 * mm, 19 * mm, 36 * mm]
            widths = fixed + [(width - sum(fixed)) / 8] * 8
        table, spans = [cells.header(head)], []
        for i, r in enumerate(rows, 1):
            c = result_cells(run, r, definition)
            line = [cells(stratum_label(r.stratum), number=False), cells(c["procedures"]), cells(c["cases"])]
            if not definition.acute:
                line.append(cells(c["person_years"]))
            if c["few"]:
                # One reason for every figure with an interval, across their columns.
                first = len(line)
                line += [cells(c["few"], why=True, centre=True)] + [""] * (len(head) - first - 1)
                spans.append(("SPAN", (first, i), (-1, i)))
            elif definition.acute:
                line.append(cells.cell(c["proportion"]))
            else:
                line.append(cells.cell(c["rate"]))
                line += [cells.cell(x) for pair in c["horizons"] for x in pair]
            table.append(line)
        story += [_table(table, widths, extra=spans), Spacer(1, 3 * mm)]
    if len(results) > shown:
        story.append(Paragraph(f"First {shown} of {len(results)} rows; every row is in the XLSX and CSV.", body))
    return story


def _provider_table(comparison: Comparison, cells: _Cells, units: str) -> Table:
    head = [GROUPINGS[comparison.grouping], units, "observed", "person-years", "expected", "SIR (95% CI)"]
    head += ["P(X >= obs.)", "P(X <= obs.)", "flag", "follow-up completeness"]
    rows = [cells.header(head)]
    for r in comparison.rows:
        rows.append(_provider_line(r, cells))
    widths = [34 * mm, 16 * mm, 16 * mm, 19 * mm, 17 * mm, 34 * mm, 17 * mm, 17 * mm, 58 * mm, 37 * mm]
    return _table(rows, widths)


def _provider_line(r: GroupRow, cells: _Cells) -> list:
    completeness = (
        f"{fmt.percent(r.completeness)} ({r.followup_completed} of {r.followup_due} visits)"
        if r.completeness is not None
        else "no visit due"
    )
    sir = fmt.with_interval(r.sir, r.sir_ci_low, r.sir_ci_high) if r.sir is not None else "no cases expected"
    return [
        cells(r.label, number=False),
        cells(fmt.count(r.procedures)),
        cells(fmt.count(r.observed)),
        cells(fmt.person_years(r.person_years)),
        cells(fmt.significant(r.expected)),
        cells(sir, why=r.sir is None),
        cells(fmt.p_value(r.p_high)),
        cells(fmt.p_value(r.p_low)),
        cells(r.flag_text, number=False),
        cells(completeness, why=r.completeness is None),
    ]


def _meddra_section(run: IncidenceRun, cells: _Cells, styles, body) -> list:
    """Return the table of counted events by MedDRA primary SOC and PT (nothing when no event is coded)."""
    counts = list(run.meddra_counts.order_by("position"))
    if not counts:
        return []
    return [
        Paragraph("Counted events by MedDRA system organ class and preferred term", styles["Heading2"]),
        Paragraph(
            _text("The counted events coded with MedDRA, each preferred term under its primary system organ class."),
            body,
        ),
        _table(
            [cells.header(["system organ class", "preferred term", "PT code", "events", "procedures"])]
            + [
                [
                    cells(m.soc_name, number=False),
                    cells(m.pt_name, number=False),
                    cells(m.pt_code, number=False),
                    cells(m.events),
                    cells(m.procedures),
                ]
                for m in counts
            ],
            [70 * mm, 70 * mm, 30 * mm, 25 * mm, 25 * mm],
        ),
    ]


def _safety_section(run: IncidenceRun, cells: _Cells, styles, body) -> list:
    """Return the clinics' safety-reporting figures stored with the run (issue 10; nothing for older runs)."""
    figures = list(run.safety_figures.order_by("position"))
    if not figures:
        return []
    rows = [fmt.safety_figure_cells(f) for f in figures]
    return [
        Paragraph("Safety reporting by clinic", styles["Heading2"]),
        Paragraph(
            _text(
                "As it stood when the run finished: median days from onset to recording and from the awareness date "
                "that started an expedited report's clock to its submission, the share submitted by the due date, "
                "open reports past due, open cases known for more than 30 days without a follow-up."
            ),
            body,
        ),
        _table(
            [cells.header(fmt.SAFETY_FIGURE_HEADER)]
            + [[cells(row[0], number=False), *(cells(v) for v in row[1:])] for row in rows],
            [30 * mm] + [30 * mm] * 7,
        ),
    ]


def _solicited_section(run: IncidenceRun, cells: _Cells, styles, body) -> list:
    """Return the solicited-reactions table (issue 12; nothing when no diary is in the run's scope)."""
    table = solicited_table(run)
    if table is None:
        return []
    days = [f"day {d}" for d in DAYS]
    lines = [[cells("diary entries", number=False), *(cells(n) for n in table.entries)]]
    lines += [[cells(r.label, number=False), *(cells(share_text(v)) for v in r.shares)] for r in table.symptoms]
    lines += [[cells(f"pain {r.label}", number=False), *(cells(share_text(v)) for v in r.shares)] for r in table.pain]
    return [
        Paragraph("Solicited reactions (patient diaries, days 0-7)", styles["Heading2"]),
        Paragraph(
            _text(
                f"Patient-reported, from the diaries of {table.procedures} procedures; share of the procedures "
                "with an entry that day. Not adverse events: only confirmed reports count."
            ),
            body,
        ),
        _table([cells.header(["symptom", *days]), *lines], [60 * mm] + [24 * mm] * len(DAYS)),
    ]


def build_pdf(
    run: IncidenceRun,
    *,
    results: Sequence,
    comparisons: Sequence[Comparison],
    charts: dict[str, bytes],
    chart_outcome: str,
    user,
    generated_at=None,
) -> bytes:
    """Return the PDF bytes. ``charts``: {"forest"|"km"|"funnel_<grouping>": PNG bytes} for ``chart_outcome``;
    ``comparisons``: its stored provider comparisons (one per grouping; none for an old run)."""
    generated_at = timezone.localtime(generated_at or timezone.now())
    stamp = f"{generated_at:%Y-%m-%d %H:%M %Z}"
    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    cells = _Cells(styles)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"Incidence safety report, run {run.pk}",
        author=user.get_username(),
    )
    width, height = PAGE[0] - 2 * MARGIN, PAGE[1] - 2 * MARGIN
    units = unit_word(run)

    def footer(canvas, _doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(
            MARGIN,
            8 * mm,
            f"Incidence run #{run.pk} - data cut-off {run.cutoff_on} - generated by {user.get_username()} at {stamp}",
        )
        canvas.drawRightString(PAGE[0] - MARGIN, 8 * mm, f"page {canvas.getPageNumber()}")
        canvas.restoreState()

    window = "" if run.onset_window_days is None else f", ending on day {run.onset_window_days}"
    story = [
        Paragraph(f"Adverse-event incidence safety report - run #{run.pk}", styles["Title"]),
        Paragraph(
            f"<b>Data cut-off:</b> {run.cutoff_on} &nbsp; <b>Strata:</b> {_text(' x '.join(run.strata) or 'overall')} "
            f"&nbsp; <b>Outcomes:</b> {_text(', '.join(run.outcomes))} &nbsp; "
            f"<b>Unit:</b> {_text(run.get_unit_display())} &nbsp; "
            f"<b>Risk windows:</b> {_text(run.get_windows_mode_display())}{window} &nbsp; "
            f"<b>Clinics:</b> {'every clinic' if run.clinic_ids is None else len(run.clinic_ids)}",
            body,
        ),
        Paragraph(
            f"<b>Generated by</b> {_text(user.get_username())} <b>at</b> {stamp}; run requested by "
            f"{_text(run.requested_by or 'the system')}, finished {run.finished_at:%Y-%m-%d %H:%M}."
            if run.finished_at
            else f"<b>Generated by</b> {_text(user.get_username())} <b>at</b> {stamp}.",
            body,
        ),
        Spacer(1, 4 * mm),
        Paragraph("Methods", styles["Heading2"]),
        *[Paragraph(f"<b>{_text(term)}.</b> {_text(text)}", body) for term, text in methods(run)],
        Paragraph(
            _text(
                LINE_LISTING.format(k=settings.DEIDENTIFIED_MIN_K) + " The line listing is in the XLSX workbook only."
            ),
            body,
        ),
        Paragraph("Outcome definitions (frozen with the run)", styles["Heading2"]),
        _table(
            [cells.header(["code", "label", "qualifying events", "risk window", "version", "shown as"])]
            + [
                [
                    cells(d.code, number=False),
                    cells(d.label, number=False),
                    cells(d.qualifies, number=False),
                    cells(d.window_text, number=False),
                    cells(d.version_text, number=False),
                    cells(d.presented_as, number=False),
                ]
                for d in outcome_definitions(run)
            ],
            [38 * mm, 45 * mm, 38 * mm, 52 * mm, 38 * mm, 56 * mm],
        ),
        *_meddra_section(run, cells, styles, body),
        *_safety_section(run, cells, styles, body),
        *_solicited_section(run, cells, styles, body),
        PageBreak(),
        Paragraph("Incidence by stratum", styles["Heading2"]),
        Paragraph(
            _text(
                "Acute outcomes (risk window ending on day 90 or earlier): proportion within the window. Long-term "
                "outcomes: rate per 100 person-years and cumulative incidence in %, Kaplan-Meier (KM) beside "
                f"Aalen-Johansen (AJ). {KM_VS_AJ} Figures of strata with fewer than {MIN_UNITS} {units} are not "
                "shown (the cell says so)."
            ),
            body,
        ),
        *_incidence_tables(run, results, cells, width, body),
    ]
    label = _text(outcome_label(chart_outcome))
    if "forest" in charts:
        story += [
            PageBreak(),
            Paragraph(f"Forest plot: estimates with 95 % intervals - {label}", styles["Heading2"]),
            _image(charts["forest"], width, height - 20 * mm),
        ]
    story += [PageBreak(), Paragraph(f"Cumulative incidence - {label}", styles["Heading2"])]
    if "km" in charts:
        story += [Paragraph(_text(KM_VS_AJ), body), _image(charts["km"], width, height - 30 * mm)]
    else:
        story.append(Paragraph(f"No curve: no {label} event after day 30 of the risk window.", body))
    if not comparisons:
        story += [
            Paragraph(f"Provider comparison - {label}", styles["Heading2"]),
            Paragraph(_text(NO_COMPARISON), body),
        ]
    for comparison in comparisons:
        story += [
            PageBreak(),
            Paragraph(
                f"Provider comparison adjusted for case mix, by {_text(GROUPINGS[comparison.grouping])} - {label}",
                styles["Heading2"],
            ),
            Paragraph(
                _text(
                    f"{basis_text(comparison.basis)} Observed {comparison.observed} cases, expected "
                    f"{fmt.significant(comparison.expected)}. Funnel: SIR against expected cases with the exact "
                    "Poisson control limits of observed / expected (95 % and 99.8 %). A low flag reads 'fewer than "
                    "expected: safer care or under-reporting', beside the follow-up completeness."
                ),
                body,
            ),
        ]
        key = f"funnel_{comparison.grouping}"
        if key in charts:
            story.append(_image(charts[key], width, height * 0.55))
        story.append(_provider_table(comparison, cells, units))
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
