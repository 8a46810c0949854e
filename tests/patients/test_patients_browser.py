"""In Chromium at a phone viewport (390x844), the pages again at a desktop one: the patient's diary with a
red flag shows "contact the clinic now" with the phone, the coordinator is emailed, and a clinician confirms
the report in the admin. axe-core (axe-playwright-python) finds no serious or critical violation on any
patient page.

Each page's axe result (violations by impact) is written to AXE_RESULTS_PATH when it is set.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from events.models import AdverseEvent
from patients import services
from patients.models import PatientReport
from patients.tokens import new_token
from tests.patients.conftest import PHONE_A
from tests.registry.test_admin_browser import log_in, page  # noqa: F401 - the page fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
BLOCKING = {"serious", "critical"}


def _axe(page, name: str, results: dict) -> None:  # noqa: F811 - page is the fixture's value
    violations = Axe().run(page).response["violations"]
    results[name] = {
        "violations": len(violations),
        "by_impact": {v["impact"]: sum(1 for w in violations if w["impact"] == v["impact"]) for v in violations},
        "rules": sorted({v["id"] for v in violations}),
    }
    blocking = [(v["id"], v["impact"], v["help"]) for v in violations if v["impact"] in BLOCKING]
    assert not blocking, (name, blocking)


def test_a_red_flag_in_the_diary_reaches_the_clinic_and_a_clinician_confirms_it(
    page,  # noqa: F811
    live_server,
    alice,
    dora,
    link_x,
    mailoutbox,
):
    dora.email = "dora@clinic-a.example"
    dora.save()
    _, token = link_x
    base = live_server.url
    results: dict = {}
    page.set_viewport_size(PHONE)

    page.goto(f"{base}/p/{token}/?lang=en")
    assert page.locator("h1").inner_text() == "Your injection: how are you?"
    assert page.locator('a[href="tel:+34910000111"]').is_visible()
    _axe(page, "home", results)
    # Nothing wider than the phone: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.click("text=Fill in today's diary")
    page.wait_for_url(f"{base}/p/{token}/diary/")
    _axe(page, "diary", results)
    page.fill("#id_pain", "12")  # out of range: a field-level error first
    page.check("#id_swelling_1")
    page.click("button[type=submit]")
    assert "Ensure this value is less than or equal to 10" in page.locator("form").inner_text()
    _axe(page, "diary with errors", results)
    page.fill("#id_pain", "6")
    page.fill("#id_temperature_c", "38.6")
    page.check("#id_discharge")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/p/{token}/diary/saved/")
    alert = page.locator(".urgent")
    assert "Contact the clinic now" in alert.inner_text() and PHONE_A in alert.inner_text()
    assert alert.locator('a[href="tel:+34910000111"]').is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _axe(page, "red-flag result", results)

    report = PatientReport.objects.get()
    assert report.urgent and set(report.red_flags) == {"fever", "discharge"}
    assert [m.to for m in mailoutbox] == [["dora@clinic-a.example"]]

    page.goto(f"{base}/p/{token}/problem/")
    _axe(page, "problem form", results)
    page.click("button[type=submit]")  # empty: every required field says so
    _axe(page, "problem form with errors", results)
    page.fill("#id_what", "The knee is still swollen")
    page.fill("#id_since_on", report.entry_on.isoformat())
    page.check("#id_severity_0")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/p/{token}/problem/\d+/$"))
    assert "Your report has been sent to the clinic" in page.locator("main").inner_text()
    _axe(page, "problem sent", results)

    page.goto(f"{base}/p/{new_token()}/")
    assert "This link is not valid" in page.content()
    _axe(page, "404", results)

    page.goto(f"{base}/p/{token}/?lang=es")
    assert page.locator("h1").inner_text() == "Su inyección: ¿cómo se encuentra?"
    _axe(page, "home (Spanish)", results)

    # The same pages at a desktop viewport.
    page.set_viewport_size(DESKTOP)
    for name, path in (("home", ""), ("diary", "diary/"), ("problem form", "problem/")):
        page.goto(f"{base}/p/{token}/{path}?lang=en")
        _axe(page, f"{name} (desktop)", results)

    if os.environ.get("AXE_RESULTS_PATH"):
        with open(os.environ["AXE_RESULTS_PATH"], "w") as out:
            json.dump(results, out, indent=1, sort_keys=True)

    # The clinician's side: the urgent item in the queue, confirmed as an adverse event.
    page.set_viewport_size({"width": 1400, "height": 1000})
    log_in(page, base, "alice")
    page.goto(f"{base}/admin/patients/patientreport/?queue=urgent")
    page.click(f'#result_list a[href^="/admin/patients/patientreport/{report.pk}/change/"]')
    page.click("#confirm-report")
    page.select_option("#id_category", "infection")
    page.fill("#id_term", "Fever and discharge at the injection site")
    page.select_option("#id_grade", "2")
    page.click("input[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".errorlist").count() == 0, page.locator("#content-main").inner_text()
    page.wait_for_url(f"{base}/admin/patients/patientreport/{report.pk}/change/")
    report.refresh_from_db()
    event = AdverseEvent.objects.get()
    assert report.status == "confirmed" and report.adverse_event == event
    assert (event.reporter_type, event.category, event.grade) == ("patient", "infection", 2)
    assert services.diary_day(report.procedure) == report.day
