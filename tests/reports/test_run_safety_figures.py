"""Issue 10: a run stores its clinics' safety-reporting figures; the report page and the PDF safety report show them."""

from __future__ import annotations

import datetime as dt
import importlib
import re
import subprocess
from html import unescape

import pytest
from django.apps import apps

from events import services as event_services
from safety import services as safety_services
from tests.reports.documents_data import finished_run, logged_in, report_page
from tests.safety.conftest import make_case

pytestmark = pytest.mark.django_db

SHIPPED_RULES = importlib.import_module("safety.migrations.0002_reporting_rules")
CUTOFF = dt.date(2026, 6, 30)


@pytest.fixture
def reported(clinic_a, clinic_b, alice, charlie):
    """Return clinic A's serious case, its ICH report submitted 21 days after awareness (late), and a mild B case."""
    SHIPPED_RULES.add_rules(apps, None)  # a transactional test elsewhere may have flushed them
    case = make_case(clinic_a)  # aware 2026-01-30: ICH E2A, due 2026-02-14
    due = case.due_reports.get()
    safety_services.submission_record(
        actor=alice, due_report=due, submitted_on=dt.date(2026, 2, 20), reference_number="AEMPS-1"
    )
    make_case(clinic_b, serious=False, serious_hospitalisation=False, grade=1, action_taken="none")
    return case


def _rows(html: str) -> dict[str, list[str]]:
    table = re.search(r'<table id="safety-figures-table">(.*?)</table>', html, re.S).group(1).split("<tbody>")[1]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        raw = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in raw]
        rows[cells[0]] = cells[1:]
    return rows


def test_a_run_stores_each_clinics_figures_and_their_total(reported, root):
    run = finished_run(actor=root, strata=("site",), cutoff_on=CUTOFF)
    stored = {f.clinic_code: f for f in run.safety_figures.all()}
    assert list(run.safety_figures.values_list("clinic_code", flat=True)) == ["A-MAD", "B-BER", ""]
    a = stored["A-MAD"]
    assert (a.events, a.submissions, a.on_time, a.median_awareness_to_submission, a.open_overdue) == (1, 1, 0, 21.0, 0)
    assert a.stale_open_cases == 1  # open, known since January, never followed up
    assert (stored[""].events, stored[""].submissions) == (2, 1)

    rows = _rows(report_page(logged_in(root), run))
    assert rows["A-MAD"][2:5] == ["1", "21.0", "0.0 %"]
    assert rows["all clinics"][0] == "2"


def test_the_stored_figures_do_not_move_when_the_registry_changes(reported, root, alice):
    run = finished_run(actor=root, strata=("site",), cutoff_on=CUTOFF)
    before = _rows(report_page(logged_in(root), run))
    event_services.adverse_event_retract(actor=alice, event=reported, reason="Entered on the wrong patient.")
    assert _rows(report_page(logged_in(root), run)) == before


def test_a_clinicians_run_holds_only_her_clinics_figures(reported, alice):
    run = finished_run(actor=alice, strata=("site",), cutoff_on=CUTOFF)
    assert list(run.safety_figures.values_list("clinic_code", flat=True)) == ["A-MAD", ""]
    assert "B-BER" not in report_page(logged_in(alice), run).split('id="safety-figures-table"')[1].split("</table>")[0]


def test_the_pdf_safety_report_carries_the_figures(reported, root, tmp_path):
    run = finished_run(actor=root, strata=("site",), cutoff_on=CUTOFF)
    response = logged_in(root).get(f"/admin/reports/incidencerun/{run.pk}/pdf/")
    assert response.status_code == 200
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"".join(response.streaming_content) if response.streaming else response.content)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Safety reporting by clinic" in text
    assert re.search(r"A-MAD\s+1\s+\S+\s+1\s+21\.0\s+0\.0 %\s+0\s+1", text), text[text.find("Safety reporting") :][:800]
