"""A run's table of counted events by MedDRA primary SOC and preferred term (issue 10, "Coding with MedDRA"):
stored with the run from the coded events that counted, on the report page, in the XLSX and the PDF, and
absent when no event is coded. The synthetic release of tests/meddra (made-up codes):
LLT 94000001 -> PT 93000001 "Synthetic injection site pain" (SOC 90000001); LLT 94000003 -> PT 93000002
"Synthetic septic arthritis", primary SOC 90000002 (also in 90000003)."""

from __future__ import annotations

import datetime as dt
import io
import subprocess

import pytest
from django.test import Client
from openpyxl import load_workbook
from rest_framework.test import APIClient

from events.models import AdverseEvent
from tests.factories import AdverseEventFactory
from tests.meddra.conftest import load
from tests.reports.conftest import add_event, complete_visit, make_procedure
from tests.reports.documents_data import finished_run

pytestmark = pytest.mark.django_db

D0 = dt.date(2023, 3, 1)


@pytest.fixture
def coded(clinic_a):
    load("27.1")
    first, second, third = (make_procedure(clinic=clinic_a, performed_on=D0) for _ in range(3))
    for proc in (first, second, third):
        complete_visit(proc, 60)

    def code(proc, day, llt, category):
        return AdverseEventFactory(
            procedure=proc,
            category=category,
            onset_on=proc.performed_on + dt.timedelta(days=day),
            outcome="recovering",
            meddra_code=llt,
        )

    code(first, 1, "94000001", "injection_site_reaction")
    code(first, 2, "94000001", "injection_site_reaction")  # a repeat: two events, one procedure
    code(second, 3, "94000001", "injection_site_reaction")
    code(third, 10, "94000003", "infection")
    add_event(third, 20, category="other")  # not coded: not in the table
    # Onset after the cut-off: not counted, so not in the table either.
    code(second, 500, "94000003", "infection")
    return first, second, third


def test_the_run_stores_counted_events_by_primary_soc_and_pt(root, coded):
    assert AdverseEvent.objects.exclude(meddra_pt_code="").count() == 5
    run = finished_run(actor=root, strata=("site",), cutoff_on=dt.date(2023, 6, 30))
    table = list(run.meddra_counts.values_list("soc_code", "pt_code", "pt_name", "events", "procedures"))
    # By SOC name ("Synthetic general disorders..." before "Synthetic infections..."), then PT name.
    assert table == [
        ("90000001", "93000001", "Synthetic injection site pain", 3, 2),
        ("90000002", "93000002", "Synthetic septic arthritis", 1, 1),
    ]
    assert list(run.meddra_counts.values_list("position", flat=True)) == [0, 1]


def test_the_page_workbook_and_pdf_show_the_table(root, coded, tmp_path):
    run = finished_run(actor=root, strata=("site",), cutoff_on=dt.date(2023, 6, 30))
    client = Client()
    client.force_login(root)
    page = client.get(f"/admin/reports/incidencerun/{run.pk}/report/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="meddra-table"' in html and "Synthetic septic arthritis" in html
    api = APIClient()
    api.force_authenticate(root)
    workbook = load_workbook(io.BytesIO(api.get(f"/api/v1/reports/incidence-runs/{run.pk}/report.xlsx").content))
    rows = list(workbook["MedDRA SOC-PT"].iter_rows(values_only=True))
    assert rows[0] == ("soc_code", "soc_name", "pt_code", "pt_name", "events", "procedures")
    assert {r[3]: (r[4], r[5]) for r in rows[1:]} == {
        "Synthetic injection site pain": (3, 2),
        "Synthetic septic arthritis": (1, 1),
    }
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(api.get(f"/api/v1/reports/incidence-runs/{run.pk}/report.pdf").content)
    text = subprocess.run(["/usr/bin/pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "MedDRA system organ class" in text and "Synthetic injection site pain" in text


def test_without_coded_events_there_is_no_table(root, clinic_a):
    proc = make_procedure(clinic=clinic_a, performed_on=D0)
    add_event(proc, 3)
    run = finished_run(actor=root, strata=("site",), cutoff_on=dt.date(2023, 6, 30))
    assert not run.meddra_counts.exists()
    client = Client()
    client.force_login(root)
    assert 'id="meddra-table"' not in client.get(f"/admin/reports/incidencerun/{run.pk}/report/").content.decode()
    api = APIClient()
    api.force_authenticate(root)
    workbook = load_workbook(io.BytesIO(api.get(f"/api/v1/reports/incidence-runs/{run.pk}/report.xlsx").content))
    assert "MedDRA SOC-PT" not in workbook.sheetnames
