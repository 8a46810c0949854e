"""The email announcing a new due report: after the commit, once, to the clinic's coordinators and the
safety reviewers with an address, carrying no patient data."""

from __future__ import annotations

import pytest

from safety.models import DueReport
from safety.notifications import due_report_notify
from tests.safety.conftest import make_case

pytestmark = pytest.mark.django_db


def test_a_new_due_report_is_emailed_to_the_coordinators_and_the_safety_reviewers(
    told, clinic_a, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        event = make_case(clinic_a)
    [message] = mailoutbox
    due = event.due_reports.get()
    assert message.to == told
    assert message.subject == f"[AE registry] Expedited report due 2026-02-14: event {event.external_id}"
    assert (
        "National competent authority" in message.body and f"/admin/safety/duereport/{due.pk}/submit/" in message.body
    )
    patient = event.procedure.patient
    assert patient.registry_id not in message.body and event.term not in message.body
    assert DueReport.objects.get(pk=due.pk).notified_at is not None


def test_nothing_is_sent_before_the_commit_nor_twice(told, clinic_a, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = make_case(clinic_a)
    assert mailoutbox == [] and len(callbacks) == 1
    callbacks[0]()
    assert due_report_notify(due_report_id=event.due_reports.get().pk) is False
    assert len(mailoutbox) == 1


def test_no_email_of_clinic_a_reaches_clinic_b(told, clinic_a, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        make_case(clinic_a)
    addresses = {address for message in mailoutbox for address in message.to}
    assert "charlie@registry.example" not in addresses and "erin@registry.example" not in addresses


def test_a_failed_send_is_given_back_for_the_next_beat(told, clinic_a, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "tests.safety.broken_mail.Backend"
    with django_capture_on_commit_callbacks(execute=True):
        event = make_case(clinic_a)
    assert event.due_reports.get().notified_at is None
