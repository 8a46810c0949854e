"""In a real browser: awareness -> follow-up -> medical review -> a due report appears -> its submission.

alice (clinician, clinic A) corrects the awareness date and adds a follow-up that makes the case
serious (the site still finds it expected: nothing is due); sam (safety reviewer) reviews it as
unexpected, which makes the ICH E2A 15-day report due from the review date; dora (coordinator)
sees it on the "Reports due" page and records its submission.
"""

from __future__ import annotations

import datetime as dt

import pytest

from core.dates import today
from events.models import AdverseEvent
from safety.models import DueReport, Submission
from tests.registry.test_admin_browser import log_in, log_out, page  # noqa: F401 - the Chromium page fixture
from tests.safety.conftest import ICH_15, make_case

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_case_becomes_reportable_on_review_and_its_submission_is_recorded(
    page,  # noqa: F811 - the Chromium page fixture
    live_server,
    alice,
    sam,
    dora,
    clinic_a,
):
    event = make_case(
        clinic_a,
        serious=False,
        serious_hospitalisation=False,
        grade=2,
        action_taken="medication",
        expectedness="expected",
        aware_on=dt.date(2026, 1, 28),
    )
    assert DueReport.objects.count() == 0
    base = live_server.url

    # Awareness: alice corrects the date the clinic first learned of the event.
    log_in(page, base, "alice")
    page.goto(f"{base}/admin/events/adverseevent/{event.pk}/change/")
    page.fill("#id_aware_on", "2026-01-30")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert AdverseEvent.objects.get(pk=event.pk).aware_on == dt.date(2026, 1, 30)

    # Follow-up: the patient was admitted; the site keeps the event expected, so no rule is met yet.
    page.goto(f"{base}/admin/events/adverseevent/{event.pk}/follow-up/add/")
    page.fill("#id_received_on", "2026-02-10")
    page.fill("#id_narrative", "Admitted for IV antibiotics after a positive joint aspirate.")
    page.check("#id_serious")
    page.check("#id_serious_hospitalisation")
    page.select_option("#id_grade", "3")
    page.select_option("#id_action_taken", "hospitalisation")
    page.click("input[type=submit].default")
    page.wait_for_selector(".messagelist li")  # "Follow-up 1 recorded (...)"
    assert AdverseEvent.objects.get(pk=event.pk).serious is True
    assert DueReport.objects.count() == 0
    log_out(page, base)

    # Review: sam finds the infection unexpected and probably related: the 15-day clock starts today.
    log_in(page, base, "sam")
    page.goto(f"{base}/admin/events/adverseevent/{event.pk}/review/add/")
    page.check("#id_serious")
    page.check("#id_serious_hospitalisation")
    page.select_option("#id_causality_procedure", "probable")
    page.select_option("#id_causality_product", "possible")
    page.select_option("#id_expectedness", "unexpected")
    page.click("input[type=submit].default")
    page.wait_for_selector(".messagelist .success")
    due = DueReport.objects.get()
    assert (due.rule.code, due.started_by, due.clock_start) == (ICH_15, "review", today())
    log_out(page, base)

    # The due report: dora sees it on the Reports due page and records the submission.
    log_in(page, base, "dora")
    page.goto(f"{base}/admin/")
    page.click("a[href='/admin/safety/duereport/']")
    row = page.locator(f"tr[data-due-report='{due.pk}']")
    assert event.external_id in row.inner_text()
    assert f"{due.due_on:%Y-%m-%d}" in row.inner_text() and "overdue" not in row.inner_text()
    row.locator("text=Record submission").click()
    page.fill("#id_submitted_on", f"{today():%Y-%m-%d}")
    page.fill("#id_reference_number", "AEMPS-2026-0042")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert "Submission AEMPS-2026-0042 recorded." in page.inner_text(".messagelist")

    submission = Submission.objects.get()
    assert (submission.due_report_id, submission.submitted_by, submission.late) == (due.pk, dora, False)
    assert DueReport.objects.get(pk=due.pk).status == "submitted"
    page.goto(f"{base}/admin/safety/duereport/?status=submitted")
    assert "AEMPS-2026-0042" in page.inner_text(f"tr[data-due-report='{due.pk}']")
