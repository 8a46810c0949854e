"""Downloads of a run: the XLSX workbook, the PDF safety report, the report page; logged, and only for
those who may see the run."""

from __future__ import annotations

import io
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from django.test import Client
from openpyxl import load_workbook
from PIL import Image
from rest_framework.test import APIClient

from reports.choices import ExportKind
from reports.exports.deidentified import COLUMNS as DEIDENTIFIED_COLUMNS
from reports.exports.incidence_csv import header
from reports.exports.models import ExportLog
from reports.selectors import results_of_run
from tests.reports.documents_data import build_hot_registry, finished_run

pytestmark = pytest.mark.django_db

SHEETS = [
    "Incidence",
    "Provider comparison",
    "Funnel data",
    "Funnel plots",
    "Line listing",
    "Outcome definitions",
    "Definitions",
]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _admin(run, what):
    return f"/admin/reports/incidencerun/{run.pk}/{what}/"


def _api(run, what):
    return f"/api/v1/reports/incidence-runs/{run.pk}/report.{what}"


@pytest.fixture
def registry(clinic_a, clinic_b):
    return build_hot_registry(clinic_a, clinic_b)


def _sheet_rows(content: bytes, sheet: str) -> list[tuple]:
    wb = load_workbook(io.BytesIO(content), read_only=True)
    return list(wb[sheet].iter_rows(values_only=True))


