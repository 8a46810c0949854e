"""The email a clinic's coordinators get when a patient reports a red flag (no patient identifier in it)."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from patients.choices import RedFlag

SUBJECT_PREFIX = "[AE registry]"


def report_admin_url(report) -> str:
    """Return the absolute address of the report's page in the admin (SITE_URL + the admin's path)."""
    return settings.SITE_URL.rstrip("/") + reverse("admin:patients_patientreport_change", args=[report.pk])


def urgent_report_email(report) -> tuple[str, str]:
    """Return the subject and plain-text body of the urgent-report email, in English (staff read the admin in it)."""
    with translation.override("en"):
        flags = [str(RedFlag(code).label) for code in report.red_flags if code in RedFlag.values]
        subject = f"{SUBJECT_PREFIX} Urgent patient report at {report.procedure.clinic.code}: contact the patient"
        body = render_to_string(
            "patients/email/urgent_report.txt",
            {"report": report, "flags": flags, "url": report_admin_url(report), "clinic": report.procedure.clinic},
        )
    return subject, body
