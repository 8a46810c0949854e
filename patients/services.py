"""Writes of the patients app: links issued and revoked by clinic staff, what a patient sends (diary day,
problem), and a clinician's decision on it (confirm into an adverse event, link, or reject).

Patients write without an account: their services take the link (found by its token) in place of an
actor, and every submission leaves a SubmissionLog row besides pghistory's events.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core.audit import audit_context
from core.dates import today
from events import services as event_services
from events.choices import ReporterType
from events.models import AdverseEvent
from patients import emails, selectors
from patients.choices import DIARY_LAST_DAY, SPANISH_COUNTRIES, ReportKind, ReportStatus, SubmissionAction
from patients.models import PatientLink, PatientReport, SubmissionLog
from patients.redflags import red_flags
from patients.tokens import address_hash, new_token, token_hash
from registry.models import Procedure
from registry.selectors import ALL, can_write_clinic, clinic_scope

log = logging.getLogger(__name__)

DIARY_FIELDS = (
    "pain",
    "swelling",
    "redness",
    "redness_cm",
    "warmth",
    "temperature_c",
    "discharge",
    "flu_like",
    "fatigue",
    "weakness_numbness",
)
PROBLEM_FIELDS = (
    "what",
    "since_on",
    "severity",
    "warmth",
    "redness",
    "temperature_c",
    "discharge",
    "weakness_numbness",
)


def link_days() -> int:
    """Return how many days a link answers after the later of the procedure and its issue (default 60)."""
    return int(getattr(settings, "PATIENT_LINK_DAYS", 60))


def default_language(procedure: Procedure) -> str:
    """Return the patient pages' default language: Spanish for a clinic in a Spanish-speaking country."""
    return "es" if procedure.clinic.country in SPANISH_COUNTRIES else "en"


def _require_clinic_staff(actor, clinic_id: int) -> None:
    # The clinic giving the patient the handout issues the link: its own staff, not a registry-wide role.
    scope = clinic_scope(actor)
    if scope is ALL or clinic_id not in scope or not can_write_clinic(actor, clinic_id):
        raise PermissionDenied("Only staff of the procedure's clinic may issue its patient link.")


def patient_link_issue(*, actor, procedure: Procedure) -> tuple[PatientLink, str]:
    """Return (link, token): a new link to ``procedure``'s patient pages. The token is shown once (the
    handout) and only its hash is stored; it expires PATIENT_LINK_DAYS after the later of the procedure's
    date and today."""
    _require_clinic_staff(actor, procedure.clinic_id)
    if procedure.retracted_at is not None or procedure.patient.retracted_at is not None:
        raise ValidationError("A retracted procedure gets no patient link.")
    token = new_token()
    link = PatientLink(
        procedure=procedure,
        token_hash=token_hash(token),
        language=default_language(procedure),
        issued_by=actor,
        expires_on=max(procedure.performed_on, today()) + dt.timedelta(days=link_days()),
    )
    with transaction.atomic(), audit_context(actor, "patient_link_issue"):
        link.full_clean()
        link.save()
    return link, token


def patient_link_revoke(*, actor, link: PatientLink, reason: str) -> PatientLink:
    """Return the link revoked with ``reason``: its token answers 404 from now on."""
    if not can_write_clinic(actor, link.procedure.clinic_id):
        raise PermissionDenied("You may not revoke links of this clinic.")
    if not (reason or "").strip():
        raise ValidationError({"revoke_reason": "Say why the link is revoked."})
    with transaction.atomic(), audit_context(actor, "patient_link_revoke"):
        link = PatientLink.objects.select_for_update().get(pk=link.pk)
        if link.revoked_at is not None:
            raise ValidationError("This link is already revoked.")
        link.revoked_at, link.revoked_by, link.revoke_reason = timezone.now(), actor, reason.strip()
        link.full_clean()
        link.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    return link


def diary_day(procedure: Procedure, on: dt.date | None = None) -> int:
    """Return the diary day of ``on`` (default: today in the registry's time zone): days after the procedure."""
    return ((on or today()) - procedure.performed_on).days


def _log(link: PatientLink, report: PatientReport, action: str, address: str | None) -> None:
    SubmissionLog.objects.create(link=link, report=report, action=action, address_hash=address_hash(address))


def _flag(report: PatientReport, flags: list[str]) -> None:
    report.red_flags = flags
    report.urgent = report.urgent or bool(flags)  # an urgent item stays urgent once the clinic was told
    if report.urgent and report.notified_at is None:
        transaction.on_commit(partial(patient_report_notify, report_id=report.pk))


def patient_diary_save(*, link: PatientLink, data: dict, address: str | None = None) -> PatientReport:
    """Return today's diary day of the link's procedure, created or changed with ``data`` (DIARY_FIELDS).

    Today is the server's date in the registry's time zone: a patient writes only today's day, days 0 to 7,
    and only while the clinic has not reviewed it. Red flags make it urgent (the coordinators are emailed).
    """
    procedure = link.procedure
    on = today()
    day = diary_day(procedure, on)
    if not 0 <= day <= DIARY_LAST_DAY:
        raise ValidationError("The diary covers the day of the procedure and the 7 days after it.")
    with transaction.atomic(), audit_context(None, "patient_diary_save") as context:
        context.metadata["patient_link"] = link.pk
        report = (
            PatientReport.objects.select_for_update()
            .filter(procedure=procedure, kind=ReportKind.DIARY, day=day)
            .first()
        )
        created = report is None
        if created:
            report = PatientReport(procedure=procedure, link=link, kind=ReportKind.DIARY, day=day, entry_on=on)
        elif report.status != ReportStatus.UNCONFIRMED:
            raise ValidationError("The clinic has already reviewed today's entry; call them to change it.")
        for name in DIARY_FIELDS:
            setattr(report, name, data.get(name))
        report.swelling = report.swelling or ""
        earlier = PatientReport.objects.filter(procedure=procedure, kind=ReportKind.DIARY, day__lt=day)
        report.full_clean()
        report.save()
        _flag(report, red_flags(report, day=day, site=procedure.site, earlier=earlier))
        report.save(update_fields=["red_flags", "urgent"])
        _log(link, report, SubmissionAction.DIARY_CREATE if created else SubmissionAction.DIARY_UPDATE, address)
    return report


