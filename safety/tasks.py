"""Celery tasks: thin, taking plain values and calling safety.notifications."""

from __future__ import annotations

from celery import shared_task

from safety import notifications, services
from safety.choices import REEVALUATE_TASK, REMINDER_TASK


@shared_task(name=REMINDER_TASK, acks_late=True)
def send_due_report_reminders() -> int:
    """Return how many reminders were sent (open reports due within two days; each reminded once).

    Idempotent: every reminder is claimed with a conditional UPDATE before it is sent, so a second
    delivery of the task (a redelivered message, a beat that fired twice) sends nothing again.
    """
    return notifications.due_report_reminders_send()


@shared_task(name=REEVALUATE_TASK, acks_late=True)
def reevaluate_open_cases() -> int:
    """Return how many open cases were judged again after a reporting rule changed (idempotent: a case
    already owing its report is not made to owe it twice)."""
    return services.open_cases_reevaluate()
