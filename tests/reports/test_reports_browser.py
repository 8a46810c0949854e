"""End to end in a real browser: a registry administrator starts an incidence run on the Reports page,
opens its report, sees the charts, moves between outcomes, strata and provider groupings by plain links
and a form (no script), and downloads the XLSX workbook.

Headless Debian Chromium through Playwright, as tests/registry/test_admin_browser.py. Celery runs
eagerly here (tests/reports/conftest.py), so the run is computed when the form's transaction commits.
"""

from __future__ import annotations

import io
import re
import time

import pytest
from openpyxl import load_workbook

from reports.choices import RunStatus
from reports.exports.models import ExportLog
from reports.models import IncidenceRun
from tests.registry.test_admin_browser import log_in, page  # noqa: F401 - the Chromium page fixture
from tests.reports.documents_data import build_hot_registry
from tests.reports.test_documents_downloads import SHEETS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHARTS_LOADED = """() => {
  const images = [...document.querySelectorAll("img.chart")];
  return images.length === 3 && images.every(i => i.complete && i.naturalWidth > 0);
}"""


def test_an_administrator_starts_a_run_opens_its_charts_and_downloads_the_workbook(
    page,  # noqa: F811
    live_server,
    root,
    clinic_a,
    clinic_b,
):
    build_hot_registry(clinic_a, clinic_b)
    base = live_server.url
    log_in(page, base, "root")

    page.goto(f"{base}/admin/reports/incidencerun/add/")
    assert page.is_checked("input[name=strata][value=site]") and page.is_checked("input[name=strata][value=cell_type]")
    page.check("input[name=outcomes][value=infection]")
    page.check("input[name=outcomes][value=any]")
    page.fill("#id_cutoff_on", "2024-06-30")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")

    run = IncidenceRun.objects.get()
    deadline = time.monotonic() + 60
    while not page.locator("#run-report-link").count():
        assert time.monotonic() < deadline, f"run still {IncidenceRun.objects.get().status}"
        time.sleep(0.5)
        page.reload()
    assert IncidenceRun.objects.get().status == RunStatus.SUCCEEDED

    page.click("#run-report-link")
    page.wait_for_url(f"{base}/admin/reports/incidencerun/{run.pk}/report/")
    page.wait_for_function(CHARTS_LOADED, timeout=60_000)
    widths = page.eval_on_selector_all("img.chart", "images => images.map(i => i.naturalWidth)")
    assert len(widths) == 3 and min(widths) >= 1200
    assert page.locator("#provider-table").get_by_text("C-HOT").count() == 1

    # Another outcome is a tab away; the strata filter is a form; the country comparison a link.
    page.click('#outcome-tabs a[data-outcome="infection"]')
    page.wait_for_url(f"{base}/admin/reports/incidencerun/{run.pk}/report/?outcome=infection")
    assert page.locator('#outcome-tabs a.current[data-outcome="infection"]').count() == 1
    page.select_option("#filter-site", "knee")
    page.click('#strata-filter input[type="submit"]')
    page.wait_for_url(re.compile(r"[?&]site=knee(&|$)"))
    sites = page.eval_on_selector_all("#results tbody tr td:first-child", "cells => cells.map(c => c.textContent)")
    assert sites and set(sites) == {"knee"}
    page.click('#grouping-tabs a[data-grouping="country"]')
    page.wait_for_url(re.compile(r"[?&]grouping=country(&|#|$)"))
    assert page.locator("#provider-table").get_by_text("PT").count() == 1

    with page.expect_download() as download:
        page.click("#download-xlsx")
    assert download.value.suggested_filename == f"incidence-run-{run.pk}.xlsx"
    with open(download.value.path(), "rb") as fh:
        wb = load_workbook(io.BytesIO(fh.read()))
    assert wb.sheetnames == SHEETS
    assert wb["Incidence"].max_row - 1 == run.results.count()
    assert ExportLog.objects.filter(run=run, kind="run_xlsx", row_count__isnull=False).count() == 1
