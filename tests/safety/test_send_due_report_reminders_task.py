"""The reminder task: scheduled every 15 minutes, a reminder 2 days before the due date, sent once
(claimed with a conditional UPDATE), with a real Celery worker on Redis for duplicate deliveries.

The worker and its private queue are tests/signals' (``celery -A tests.signals.worker_app worker``:
the registry's own Celery app, which registers safety.send_due_report_reminders through
SafetyConfig.ready()), with the file email backend writing each message to a folder the test counts.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings

from config.celery_app import app
from core.dates import today
from safety import services
from safety.choices import REMINDER_TASK
from safety.models import DueReport
from safety.tasks import send_due_report_reminders
from tests.safety.conftest import make_case
from tests.signals.test_nightly_run_task import _wait, queue, worker, worker_env  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def due_in(clinic, days: int) -> DueReport:
    """Return an open 15-day report due ``days`` days from today (its email already sent)."""
    aware = today() - dt.timedelta(days=15 - days)
    due = make_case(clinic, onset_on=aware - dt.timedelta(days=2), aware_on=aware).due_reports.get()
    DueReport.objects.filter(pk=due.pk).update(notified_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    return due


def test_the_beat_runs_the_registered_task_every_15_minutes():
    entry = settings.CELERY_BEAT_SCHEDULE["safety-due-report-reminders"]
    assert (entry["task"], entry["schedule"]) == (REMINDER_TASK, 15 * 60.0)
    assert REMINDER_TASK in app.tasks


def test_a_reminder_goes_out_two_days_before_the_due_date_once(told, clinic_a, mailoutbox):
    soon, later = due_in(clinic_a, 2), due_in(clinic_a, 3)
    assert send_due_report_reminders.delay().get() == 1
    assert send_due_report_reminders.delay().get() == 0
    [message] = mailoutbox
    assert message.to == told and soon.event.external_id in message.subject and "Reminder" in message.subject
    assert DueReport.objects.get(pk=later.pk).reminder_sent_at is None


def test_an_overdue_report_is_reminded_as_overdue_and_submitted_ones_are_not(told, clinic_a, alice, mailoutbox):
    overdue, submitted = due_in(clinic_a, -1), due_in(clinic_a, 1)
    services.submission_record(actor=alice, due_report=submitted, submitted_on=today(), reference_number="R-1")
    assert send_due_report_reminders() == 1
    [message] = mailoutbox
    assert overdue.event.external_id in message.subject and "OVERDUE" in message.body


def test_a_report_whose_first_email_failed_is_announced_by_the_beat(told, clinic_a, mailoutbox):
    due = due_in(clinic_a, 10)
    DueReport.objects.filter(pk=due.pk).update(notified_at=None, created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert send_due_report_reminders() == 0  # not a reminder: the announcement
    assert [m.subject.startswith("[AE registry] Expedited report due") for m in mailoutbox] == [True]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_duplicate_deliveries_to_a_real_worker_send_each_reminder_once(told, clinic_a, clinic_b, charlie, worker):  # noqa: F811
    log, mail_dir = worker
    reminded = [due_in(clinic_a, 1), due_in(clinic_b, 2)]
    due_in(clinic_a, 5)  # not yet
    for _ in range(3):  # two pool processes take the first two at once; the third comes after
        app.send_task(REMINDER_TASK)
    _wait(lambda: log.read_text().count(f"Task {REMINDER_TASK}[") >= 6, 90, log)  # received + succeeded, 3 times
    messages = [path.read_text() for path in mail_dir.iterdir()]
    assert len(messages) == 2
    assert sorted(DueReport.objects.filter(reminder_sent_at__isnull=False).values_list("pk", flat=True)) == sorted(
        due.pk for due in reminded
    )
    # Clinic B's reminder goes to B's coordinator (erin) and the safety reviewer, not to A's coordinator.
    b_message = next(m for m in messages if reminded[1].event.external_id in m)
    assert "To: erin@registry.example, sam@registry.example" in b_message and "dora@" not in b_message
    assert "charlie@registry.example" not in "".join(messages)
