"""PDFs of the safety app (reportlab, A4): the CIOMS I form of a case and the safety report of figures.

reportlab is imported when the first document is drawn, not in every web worker (~60 MB RSS),
as reports.documents does.
"""

from __future__ import annotations

import io
from html import escape

from django.utils import timezone

from safety.cioms import Box
from safety.selectors import Figures


def _text(value) -> str:
    """Return ``value`` as Paragraph markup: escaped, line breaks kept."""
    return escape(str(value), quote=False).replace("\n", "<br/>")


def _document(title: str, story_of) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=title,
        author="Adverse event registry",
    )
    doc.build(story_of(getSampleStyleSheet(), doc.width))
    return buffer.getvalue()


def _grid(rows, widths, *, header: bool):
    from reportlab.lib import colors
    from reportlab.platypus import LongTable, TableStyle

    table = LongTable(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#777777")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")))
    table.setStyle(TableStyle(style))
    return table


def cioms_pdf(event_id: str, boxes: list[Box]) -> bytes:
    """Return the CIOMS I form of the event ``event_id`` with ``boxes`` (safety.cioms.cioms_boxes) as a PDF."""

    def story(styles, width):
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.platypus import Paragraph, Spacer

        cell = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=8.5, leading=10.5)
        label = ParagraphStyle("label", parent=cell, fontName="Helvetica-Bold")
        rows = [
            [Paragraph(_text(box.number), label), Paragraph(_text(box.label), label), Paragraph(_text(box.value), cell)]
            for box in boxes
        ]
        return [
            Paragraph("CIOMS FORM - SUSPECT ADVERSE REACTION REPORT", styles["Title"]),
            Paragraph(_text(f"Adverse event {event_id} - generated {timezone.localtime():%Y-%m-%d %H:%M}"), cell),
            Spacer(1, 6),
            _grid(rows, [0.08 * width, 0.27 * width, 0.65 * width], header=False),
        ]

    return _document(f"CIOMS I - {event_id}", story)


def _median(value) -> str:
    return "-" if value is None else f"{value:g}"


def figures_pdf(rows: list[Figures], *, scope: str) -> bytes:
    """Return the safety report: the figures per clinic and their total (safety.selectors.safety_figures)."""

    def story(styles, width):
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.platypus import Paragraph, Spacer

        cell = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=8, leading=10)
        head = ParagraphStyle("head", parent=cell, fontName="Helvetica-Bold")
        header = [
            "Clinic",
            "Events",
            "Median days onset to recording",
            "Reports submitted",
            "Median days awareness to submission",
            "Submitted on time",
            "Open reports overdue",
            "Open cases > 30 days without follow-up",
        ]
        table = [[Paragraph(_text(h), head) for h in header]]
        for row in rows:
            share = "-" if row.on_time_share is None else f"{row.on_time}/{row.submissions} ({row.on_time_share:.0%})"
            values = [
                f"{row.clinic.code} ({row.clinic.country})" if row.clinic else "All clinics shown",
                row.events,
                _median(row.median_onset_to_recording),
                row.submissions,
                _median(row.median_awareness_to_submission),
                share,
                row.open_overdue,
                row.stale_open_cases,
            ]
            table.append([Paragraph(_text(v), cell) for v in values])
        return [
            Paragraph("Safety report: expedited reporting figures", styles["Title"]),
            Paragraph(
                _text(f"{scope}. Generated {timezone.localtime():%Y-%m-%d %H:%M}. Retracted events excluded."), cell
            ),
            Spacer(1, 6),
            _grid(table, [width / len(header)] * len(header), header=True),
        ]

    return _document("Safety report", story)
