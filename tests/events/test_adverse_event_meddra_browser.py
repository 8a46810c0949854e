"""In a real browser: a clinician codes an event by typing the verbatim term and picking a current MedDRA term."""

from __future__ import annotations

import pytest

from events.models import AdverseEvent
from tests.factories import AdverseEventFactory
from tests.registry.test_admin_browser import log_in, page  # noqa: F401 - the Chromium page fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clinician_codes_an_event_by_typing_its_term(page, live_server, alice, meddra_27_1, procedure_a):  # noqa: F811
    event = AdverseEventFactory(procedure=procedure_a, term="Knee swollen after injection")
    refused = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    base = live_server.url
    log_in(page, base, "alice")

    page.goto(f"{base}/admin/events/adverseevent/{event.pk}/change/")
    page.click(".field-meddra_code .select2-selection")
    page.fill(".select2-search__field", "knee")
    page.click(".select2-results__option >> text=Synthetic knee swelling (94000004)")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")

    stored = AdverseEvent.objects.get(pk=event.pk)
    assert (stored.meddra_code, stored.meddra_pt_name, stored.meddra_soc_code, stored.meddra_version) == (
        "94000004",
        "Synthetic joint swelling",
        "90000003",
        "27.1",
    )
    assert refused == []
