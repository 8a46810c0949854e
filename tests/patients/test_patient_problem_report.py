"""After day 7 (or any time): report a problem - what, since when, how bad - with the warning signs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from core.dates import today
from patients import services
from patients.models import PatientReport, SubmissionLog
from tests.patients.conftest import procedure_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def late(alice, clinic_a_phone):
    procedure = procedure_of(clinic_a_phone, days_ago=20)
    return procedure, services.patient_link_issue(actor=alice, procedure=procedure)[1]


def test_a_problem_is_recorded_unconfirmed_and_logged(client, late):
    procedure, token = late
    since = today() - dt.timedelta(days=2)
    response = client.post(
        f"/p/{token}/problem/", {"what": "Knee swollen again", "since_on": since, "severity": "moderate"}
    )
    report = PatientReport.objects.get()
    assert response["Location"] == f"/p/{token}/problem/{report.pk}/"
    assert (report.kind, report.what, report.since_on, report.severity) == (
        "problem",
        "Knee swollen again",
        since,
        "moderate",
    )
    assert report.status == "unconfirmed" and not report.urgent and report.procedure == procedure
    assert SubmissionLog.objects.get().action == "problem_create"
    assert "Gracias" in client.get(response["Location"]).content.decode()


def test_a_warning_sign_in_a_problem_makes_it_urgent(client, late):
    _, token = late
    client.post(
        f"/p/{token}/problem/",
        {"what": "Hot knee", "since_on": today(), "severity": "severe", "warmth": "on", "temperature_c": "38.0"},
    )
    report = PatientReport.objects.get()
    assert report.urgent and report.red_flags == ["warmth_after_48h", "fever"]


def test_bad_input_gets_field_level_errors(client, late):
    procedure, token = late
    response = client.post(
        f"/p/{token}/problem/",
        {"what": "bad\u202etext", "since_on": procedure.performed_on - dt.timedelta(days=1), "severity": "awful"},
    )
    assert response.status_code == 200
    assert {"what", "severity"} <= set(response.context["form"].errors)
    response = client.post(
        f"/p/{token}/problem/",
        {"what": "ok", "since_on": procedure.performed_on - dt.timedelta(days=1), "severity": "mild"},
    )
    assert "since_on" in response.context["form"].errors
    assert (
        client.post(f"/p/{token}/problem/", {"what": "x" * 2001, "since_on": today(), "severity": "mild"})
        .context["form"]
        .errors["what"]
    )
    assert not PatientReport.objects.exists()


def test_the_forms_have_csrf_protection(late):
    _, token = late
    strict = Client(enforce_csrf_checks=True)
    assert (
        strict.post(f"/p/{token}/problem/", {"what": "x", "since_on": today(), "severity": "mild"}).status_code == 403
    )
    assert 'name="csrfmiddlewaretoken"' in strict.get(f"/p/{token}/problem/").content.decode()
    assert not PatientReport.objects.exists()
