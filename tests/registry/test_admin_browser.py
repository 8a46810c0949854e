"""End to end in a real browser: a clinician records a knee procedure and its adverse event.

Drives Debian's headless Chromium through Playwright against the live admin. Playwright
never downloads a browser here; /usr/bin/chromium is installed by scripts/test.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil

import pytest
from django.contrib.auth import get_user_model

from events.models import AdverseEvent
from registry.models import Patient, Procedure
from tests.conftest import PASSWORD, confirmed_device, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page(monkeypatch):
    # Playwright's sync API refuses to run inside a running asyncio loop; Django's
    # async-unsafe guard must also let the live server's ORM calls through (this test only).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), (
        f"{CHROMIUM} is missing: run scripts/test (it installs Debian's chromium) or set CHROMIUM_PATH"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(15_000)
        # Only the live server is reachable: a request elsewhere (a CDN) fails at once, off the network.
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])"), lambda route: route.abort())
        yield context.new_page()
        context.close()
        browser.close()


def log_in(page, base, username):
    """Log in through the login page with the password and the code the persona's authenticator shows."""
    device = confirmed_device(get_user_model().objects.get(username=username))
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", totp_code(device))
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def log_out(page, base):
    page.click("#logout-form button")
    page.wait_for_url(f"{base}/admin/logout/")


def test_a_clinician_records_a_knee_procedure_and_its_event_and_only_her_clinic_sees_it(
    page, live_server, alice, charlie
):
    base = live_server.url
    log_in(page, base, "alice")

    # Register a patient with a knee procedure in the inline.
    page.goto(f"{base}/admin/registry/patient/add/")
    page.select_option("#id_sex", "F")
    page.fill("#id_birth_year", "1968")
    page.fill("#id_enrolled_on", "2024-03-01")
    page.click("#procedures-group .add-row a")
    page.fill("#id_procedures-0-performed_on", "2024-03-04")
    page.select_option("#id_procedures-0-site", "knee")
    page.select_option("#id_procedures-0-laterality", "right")
    page.select_option("#id_procedures-0-cell_source", "autologous")
    page.select_option("#id_procedures-0-cell_type", "adipose_svf")
    page.select_option("#id_procedures-0-processing", "minimally_manipulated")
    page.fill("#id_procedures-0-cell_dose_millions", "30")
    page.select_option("#id_procedures-0-carrier", "saline")
    page.select_option("#id_procedures-0-guidance", "ultrasound")
    page.fill("#id_procedures-0-product_lot", "SVF-2024-031")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")

    patient = Patient.objects.get()
    procedure = Procedure.objects.get()
    assert patient.clinic == alice.memberships.get().clinic
    assert procedure.site == "knee"
    assert procedure.visits.count() == 10

    # Record an adverse event on the procedure page.
    page.goto(f"{base}/admin/registry/procedure/{procedure.pk}/change/")
    page.click("#adverse_events-group .add-row a")
    page.select_option("#id_adverse_events-0-category", "infection")
    page.fill("#id_adverse_events-0-term", "Septic arthritis right knee")
    page.fill("#id_adverse_events-0-onset_on", "2024-03-08")
    page.select_option("#id_adverse_events-0-grade", "3")
    page.check("#id_adverse_events-0-serious")
    page.check("#id_adverse_events-0-serious_hospitalisation")
    page.select_option("#id_adverse_events-0-outcome", "recovered")
    page.fill("#id_adverse_events-0-resolved_on", "2024-03-20")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert AdverseEvent.objects.get().term == "Septic arthritis right knee"

    # She sees it listed.
    page.goto(f"{base}/admin/events/adverseevent/")
    assert page.locator("#result_list").get_by_text("Septic arthritis right knee").count() == 1
    if os.environ.get("BROWSER_SCREENSHOT"):
        page.screenshot(path=os.environ["BROWSER_SCREENSHOT"])

    # A clinician of another clinic does not: not in the list, not by URL.
    log_out(page, base)
    log_in(page, base, "charlie")
    page.goto(f"{base}/admin/events/adverseevent/")
    assert "Septic arthritis" not in page.content()
    page.goto(f"{base}/admin/events/adverseevent/{AdverseEvent.objects.get().pk}/change/")
    assert "Septic arthritis" not in page.content()
    page.goto(f"{base}/admin/registry/patient/")
    assert patient.registry_id not in page.content()


def test_a_bad_date_comes_back_as_a_field_error_and_saves_nothing(page, live_server, alice):
    base = live_server.url
    log_in(page, base, "alice")
    page.goto(f"{base}/admin/registry/patient/add/")
    page.select_option("#id_sex", "M")
    page.fill("#id_birth_year", "1850")
    page.fill("#id_enrolled_on", (dt.date.today() + dt.timedelta(days=5)).isoformat())
    page.click("input[name=_save]")
    page.wait_for_selector(".errornote")
    assert "Birth year must be 1900 or later" in page.locator(".field-birth_year").inner_text()
    assert "cannot be in the future" in page.locator(".field-enrolled_on").inner_text()
    assert Patient.objects.count() == 0