def patient_problem_report(*, link: PatientLink, data: dict, address: str | None = None) -> PatientReport:
    """Return a new problem report of the link's procedure (PROBLEM_FIELDS); red flags make it urgent."""
    procedure = link.procedure
    on = today()
    since_on = data.get("since_on")
    if since_on is not None and not procedure.performed_on <= since_on <= on:
        raise ValidationError({"since_on": "Give a date between the procedure and today."})
    with transaction.atomic(), audit_context(None, "patient_problem_report") as context:
        context.metadata["patient_link"] = link.pk
        report = PatientReport(procedure=procedure, link=link, kind=ReportKind.PROBLEM, entry_on=on)
        for name in PROBLEM_FIELDS:
            setattr(report, name, data.get(name))
        report.what = report.what or ""
        report.severity = report.severity or ""
        report.full_clean()
        report.save()
        earlier = PatientReport.objects.filter(procedure=procedure, kind=ReportKind.DIARY)
        _flag(report, red_flags(report, day=diary_day(procedure, on), site=procedure.site, earlier=earlier))
        report.save(update_fields=["red_flags", "urgent"])
        _log(link, report, SubmissionAction.PROBLEM_CREATE, address)
    return report


def patient_report_notify(*, report_id: int) -> bool:
    """Return True once the urgent report's email reached the mail server (claimed once, never raised)."""
    report = PatientReport.objects.select_related("procedure__clinic").get(pk=report_id)
    recipients = selectors.coordinator_emails(report.procedure.clinic_id)
    if not report.urgent or not recipients:
        if report.urgent:
            log.warning(
                "Urgent patient report %s: clinic %s has no coordinator email.", report_id, report.procedure.clinic_id
            )
        return False
    with audit_context(None, "patient_report_notify"):
        unclaimed = PatientReport.objects.filter(pk=report_id, notified_at__isnull=True)
        claimed = unclaimed.update(notified_at=timezone.now())
    if not claimed:
        return False
    subject, body = emails.urgent_report_email(report)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:
        log.exception("The email of urgent patient report %s was not sent.", report_id)
        with audit_context(None, "patient_report_notify"):
            PatientReport.objects.filter(pk=report_id).update(notified_at=None)
        return False
    return True


def _require_reviewer(actor, report: PatientReport) -> PatientReport:
    if not can_write_clinic(actor, report.procedure.clinic_id):
        raise PermissionDenied("Only the clinic's clinicians may review its patient reports.")
    locked = PatientReport.objects.select_for_update().select_related("procedure__patient").get(pk=report.pk)
    if locked.status != ReportStatus.UNCONFIRMED:
        raise ValidationError("This report was already reviewed.")
    return locked


def patient_report_confirm(
    *, actor, report: PatientReport, event: AdverseEvent | None = None, **event_fields
) -> PatientReport:
    """Return the report confirmed: linked to ``event`` (an event of its procedure), or to a new adverse event
    with ``event_fields`` (category, term, grade, onset_on...) reported by the patient, aware on the day the
    report was sent."""
    with transaction.atomic(), audit_context(actor, "patient_report_confirm"):
        report = _require_reviewer(actor, report)
        if event is not None:
            if event.procedure_id != report.procedure_id or event.retracted_at is not None:
                raise ValidationError({"event": "Choose an event of this report's procedure."})
        else:
            fields = {"outcome": "unknown", "narrative": report.what, **event_fields}
            fields.update(reporter_type=ReporterType.PATIENT, aware_on=report.entry_on)
            if fields.get("onset_on") and fields["onset_on"] > fields["aware_on"]:
                raise ValidationError({"onset_on": "The onset cannot be after the day the patient reported it."})
            event = event_services.adverse_event_create(actor=actor, procedure=report.procedure, **fields)
        report.status, report.adverse_event = ReportStatus.CONFIRMED, event
        report.reviewed_at, report.reviewed_by = timezone.now(), actor
        report.full_clean()
        report.save(update_fields=["status", "adverse_event", "reviewed_at", "reviewed_by", "updated_at"])
    return report


def patient_report_reject(*, actor, report: PatientReport, reason: str) -> PatientReport:
    """Return the report rejected with ``reason`` (required): it never becomes an adverse event."""
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the report is rejected."})
    with transaction.atomic(), audit_context(actor, "patient_report_reject"):
        report = _require_reviewer(actor, report)
        report.status, report.reject_reason = ReportStatus.REJECTED, reason.strip()
        report.reviewed_at, report.reviewed_by = timezone.now(), actor
        report.full_clean()
        report.save(update_fields=["status", "reject_reason", "reviewed_at", "reviewed_by", "updated_at"])
    return report
