"""The day 0-7 diary: one entry a day, today's only (the server's date in the registry's time zone),
field-level errors, red flags that tell the patient to call now and email the clinic's coordinators, and
an audit trail of every submission."""

from __future__ import annotations

import datetime as dt

import pghistory.models
import pytest
from django.core.exceptions import ValidationError

from core.dates import today
from patients import services
from patients.choices import ReportStatus
from patients.models import PatientReport, SubmissionLog
from patients.tokens import address_hash
from registry.choices import Role
from registry.services import membership_create
from tests.factories import UserFactory
from tests.patients.conftest import PHONE_A, diary_post, procedure_of

pytestmark = pytest.mark.django_db(transaction=False)


def _entry(procedure, day):
    return PatientReport.objects.get(procedure=procedure, kind="diary", day=day)


def test_a_diary_entry_is_todays_day_after_the_procedure_and_logged(client, link_x, procedure_x):
    link, token = link_x
    response = client.post(f"/p/{token}/diary/", diary_post(pain="3", fatigue="on"), REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 302 and response["Location"] == f"/p/{token}/diary/saved/"
    entry = _entry(procedure_x, 3)
    assert (entry.entry_on, entry.pain, entry.fatigue, entry.swelling) == (today(), 3, True, "mild")
    assert entry.status == ReportStatus.UNCONFIRMED and not entry.urgent
    log = SubmissionLog.objects.get()
    assert (log.link, log.report, log.action) == (link, entry, "diary_create")
    assert log.address_hash == address_hash("203.0.113.9") and "203.0.113.9" not in log.address_hash
    assert pghistory.models.Events.objects.tracks(entry).get().pgh_context["action"] == "patient_diary_save"


def test_todays_entry_can_be_changed_and_earlier_days_cannot(client, link_x, procedure_x):
    link, token = link_x
    yesterday = PatientReport.objects.create(
        procedure=procedure_x,
        link=link,
        kind="diary",
        day=2,
        entry_on=today() - dt.timedelta(days=1),
        pain=1,
        swelling="none",
    )
    client.post(f"/p/{token}/diary/", diary_post(pain="2"))
    client.post(f"/p/{token}/diary/", diary_post(pain="4", day="2"))  # a "day" in the body is ignored
    assert _entry(procedure_x, 3).pain == 4
    yesterday.refresh_from_db()
    assert yesterday.pain == 1
    assert list(SubmissionLog.objects.order_by("at").values_list("action", flat=True)) == [
        "diary_create",
        "diary_update",
    ]
    # The diary page edits today's entry, prefilled; yesterday's is only listed on the home page.
    assert 'value="4"' in client.get(f"/p/{token}/diary/").content.decode()


def test_a_reviewed_entry_is_no_longer_editable(link_x, procedure_x, alice):
    link, _ = link_x
    entry = services.patient_diary_save(link=link, data={"pain": 2, "swelling": "none"})
    services.patient_report_reject(actor=alice, report=entry, reason="Expected soreness")
    with pytest.raises(ValidationError):
        services.patient_diary_save(link=link, data={"pain": 5, "swelling": "none"})
    assert _entry(procedure_x, 3).pain == 2


def test_after_day_7_the_diary_is_closed_and_the_problem_form_is_offered(client, alice, clinic_a_phone):
    _, token = services.patient_link_issue(actor=alice, procedure=procedure_of(clinic_a_phone, days_ago=8))
    assert client.get(f"/p/{token}/diary/")["Location"] == f"/p/{token}/"
    assert client.post(f"/p/{token}/diary/", diary_post()).status_code == 302
    assert not PatientReport.objects.exists()
    assert f'href="/p/{token}/problem/"' in client.get(f"/p/{token}/").content.decode()


def test_bad_input_gets_field_level_errors(client, link_x):
    _, token = link_x
    response = client.post(
        f"/p/{token}/diary/?lang=en", diary_post(pain="11", swelling="huge", temperature_c="50", redness_cm="3")
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"pain", "swelling", "temperature_c", "redness_cm"}
    assert 'aria-invalid="true"' in response.content.decode()
    assert not PatientReport.objects.exists()


def test_the_body_is_capped(client, link_x):
    _, token = link_x
    response = client.post(f"/p/{token}/problem/", {"what": "x" * 20_000, "since_on": today(), "severity": "mild"})
    assert response.status_code == 413
    assert not PatientReport.objects.exists()


def test_a_fever_is_a_red_flag_the_patient_sees_with_the_phone_and_dora_is_emailed(
    client, link_x, procedure_x, dora, charlie, clinic_b, mailoutbox, django_capture_on_commit_callbacks
):
    dora.email = "dora@clinic-a.example"
    dora.save()
    other = UserFactory(username="otto", email="otto@clinic-b.example")
    membership_create(user=other, role=Role.COORDINATOR, clinic=clinic_b)
    _, token = link_x
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/p/{token}/diary/?lang=en", diary_post(temperature_c="38.4"), follow=True)
    html = response.content.decode()
    assert "Contact the clinic now" in html and 'href="tel:+34910000111"' in html and PHONE_A in html
    assert "Fever of 38.0" in html
    entry = _entry(procedure_x, 3)
    assert entry.urgent and entry.red_flags == ["fever"] and entry.notified_at is not None
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["dora@clinic-a.example"]
    body = mailoutbox[0].body
    assert "Fever of 38.0" in body and f"/admin/patients/patientreport/{entry.pk}/change/" in body
    assert procedure_x.patient.registry_id not in body
    # The same day's second send tells nobody twice.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/p/{token}/diary/", diary_post(temperature_c="38.9"))
    assert len(mailoutbox) == 1


@pytest.mark.parametrize(
    ("days_ago", "site", "earlier", "today_data", "flags"),
    [
        (1, "knee", {}, {"warmth": True}, []),  # warmth in the first 48 hours is expected
        (2, "knee", {}, {"warmth": True}, ["warmth_after_48h"]),
        (3, "knee", {"redness": True, "redness_cm": 2}, {"redness": True, "redness_cm": 2}, []),
        (3, "knee", {"redness": True, "redness_cm": 2}, {"redness": True, "redness_cm": 4}, ["spreading_redness"]),
        (3, "knee", {}, {"redness": True}, ["spreading_redness"]),  # new after 48 hours
        (0, "knee", {}, {"discharge": True}, ["discharge"]),
        (0, "knee", {}, {"temperature_c": 37.9}, []),
        (1, "spine", {}, {"weakness_numbness": True}, ["weakness_numbness"]),
        (1, "knee", {}, {"weakness_numbness": True}, []),
        (3, "knee", {"pain": 5}, {"pain": 8}, ["pain_increasing"]),
        (3, "knee", {"pain": 8}, {"pain": 8}, []),
        (1, "knee", {"pain": 3}, {"pain": 9}, []),  # severe but within 48 hours
    ],
)
def test_the_red_flag_rules(alice, clinic_a, days_ago, site, earlier, today_data, flags):
    procedure = procedure_of(clinic_a, days_ago=days_ago, site=site)
    link, _ = services.patient_link_issue(actor=alice, procedure=procedure)
    if earlier:
        PatientReport.objects.create(
            procedure=procedure,
            link=link,
            kind="diary",
            day=0,
            entry_on=procedure.performed_on,
            swelling="none",
            **{"pain": 0, **earlier},
        )
    report = services.patient_diary_save(link=link, data={"pain": 1, "swelling": "none", **today_data})
    assert report.red_flags == flags and report.urgent is bool(flags)
