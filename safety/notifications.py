"""The emails of expedited reporting: a report fell due, a report is due in two days.

Each message is claimed before it is sent (a conditional UPDATE that must touch one row), so a
second delivery of the task, or a second on-commit call, sends nothing. A send that fails gives
the claim back, and the next beat (every 15 minutes) tries again. The messages name the event id,
the clinic's code, the rule and the dates only: no patient data.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.audit import audit_context
from core.dates import today
from registry.choices import Role
from safety.choices import REMINDER_DAYS_BEFORE, DueReportStatus
from safety.models import DueReport

log = logging.getLogger(__name__)
SUBJECT_PREFIX = "[AE registry]"
# A due report whose first email has not gone out after this long is retried by the beat task.
NOTIFY_RETRY_AFTER = dt.timedelta(minutes=5)
SUMMARY_LINES = 50  # due reports listed in an import's summary email (the page lists them all)


def due_report_recipients(due: DueReport) -> list[str]:
    """Return the addresses told of ``due``: the coordinators of the event's clinic and the safety reviewers.

    Active users with an address only.
    """
    clinic_id = due.event.procedure.clinic_id
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    chosen = users.filter(
        Q(memberships__role=Role.COORDINATOR, memberships__clinic_id=clinic_id)
        | Q(memberships__role=Role.SAFETY_REVIEWER)
    )
    return sorted(set(chosen.values_list("email", flat=True)))


def _send(due: DueReport, *, template: str, subject: str) -> None:
    recipients = due_report_recipients(due)
    if not recipients:
        return
    url = settings.SITE_URL.rstrip("/") + reverse("admin:safety_duereport_submit", args=[due.pk])
    body = render_to_string(template, {"due": due, "url": url, "today": today()})
    send_mail(f"{SUBJECT_PREFIX} {subject}", body, settings.DEFAULT_FROM_EMAIL, recipients)


def _claimed(due_report_id: int, field: str, **where) -> DueReport | None:
    """Return the due report when this call set ``field`` (it was empty), else None: someone else sent it."""
    with audit_context(None, f"due_report_{field}"):
        claimed = DueReport.objects.filter(pk=due_report_id, **{f"{field}__isnull": True}, **where).update(
            **{field: timezone.now()}
        )
    if claimed != 1:
        return None
    return DueReport.objects.select_related("event__procedure__clinic", "rule").get(pk=due_report_id)


def _send_claimed(due: DueReport, field: str, *, template: str, subject: str) -> bool:
    try:
        _send(due, template=template, subject=subject)
    except Exception:
        log.exception("Could not send the %s email of due report %s; the next beat retries.", field, due.pk)
        with audit_context(None, f"due_report_{field}"):
            DueReport.objects.filter(pk=due.pk).update(**{field: None})
        return False
    return True


def due_report_notify(*, due_report_id: int) -> bool:
    """Return True when this call sent the email announcing a new due report (once per report)."""
    due = _claimed(due_report_id, "notified_at")
    if due is None:
        return False
    subject = f"Expedited report due {due.due_on:%Y-%m-%d}: event {due.event.external_id}"
    return _send_claimed(due, "notified_at", template="safety/email/due_report.txt", subject=subject)


def due_report_reminders_send(*, on: dt.date | None = None) -> int:
    """Return how many reminders this call sent: open reports due within REMINDER_DAYS_BEFORE days of ``on``.

    Announcements whose first send failed are retried too (not counted).
    """
    on = on or today()
    unannounced = DueReport.objects.filter(
        status=DueReportStatus.OPEN, notified_at__isnull=True, created_at__lt=timezone.now() - NOTIFY_RETRY_AFTER
    ).values_list("pk", flat=True)
    for pk in list(unannounced):
        due_report_notify(due_report_id=pk)
    candidates = DueReport.objects.filter(
        status=DueReportStatus.OPEN,
        reminder_sent_at__isnull=True,
        due_on__lte=on + dt.timedelta(days=REMINDER_DAYS_BEFORE),
    ).values_list("pk", flat=True)
    sent = 0
    for pk in list(candidates):
        due = _claimed(pk, "reminder_sent_at", status=DueReportStatus.OPEN)
        if due is None:
            continue
        when = "overdue since" if due.due_on < on else "due"
        subject = f"Reminder: expedited report {when} {due.due_on:%Y-%m-%d}: event {due.event.external_id}"
        sent += _send_claimed(due, "reminder_sent_at", template="safety/email/reminder.txt", subject=subject)
    return sent


def due_reports_summary_notify(*, due_report_ids: list[int], on: dt.date | None = None) -> int:
    """Return how many emails announced ``due_report_ids`` (made together, by an import): one per clinic.

    Claims the reports' announcement (and, for those due within REMINDER_DAYS_BEFORE days or overdue
    already, their reminder: the summary says so) with one conditional UPDATE, so neither the beat's
    retry nor its reminders send them again one by one.
    """
    on = on or today()
    now = timezone.now()
    with transaction.atomic(), audit_context(None, "due_reports_summary_notify"):
        claimed = list(
            DueReport.objects.filter(pk__in=due_report_ids, notified_at__isnull=True)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        DueReport.objects.filter(pk__in=claimed).update(notified_at=now)
        DueReport.objects.filter(
            pk__in=claimed, reminder_sent_at__isnull=True, due_on__lte=on + dt.timedelta(days=REMINDER_DAYS_BEFORE)
        ).update(reminder_sent_at=now)
    by_clinic: dict = {}
    for due in DueReport.objects.filter(pk__in=claimed).select_related("event__procedure__clinic", "rule"):
        by_clinic.setdefault(due.event.procedure.clinic, []).append(due)
    sent = 0
    for clinic, dues in sorted(by_clinic.items(), key=lambda item: item[0].code):
        recipients = due_report_recipients(dues[0])
        if not recipients:
            continue
        dues.sort(key=lambda due: (due.due_on, due.pk))
        url = settings.SITE_URL.rstrip("/") + reverse("admin:safety_duereport_changelist")
        body = render_to_string(
            "safety/email/due_reports_imported.txt",
            {"clinic": clinic, "dues": dues[:SUMMARY_LINES], "more": len(dues) - SUMMARY_LINES, "url": url, "on": on,
             "overdue": sum(due.due_on < on for due in dues), "count": len(dues)},
        )  # fmt: skip
        subject = f"{SUBJECT_PREFIX} {len(dues)} expedited reports due after an import (clinic {clinic.code})"
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
        except Exception:
            log.exception("The import summary of clinic %s was not sent.", clinic.code)
            continue
        sent += 1
    return sent
