"""Reads of patient links and reports: the clinic staff's (scoped to their clinics) and the patient's (by token)."""

from __future__ import annotations

from django.db.models import QuerySet

from core.dates import today
from events.models import AdverseEvent
from patients.choices import ReportKind
from patients.models import PatientLink, PatientReport
from patients.tokens import TOKEN_MAX_LENGTH, digests_match, token_hash
from registry.choices import Role
from registry.models import Membership
from registry.selectors import limit_to_user_clinics

_NO_MATCH = "0" * 64


def link_for_token(token: str) -> PatientLink | None:
    """Return the usable link of ``token``, or None when it is unknown, expired, revoked or its procedure
    (or patient) was retracted: every refusal does the same work, so none is told from another."""
    digest = token_hash(token[:TOKEN_MAX_LENGTH])
    link = (
        PatientLink.objects.select_related("procedure__clinic", "procedure__patient").filter(token_hash=digest).first()
    )
    # The index finds the row by its digest; the final comparison is constant-time all the same.
    if not digests_match(link.token_hash if link else _NO_MATCH, digest) or len(token) > TOKEN_MAX_LENGTH:
        return None
    procedure = link.procedure
    usable = (
        link.revoked_at is None
        and link.expires_on >= today()
        and procedure.retracted_at is None
        and procedure.patient.retracted_at is None
    )
    return link if usable else None


def diary_of(procedure) -> list[PatientReport]:
    """Return the procedure's diary days (the patient's own view), day 0 first."""
    return list(PatientReport.objects.filter(procedure=procedure, kind=ReportKind.DIARY).order_by("day"))


def problems_of(procedure) -> list[PatientReport]:
    """Return the procedure's problem reports, newest first."""
    return list(PatientReport.objects.filter(procedure=procedure, kind=ReportKind.PROBLEM).order_by("-submitted_at"))


def problem_of(procedure, report_id: int) -> PatientReport | None:
    """Return the procedure's problem report ``report_id``, or None (another procedure's is not there)."""
    return PatientReport.objects.filter(procedure=procedure, kind=ReportKind.PROBLEM, pk=report_id).first()


def links_for_user(user) -> QuerySet[PatientLink]:
    """Return the patient links ``user`` may see (their clinics')."""
    return limit_to_user_clinics(
        PatientLink.objects.select_related("procedure__clinic", "issued_by"), user, "procedure__clinic_id"
    )


def reports_for_user(user) -> QuerySet[PatientReport]:
    """Return the patient reports ``user`` may see (their clinics')."""
    return limit_to_user_clinics(
        PatientReport.objects.select_related("procedure__clinic", "reviewed_by", "adverse_event"),
        user,
        "procedure__clinic_id",
    )


def events_to_link(report: PatientReport) -> QuerySet[AdverseEvent]:
    """Return the adverse events a report may be linked to: its procedure's, not retracted."""
    return AdverseEvent.objects.active().filter(procedure_id=report.procedure_id).order_by("-onset_on")


def coordinator_emails(clinic_id: int) -> list[str]:
    """Return the email addresses of the clinic's coordinators (active users with an address)."""
    return sorted(
        set(
            Membership.objects.filter(clinic_id=clinic_id, role=Role.COORDINATOR, user__is_active=True)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )
