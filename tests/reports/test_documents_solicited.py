"""The solicited-reactions table (issue 12): for the run's procedures whose diary was used, the share with
each symptom on each day 0-7 and pain by grade; one SQL statement; on the report page, in the XLSX and
the PDF when any diary exists, and absent otherwise."""

from __future__ import annotations

import datetime as dt
import io
import subprocess

import pytest
from openpyxl import load_workbook

from core.dates import today
from patients import services as patient_services
from patients.models import PatientReport
from reports.documents.solicited import solicited_table
from tests.patients.conftest import procedure_of
from tests.reports.documents_data import finished_run, logged_in, report_page, table_rows

pytestmark = pytest.mark.django_db


def _day(link, day, **fields):
    procedure = link.procedure
    return PatientReport.objects.create(
        procedure=procedure,
        link=link,
        kind="diary",
        day=day,
        entry_on=procedure.performed_on + dt.timedelta(days=day),
        **{"pain": 0, "swelling": "none", **fields},
    )


@pytest.fixture
def diaries(alice, charlie, clinic_a, clinic_b):
    """Clinic A: P1 (days 0, 1), P2 (day 0), P3 (no diary); clinic B: Q1 (day 0, rejected day 1)."""
    links = {}
    for name, clinic, actor in (("p1", clinic_a, alice), ("p2", clinic_a, alice), ("q1", clinic_b, charlie)):
        links[name] = patient_services.patient_link_issue(actor=actor, procedure=procedure_of(clinic, days_ago=10))[0]
    procedure_of(clinic_a, days_ago=10)
    _day(links["p1"], 0, pain=8, swelling="moderate", fatigue=True)
    _day(links["p1"], 1, pain=3, redness=True, redness_cm=2)
    _day(links["p2"], 0, pain=2, temperature_c=38.2, flu_like=True)
    _day(links["q1"], 0, pain=5, swelling="mild")
    _day(links["q1"], 1, pain=10, discharge=True, status="rejected", reject_reason="Entered for the wrong patient")
    return links


def _rows(table):
    return {r.label: r.shares[:2] for r in (*table.symptoms, *table.pain)}


def test_the_table_gives_each_days_shares_in_one_statement(root, diaries, django_assert_num_queries):
    run = finished_run(actor=root, cutoff_on=today(), strata=("site",))
    with django_assert_num_queries(1):
        table = solicited_table(run)
    assert table.procedures == 3 and table.entries == (3, 1, 0, 0, 0, 0, 0, 0)
    rows = _rows(table)
    assert rows["pain (1-10)"] == (1.0, 1.0)
    assert rows["swelling"] == (pytest.approx(2 / 3), 0.0)
    assert rows["redness"] == (0.0, 1.0)
    assert rows["fever (measured >= 38.0 C)"] == (pytest.approx(1 / 3), 0.0)
    assert rows["discharge"] == (0.0, 0.0)  # Q1's only discharge was rejected by the clinic
    assert rows["flu-like symptoms"] == rows["fatigue"] == (pytest.approx(1 / 3), 0.0)
    assert (rows["0"], rows["1-3"], rows["4-6"], rows["7-10"]) == (
        (0.0, 0.0),
        (pytest.approx(1 / 3), 1.0),
        (pytest.approx(1 / 3), 0.0),
        (pytest.approx(1 / 3), 0.0),
    )
    assert [r.shares[2] for r in table.symptoms] == [None] * len(table.symptoms)  # nobody wrote on day 2


def test_a_clinics_run_reads_only_its_diaries_up_to_the_cut_off(alice, diaries):
    run = finished_run(actor=alice, cutoff_on=today(), strata=("site",))
    assert solicited_table(run).procedures == 2
    early = finished_run(actor=alice, cutoff_on=today() - dt.timedelta(days=10), strata=("site",))
    table = solicited_table(early)
    assert table.entries[:2] == (2, 0)  # day 1 was written after that cut-off


def test_the_page_xlsx_and_pdf_show_it(root, diaries, tmp_path):
    run = finished_run(actor=root, cutoff_on=today(), strata=("site",))
    client = logged_in(root)
    html = report_page(client, run)
    rows = table_rows(html, "solicited-table")
    assert rows[0] == ["3", "1", "0", "0", "0", "0", "0", "0"]
    assert rows[2][:2] == ["67 %", "0 %"]  # swelling
    content = client.get(f"/admin/reports/incidencerun/{run.pk}/xlsx/").content
    sheet = list(load_workbook(io.BytesIO(content), read_only=True)["Solicited reactions"].iter_rows(values_only=True))
    assert sheet[0][:4] == ("section", "label", "day_0", "day_1") and sheet[1][:4] == ("entries", "diary entries", 3, 1)
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(client.get(f"/admin/reports/incidencerun/{run.pk}/pdf/").content)
    text = subprocess.run(["/usr/bin/pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Solicited reactions" in text and "diary entries" in text


def test_without_diaries_there_is_no_table(root, clinic_a):
    procedure_of(clinic_a, days_ago=10)
    run = finished_run(actor=root, cutoff_on=today(), strata=("site",))
    assert solicited_table(run) is None
    client = logged_in(root)
    assert "solicited-table" not in report_page(client, run)
    content = client.get(f"/admin/reports/incidencerun/{run.pk}/xlsx/").content
    assert "Solicited reactions" not in load_workbook(io.BytesIO(content), read_only=True).sheetnames
