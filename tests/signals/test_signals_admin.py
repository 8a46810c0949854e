"""The Signals admin page: registry administrators see the latest run's signals and alerts; clinic staff see nothing."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest
from django.urls import reverse

from events.models import AdverseEvent
from reports.exports.views import AdverseEventLineListing
from signals.choices import SignalTrigger
from signals.models import SignalReview, SignalRun
from signals.services import signal_run_execute
from tests.conftest import PASSWORD
from tests.signals.conftest import CUTOFF, UC_SIGNALS, add_event, make_procedure

pytestmark = pytest.mark.django_db

PAGE = "/admin/signals/signalrun/"


@pytest.fixture
def run(uc_registry, clinic_b):
    for day in (0, 3, 9):  # a lot cluster at clinic B: 3 injection-site reactions within 9 days
        add_event(make_procedure(clinic=clinic_b, product_lot="LOT-B-7"), day, category="injection_site_reaction")
    return signal_run_execute(cutoff_on=CUTOFF, trigger=SignalTrigger.BEAT)


def _links(page: str, text: str) -> list[str]:
    return [href.replace("&amp;", "&") for href in re.findall(rf'<a href="([^"]+)">{re.escape(text)}</a>', page)]


def test_a_registry_administrator_sees_the_latest_runs_signals_and_alerts(client, root, run):
    assert client.login(username="root", password=PASSWORD)
    assert PAGE in client.get("/admin/").content.decode()  # listed on the index
    response = client.get(PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Signal run #{run.pk}: data cut-off 2024-06-30" in page
    assert page.count("<td><strong>New</strong></td>") == 4 + 1  # four new signals, one new lot alert
    for attribute, value, _ in (
        ("cell_type", "umbilical_cord_msc", ""),
        ("cell_source", "allogeneic", ""),
        ("clinic", "A-MAD", ""),
        ("country", "ES", ""),
    ):
        assert f"<td>{attribute}</td>\n        <td>{value}</td>" in page
    assert "<td>LOT-B-7</td>" in page and "<td>B-BER</td>" in page
    # A run's own address shows the same page for that run.
    assert client.get(reverse("admin:signals_signalrun_change", args=[run.pk]))["Location"] == f"{PAGE}?run={run.pk}"


def _listing(client, url: str) -> list[dict]:
    response = client.get(url)
    assert response.status_code == 200, url
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_each_signal_links_to_its_line_listing_when_the_listing_can_filter_on_its_attribute(
    client, root, run, uc_registry
):
    """Every one of the four signals selects the same 10 infections (clinic A's umbilical-cord MSC procedures).

    A link is there exactly when the line listing has a filter for the attribute (an unknown filter would
    be ignored and list everything); following it gives those 10 events and no other.
    """
    assert client.login(username="root", password=PASSWORD)
    page = client.get(PAGE).content.decode()
    listings = _links(page, "Line listing (CSV)")
    expected = {e.external_id for p in uc_registry["a"] for e in p.adverse_events.all()}
    filters = AdverseEventLineListing.filterset_class.base_filters
    for attribute, value, outcome in sorted(UC_SIGNALS):
        linked = [link for link in listings if f"{attribute}={quote_plus(value)}&" in link]
        if attribute not in filters:
            assert linked == [], attribute
            continue
        [link] = linked
        query = parse_qs(urlsplit(link).query)
        assert urlsplit(link).path == "/api/v1/exports/adverse-events.csv"
        assert query["category"] == [outcome] and query["onset_before"] == ["2024-06-30"]
        assert query["purpose"] == [f"Signal review: {attribute} = {value}, {outcome} (signal run #{run.pk})"]
        rows = _listing(client, link)
        assert {r["event_id"] for r in rows} == expected, attribute
    assert {"cell_type", "cell_source", "clinic"} <= set(filters)  # these three link today
    # The lot-cluster alert links to its three events when the listing can filter on the lot.
    alert = run.lot_alerts.get()
    alert_links = [link for link in listings if "product_lot=LOT-B-7&" in link]
    if "product_lot" in filters:
        [link] = alert_links
        rows = _listing(client, link)
        assert sorted(r["event_id"] for r in rows) == sorted(
            AdverseEvent.objects.filter(pk__in=alert.event_ids).values_list("external_id", flat=True)
        )
    else:
        assert alert_links == []


@pytest.mark.parametrize("persona", ["alice", "dora"])
def test_clinic_staff_get_nothing_of_the_signals(client, run, persona, request):
    request.getfixturevalue(persona)
    assert client.login(username=persona, password=PASSWORD)
    assert PAGE not in client.get("/admin/").content.decode()
    row = run.rows.get(attribute="clinic", value="A-MAD", outcome="infection")
    review = reverse("admin:signals_signalrun_review", args=[run.pk, row.pk])
    for url in (PAGE, f"{PAGE}?run={run.pk}", reverse("admin:signals_signalrun_change", args=[run.pk]), review):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "A-MAD" not in response.content.decode()
    assert client.post(review, {"comment": "Looks fine to me."}).status_code == 403
    assert client.post(reverse("admin:signals_signalrun_run_now")).status_code == 403
    assert SignalReview.objects.count() == 0 and SignalRun.objects.count() == 1
    assert client.get("/admin/signals/").status_code == 404  # no app page either


def test_run_now_stores_a_run_asked_for_by_the_administrator(
    client, root, uc_registry, django_capture_on_commit_callbacks
):
    assert client.login(username="root", password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:signals_signalrun_run_now"))
    assert response.status_code == 302
    run = SignalRun.objects.get()
    assert (run.trigger, run.requested_by, run.status) == ("admin", root, "succeeded")
    assert run.new_signal_count == 4
    assert client.get(reverse("admin:signals_signalrun_run_now")).status_code == 405


@pytest.mark.parametrize(
    "junk", ["abc", "0", "-1", "1.5", "\u00b2", "\u0663", "9223372036854775808", "99999999999999999999999"]
)
def test_a_junk_run_id_is_404_not_an_error(client, root, run, junk):
    assert client.login(username="root", password=PASSWORD)
    assert client.get(PAGE, {"run": junk}).status_code == 404
    assert client.get(f"{PAGE}{quote(junk)}/change/").status_code == 404
    assert client.get(f"/admin/signals/signalrun/{run.pk}/review/9223372036854775808/").status_code == 404
