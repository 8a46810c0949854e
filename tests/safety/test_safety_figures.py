"""The safety figures per clinic (selectors, admin page and PDF), scoped per user; retracted events count nowhere."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from core.dates import today
from events import services as event_services
from safety import services
from safety.selectors import safety_figures
from tests.safety.conftest import make_case
from tests.safety.test_cioms_form import pdf_text

pytestmark = pytest.mark.django_db

ONSET = dt.date(2026, 1, 25)


@pytest.fixture
def registry(alice, clinic_a, clinic_b):
    """Clinic A: three open serious cases (aware 2026-01-30, due 2026-02-14): one reported on time (11 days
    after awareness) and followed up, one reported late (21 days) and closed, one neither; plus a retracted
    case. Clinic B: one recent non-serious case."""
    stale, on_time, late = (make_case(clinic_a) for _ in range(3))
    services.submission_record(
        actor=alice, due_report=on_time.due_reports.get(), submitted_on=dt.date(2026, 2, 10), reference_number="A-1"
    )
    services.submission_record(
        actor=alice, due_report=late.due_reports.get(), submitted_on=dt.date(2026, 2, 20), reference_number="A-2"
    )
    event_services.follow_up_report_create(
        actor=alice, event=on_time, received_on=dt.date(2026, 2, 12), narrative="Improving.", changes={}
    )
    event_services.follow_up_report_create(
        actor=alice,
        event=late,
        received_on=dt.date(2026, 3, 1),
        narrative="Resolved.",
        changes={"case_status": "closed"},
    )
    retracted = make_case(clinic_a)
    event_services.adverse_event_retract(actor=alice, event=retracted, reason="Duplicate entry.")
    recent = today() - dt.timedelta(days=3)
    make_case(
        clinic_b,
        onset_on=recent,
        aware_on=recent,
        serious=False,
        serious_hospitalisation=False,
        grade=1,
        action_taken="",
    )
    return stale


def test_the_figures_of_each_clinic_and_their_total(root, registry, clinic_a, clinic_b):
    a, b, total = safety_figures(root)
    assert (a.clinic, b.clinic, total.clinic) == (clinic_a, clinic_b, None)
    assert (a.events, a.median_onset_to_recording) == (3, (today() - ONSET).days)
    assert (a.submissions, a.median_awareness_to_submission, a.on_time, a.on_time_share) == (2, 16, 1, 0.5)
    assert (a.open_overdue, a.stale_open_cases) == (1, 1)
    assert (b.events, b.median_onset_to_recording, b.submissions, b.on_time_share, b.stale_open_cases) == (
        1,
        3,
        0,
        None,
        0,
    )
    assert (total.events, total.submissions, total.on_time, total.open_overdue, total.stale_open_cases) == (
        4,
        2,
        1,
        1,
        1,
    )
    assert total.median_onset_to_recording == (today() - ONSET).days  # 3 of 4 events share this onset


@pytest.mark.parametrize("persona", ["alice", "dora"])
def test_clinic_staff_see_their_clinic_only(request, registry, clinic_a, persona):
    rows = safety_figures(request.getfixturevalue(persona))
    assert [row.clinic for row in rows] == [clinic_a, None]
    assert rows[1].events == 3


def test_charlie_sees_none_of_clinic_as_figures(client, charlie, registry, clinic_a, clinic_b):
    rows = safety_figures(charlie)
    assert [row.clinic for row in rows] == [clinic_b, None] and rows[1].submissions == 0
    assert safety_figures(charlie, clinic_id=clinic_a.pk)[-1].events == 0  # asking for A gives nothing
    client.force_login(charlie)
    html = client.get(reverse("admin:safety_duereport_figures")).content.decode()
    assert "B-BER" in html and "A-MAD" not in html
    text = pdf_text(client.get(reverse("admin:safety_duereport_figures_pdf")).content)
    assert "B-BER" in text and "A-MAD" not in text


def test_the_page_and_the_safety_report_pdf_show_the_figures(client, sam, registry):
    client.force_login(sam)
    html = client.get(reverse("admin:safety_duereport_figures")).content.decode()
    assert "A-MAD (ES)" in html and "1/2 (50%)" in html
    response = client.get(reverse("admin:safety_duereport_figures_pdf"))
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    assert "Safety report: expedited reporting figures" in text
    assert "A-MAD (ES) 3" in text and "1/2 (50%)" in text and "B-BER (DE) 1" in text