def test_the_workbook_holds_the_stored_run_to_every_row_and_measure(root, registry):
    run = finished_run(actor=root, strata=("site", "cell_type"))
    response = _client(root).get(_admin(run, "xlsx"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    wb = load_workbook(io.BytesIO(response.content))
    assert wb.sheetnames == SHEETS
    rows = list(wb["Incidence"].iter_rows(values_only=True))
    columns = header(run.strata)
    assert list(rows[0]) == columns
    stored = list(results_of_run(run).values())
    assert len(rows) - 1 == len(stored) == run.row_count
    for got, record in zip(rows[1:], stored, strict=True):
        expected = [record["stratum"][s] for s in run.strata] + [record[c] for c in columns[len(run.strata) :]]
        # Counts and labels exactly; floats to the 16 significant digits openpyxl writes (Excel shows 15).
        assert [v is None for v in got] == [v is None for v in expected]  # empty = not estimable
        assert list(got) == [pytest.approx(v, rel=1e-15, abs=0) if isinstance(v, float) else v for v in expected]


def test_the_workbook_compares_clinics_lists_counted_events_and_defines_its_terms(root, registry, settings):
    settings.DEIDENTIFIED_MIN_K = 3  # the registry is small: 9 counted events of 9 patients
    run = finished_run(actor=root, strata=("site",), outcomes=["infection"])
    content = _client(root).get(_admin(run, "xlsx")).content
    provider = [
        dict(zip(_sheet_rows(content, "Provider comparison")[0], row, strict=True))
        for row in _sheet_rows(content, "Provider comparison")[1:]
    ]
    by_clinic = {row["group"]: row for row in provider if row["grouping"] == "clinic"}
    assert {code: row["observed"] for code, row in by_clinic.items()} == {"A-MAD": 2, "B-BER": 1, "C-HOT": 6}
    # C-HOT's patients are the only ones over 80: adjusted for age band, it has what its stratum predicts.
    assert by_clinic["C-HOT"]["flag"] == "within" and by_clinic["C-HOT"]["expected"] == pytest.approx(6.0)
    assert sum(row["observed"] for row in provider if row["grouping"] == "country") == 9

    listing = _sheet_rows(content, "Line listing")
    head = listing[0]
    assert head == DEIDENTIFIED_COLUMNS  # the same de-identified listing as the CSV export
    events = [dict(zip(head, row, strict=True)) for row in listing[1:]]
    # 3 infections at A and B, 6 at C; the retracted reactions are not counted, nor listed.
    assert len(events) == 9 and len({e["patient"] for e in events}) == 9
    assert {e["category"] for e in events} == {"infection"}
    # A (ES) and B (DE) hold 2 and 1 patients born 1970: only without the country do they reach k = 3.
    assert Counter((e["birth_year"], e["sex"], e["country"], e["procedure_period"]) for e in events) == {
        ("90+", "F", "*", "2023"): 6,  # C-HOT's patients, born 1930: top-coded
        ("1970", "F", "*", "2023"): 3,
    }
    assert {e["onset_day"] for e in events if e["birth_year"] == "90+"} == {2}
    assert not any(clinic in str(v) for row in listing for v in row for clinic in ("C-HOT", "A-MAD", "PT", "ES"))

    definitions = dict(_sheet_rows(content, "Definitions")[1:])
    assert definitions["Data cut-off"] == run.cutoff_on.isoformat()
    assert "Wilson" in definitions["Proportion interval"] and "Garwood" in definitions["Rate interval"]
    assert "Spiegelhalter" in definitions["Provider comparison"]
    assert "country=*" in definitions["Line listing"] and "at least 3 patients" in definitions["Line listing"]
    assert definitions["Generated by"] == "root"


def test_every_download_is_written_to_the_export_log(root, registry, settings):
    settings.DEIDENTIFIED_MIN_K = 3
    run = finished_run(actor=root, strata=("site",), outcomes=["any"])
    client, api = _client(root), APIClient()
    api.force_authenticate(root)
    assert client.get(_admin(run, "csv")).status_code == 200
    assert client.get(_admin(run, "xlsx")).status_code == 200
    assert client.get(_admin(run, "pdf")).status_code == 200
    assert api.get(_api(run, "xlsx")).status_code == 200
    assert api.get(_api(run, "pdf")).status_code == 200
    logs = list(ExportLog.objects.order_by("pk").values_list("kind", "run_id", "user__username", "row_count"))
    n = run.row_count
    assert logs == [
        (ExportKind.RUN_CSV, run.pk, "root", n),
        (ExportKind.RUN_XLSX, run.pk, "root", n + 9),  # result rows + the line listing's 9 events
        (ExportKind.RUN_PDF, run.pk, "root", n),
        (ExportKind.RUN_XLSX, run.pk, "root", n + 9),
        (ExportKind.RUN_PDF, run.pk, "root", n),
    ]


def test_the_pdf_safety_report_renders_to_several_pages(root, registry, tmp_path: Path):
    run = finished_run(actor=root, strata=("site", "cell_type"))
    api = APIClient()
    api.force_authenticate(root)
    response = api.get(_api(run, "pdf"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    subprocess.run(["/usr/bin/pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 2
    for page in pages:
        with Image.open(page) as image:
            assert image.size[0] > 300 and image.getextrema() != ((255, 255),) * len(image.getbands())
    text = subprocess.run(["/usr/bin/pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for words in ("safety report", "Data cut-off", "Methods", "Garwood", "Generated by", "root", "C-HOT"):
        assert words in text


def test_the_report_page_shows_tables_and_charts_that_are_images(root, registry):
    run = finished_run(actor=root, strata=("site", "cell_type"))
    client = _client(root)
    page = client.get(_admin(run, "report"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Download XLSX workbook" in html and "Download PDF safety report" in html
    assert "C-HOT" in html and 'id="provider-table"' in html and 'id="outcome-tabs"' in html
    for kind, query in (("forest", ""), ("km", ""), ("funnel", "&grouping=clinic")):
        url = f"/admin/reports/incidencerun/{run.pk}/chart/{kind}.png?outcome=any{query}"
        assert url.replace("&", "&amp;") in html
        image = client.get(url)
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(image.content)).size[0] >= 1200
    change = client.get(_admin(run, "change")).content.decode()
    assert _admin(run, "report") in change and _admin(run, "xlsx") in change


def test_a_clinician_cannot_download_another_clinics_run(alice, charlie, registry):
    run = finished_run(actor=alice, strata=("site",))
    admin, api = _client(charlie), APIClient()
    api.force_authenticate(charlie)
    for url in (
        _admin(run, "xlsx"),
        _admin(run, "pdf"),
        _admin(run, "report"),
        f"/admin/reports/incidencerun/{run.pk}/chart/km.png",
    ):
        assert admin.get(url).status_code in (403, 404), url
    for url in (_api(run, "xlsx"), _api(run, "pdf")):
        assert api.get(url).status_code in (403, 404), url
    assert not ExportLog.objects.exists()
    # The owner may.
    assert _client(alice).get(_admin(run, "xlsx")).status_code == 200


def test_a_clinicians_line_listing_and_comparison_hold_only_her_clinic(alice, clinic_a, registry, settings):
    settings.DEIDENTIFIED_MIN_K = 2
    run = finished_run(actor=alice, strata=("site",), outcomes=["infection"])
    content = _client(alice).get(_admin(run, "xlsx")).content
    listing = _sheet_rows(content, "Line listing")[1:]
    assert len(listing) == 2 and {row[DEIDENTIFIED_COLUMNS.index("country")] for row in listing} == {"ES"}
    provider = _sheet_rows(content, "Provider comparison")[1:]
    assert {row[1] for row in provider} == {"A-MAD", "ES", "GMP certified"}  # by clinic, country, GMP
    assert b"B-BER" not in content and b"C-HOT" not in content


def test_with_the_default_k_a_small_runs_listing_publishes_no_row_and_says_why(root, registry):
    run = finished_run(actor=root, strata=("site",), outcomes=["infection"])
    content = _client(root).get(_admin(run, "xlsx")).content
    assert _sheet_rows(content, "Line listing") == [DEIDENTIFIED_COLUMNS]  # 9 patients < k = 11
    definition = dict(_sheet_rows(content, "Definitions")[1:])["Line listing"]
    assert "at least 11 patients" in definition and "9 of 9 rows left out" in definition


def test_a_run_that_has_not_finished_has_no_documents(root, registry):
    from reports.services import incidence_run_start

    run = incidence_run_start(actor=root, cutoff_on=registry.created_at.date())
    assert _client(root).get(_admin(run, "xlsx")).status_code == 404
    assert _client(root).get(_admin(run, "report")).status_code == 404
