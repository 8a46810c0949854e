"""In a real browser: awareness on the event page, a follow-up from the clinic, a medical review by the safety
reviewer, and the timeline showing both, the disagreement in words (the first half of issue 10's walk)."""

from __future__ import annotations

import datetime as dt

import pytest

from events.models import AdverseEvent, FollowUpReport, MedicalReview
from tests.factories import AdverseEventFactory, ProcedureFactory
from tests.registry.test_admin_browser import log_in, log_out, page  # noqa: F401 - the Chromium page fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def saved(tab) -> None:
    """Wait for the page after a submit: a success message, else fail naming the form's errors."""
    tab.wait_for_selector(".messagelist .success, .errornote, .errorlist")
    errors = tab.locator(".errornote, .errorlist")
    assert errors.count() == 0, errors.all_inner_texts()


def test_awareness_follow_up_and_review_walk_through_the_admin(page, live_server, alice, sam, clinic_a):  # noqa: F811
    procedure = ProcedureFactory(patient__clinic=clinic_a, performed_on=dt.date(2024, 3, 1))
    event = AdverseEventFactory(
        procedure=procedure, category="infection", term="Hot swollen knee", onset_on=dt.date(2024, 3, 3),
        grade=2, outcome="recovering", causality_procedure="unlikely",
    )  # fmt: skip
    refused = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    base = live_server.url
    change = f"{base}/admin/events/adverseevent/{event.pk}/change/"

    # The clinic records when it learned of the event.
    log_in(page, base, "alice")
    page.goto(change)
    page.fill("#id_aware_on", "2024-03-04")
    page.click("input[name=_save]")
    saved(page)
    assert AdverseEvent.objects.get(pk=event.pk).aware_on == dt.date(2024, 3, 4)

    # A follow-up makes it serious (hospitalised) and records the recovery.
    page.goto(change)
    page.click("a.add-follow-up-link")
    page.fill("#id_received_on", "2024-03-20")
    page.fill("#id_narrative", "Admitted for arthroscopic washout; recovered.")
    page.check("#id_serious")
    page.check("#id_serious_hospitalisation")
    page.select_option("#id_grade", "3")
    page.select_option("#id_outcome", "recovered")
    page.fill("#id_resolved_on", "2024-03-18")
    page.click("input[type=submit]")
    saved(page)
    assert FollowUpReport.objects.get(event=event).number == 1
    timeline = page.inner_text(".case-timeline")
    assert "Follow-up 1: received 2024-03-20" in timeline
    assert "Outcome: Recovering / resolving → Recovered / resolved" in timeline
    log_out(page, base)

    # The safety reviewer reads the case and records a review that disagrees on causality.
    log_in(page, base, "sam")
    page.goto(change)
    assert page.locator("a.add-follow-up-link").count() == 0
    page.click("a.record-review-link")
    page.check("#id_serious")
    page.check("#id_serious_hospitalisation")
    page.select_option("#id_causality_procedure", "probable")
    page.select_option("#id_causality_product", "possible")
    page.select_option("#id_expectedness", "unexpected")
    page.click("input[type=submit]")
    saved(page)
    assert MedicalReview.objects.get(event=event).causality_procedure == "probable"
    differs = page.inner_text(".case-review tr.case-differs")
    assert "Differs from the site" in differs
    assert AdverseEvent.objects.get(pk=event.pk).causality_procedure == "unlikely"
    assert refused == []
