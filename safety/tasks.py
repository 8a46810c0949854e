"""Celery tasks: thin, taking plain values and calling safety.notifications."""

from __future__ import annotations

from celery import shared_task

from safety import notifications
from safety.choices import REMINDER_TASK


@shared_task(name=REMINDER_TASK, acks_late=True)
def send_due_report_reminders() -> int:
    """Return how many reminders were sent (open reports due within two days; each reminded once).

    Idempotent: every reminder is claimed with a conditional UPDATE before it is sent, so a second
    delivery of the task (a redelivered message, a beat that fired twice) sends nothing again.
    """
    return notifications.due_report_reminders_send()
