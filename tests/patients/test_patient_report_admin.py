"""The clinic's queue of patient reports in the admin: scoped to the clinic, urgent and unreviewed first;
a clinician confirms (a new adverse event reported by the patient, or a link to an existing event) or
rejects with a reason; another clinic's clinician gets 404 and nothing changes."""

from __future__ import annotations

import datetime as dt

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from core.dates import today
from events.choices import ReporterType
from events.models import AdverseEvent
from patients import services
from patients.models import PatientReport
from tests.factories import AdverseEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def urgent_x(link_x):
    link, _ = link_x
    return services.patient_diary_save(link=link, data={"pain": 3, "swelling": "mild", "discharge": True})


@pytest.fixture
def quiet_x(alice, link_x):
    link, _ = link_x
    return services.patient_problem_report(link=link, data={"what": "Knee aches", "severity": "mild"})


def _state(report):
    report.refresh_from_db()
    return (report.status, report.reviewed_by_id, report.adverse_event_id, report.reject_reason)


def test_the_queue_shows_the_clinics_unreviewed_reports_urgent_first(client, alice, charlie, urgent_x, quiet_x, link_y):
    other = services.patient_diary_save(link=link_y[0], data={"pain": 1, "swelling": "none"})
    client.force_login(alice)
    queue = client.get("/admin/patients/patientreport/")
    shown = list(queue.context["cl"].result_list)
    assert shown == [urgent_x, quiet_x] and other not in shown
    urgent = client.get("/admin/patients/patientreport/?queue=urgent")
    assert list(urgent.context["cl"].result_list) == [urgent_x]
    client.force_login(charlie)
    assert list(client.get("/admin/patients/patientreport/").context["cl"].result_list) == [other]


def test_another_clinics_clinician_cannot_see_confirm_or_reject(client, charlie, urgent_x):
    before = _state(urgent_x)
    client.force_login(charlie)
    base = f"/admin/patients/patientreport/{urgent_x.pk}"
    assert client.get(f"{base}/change/").status_code in (302, 404)  # the admin's "no such object" redirect
    assert client.get(f"{base}/confirm/").status_code == 404
    data = {"category": "infection", "term": "x", "grade": "1", "onset_on": today()}
    assert client.post(f"{base}/confirm/", data).status_code == 404
    assert client.post(f"{base}/reject/", {"reason": "not ours"}).status_code == 404
    assert _state(urgent_x) == before and not AdverseEvent.objects.exists()
    with pytest.raises(PermissionDenied):
        services.patient_report_reject(actor=charlie, report=urgent_x, reason="not ours")
    assert _state(urgent_x) == before


def test_the_safety_reviewer_sees_but_cannot_confirm(client, sam, urgent_x):
    client.force_login(sam)
    assert client.get(f"/admin/patients/patientreport/{urgent_x.pk}/change/").status_code == 200
    data = {"category": "infection", "term": "x", "grade": "1", "onset_on": today()}
    assert client.post(f"/admin/patients/patientreport/{urgent_x.pk}/confirm/", data).status_code == 403
    assert _state(urgent_x)[0] == "unconfirmed"


def test_confirming_creates_an_adverse_event_reported_by_the_patient_with_audit(client, alice, urgent_x):
    client.force_login(alice)
    page = client.get(f"/admin/patients/patientreport/{urgent_x.pk}/change/").content.decode()
    assert f"/admin/patients/patientreport/{urgent_x.pk}/confirm/" in page
    assert "Diary day sent" in page  # the submission log, inline
    response = client.post(
        f"/admin/patients/patientreport/{urgent_x.pk}/confirm/",
        {"category": "infection", "term": "Discharge at injection site", "grade": "2", "onset_on": today()},
    )
    assert response.status_code == 302
    urgent_x.refresh_from_db()
    event = urgent_x.adverse_event
    assert urgent_x.status == "confirmed" and urgent_x.reviewed_by == alice
    assert (event.reporter_type, event.category, event.grade, event.onset_on) == (
        ReporterType.PATIENT,
        "infection",
        2,
        today(),
    )
    assert event.aware_on == urgent_x.entry_on and event.procedure == urgent_x.procedure
    audit = pghistory.models.Events.objects.tracks(event).get()
    assert audit.pgh_context["user"] == alice.pk and audit.pgh_context["action"] == "patient_report_confirm"
    report_audit = pghistory.models.Events.objects.tracks(urgent_x).order_by("pgh_created_at", "pgh_id").last()
    assert report_audit.pgh_data["status"] == "confirmed" and report_audit.pgh_context["user"] == alice.pk


def test_confirming_can_link_an_existing_event_of_the_procedure(alice, urgent_x, procedure_y):
    existing = AdverseEventFactory(procedure=urgent_x.procedure, onset_on=today())
    elsewhere = AdverseEventFactory(procedure=procedure_y, onset_on=today())
    with pytest.raises(ValidationError):
        services.patient_report_confirm(actor=alice, report=urgent_x, event=elsewhere)
    services.patient_report_confirm(actor=alice, report=urgent_x, event=existing)
    assert _state(urgent_x)[:3] == ("confirmed", alice.pk, existing.pk)
    assert AdverseEvent.objects.count() == 2


def test_the_confirm_form_needs_the_event_fields_and_keeps_the_rules(client, alice, quiet_x):
    client.force_login(alice)
    url = f"/admin/patients/patientreport/{quiet_x.pk}/confirm/"
    response = client.post(url, {})
    assert set(response.context["form"].errors) == {"category", "term", "grade", "onset_on"}
    response = client.post(
        url, {"category": "other", "term": "Aches", "grade": "1", "onset_on": today() + dt.timedelta(days=1)}
    )
    assert response.status_code == 200 and response.context["form"].errors
    assert _state(quiet_x)[0] == "unconfirmed" and not AdverseEvent.objects.exists()


def test_rejection_requires_a_reason(client, alice, quiet_x):
    client.force_login(alice)
    url = f"/admin/patients/patientreport/{quiet_x.pk}/reject/"
    assert client.post(url, {"reason": ""}).context["form"].errors["reason"]
    with pytest.raises(ValidationError):
        services.patient_report_reject(actor=alice, report=quiet_x, reason=" ")
    assert _state(quiet_x)[0] == "unconfirmed"
    assert client.post(url, {"reason": "Expected ache, discussed by phone"}).status_code == 302
    assert _state(quiet_x) == ("rejected", alice.pk, None, "Expected ache, discussed by phone")
    with pytest.raises(ValidationError):  # a decision is final
        services.patient_report_confirm(
            actor=alice, report=quiet_x, category="other", term="x", grade=1, onset_on=today()
        )
    assert PatientReport.objects.get(pk=quiet_x.pk).status == "rejected"
