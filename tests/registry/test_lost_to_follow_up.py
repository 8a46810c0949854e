"""Contact attempts are logged per visit; after enough of them a coordinator marks a procedure lost to follow-up."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from core.dates import today
from registry import services
from registry.models import ContactAttempt, FollowUpVisit, Procedure
from tests.conftest import PASSWORD
from tests.factories import ProcedureFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def procedure(clinic_a):
    return ProcedureFactory(patient__clinic=clinic_a)


def _log(actor, visit, attempted_on=dt.date(2024, 3, 1), **extra):
    fields = {"method": "phone", "outcome": "no_answer", **extra}
    return services.contact_attempt_log(actor=actor, visit=visit, attempted_on=attempted_on, **fields)


def _attempts(procedure, actor, count):
    visits = list(procedure.visits.filter(completed_on__isnull=True).order_by("due_on"))
    for n in range(count):
        _log(actor, visits[n % len(visits)], attempted_on=dt.date(2024, 3, 1) + dt.timedelta(days=n))


def test_a_clinician_and_a_coordinator_of_the_clinic_log_attempts(alice, dora, procedure):
    visit = procedure.visits.get(visit="month_6")
    _log(alice, visit)
    attempt = _log(dora, visit, outcome="message_left", notes="Voicemail")
    assert attempt.recorded_by == dora
    assert list(visit.contact_attempts.values_list("outcome", flat=True)) == ["no_answer", "message_left"]


def test_a_clinician_elsewhere_cannot_log_an_attempt(charlie, procedure):
    with pytest.raises(PermissionDenied):
        _log(charlie, procedure.visits.get(visit="month_6"))
    assert not ContactAttempt.objects.exists()


@pytest.mark.parametrize(
    ("attempted_on", "message"),
    [(today() + dt.timedelta(days=1), "future"), (dt.date(2023, 1, 14), "before the procedure")],
)
def test_an_attempt_in_the_future_or_before_the_procedure_is_refused(alice, procedure, attempted_on, message):
    with pytest.raises(ValidationError) as info:
        _log(alice, procedure.visits.get(visit="month_6"), attempted_on=attempted_on)
    assert message in info.value.message_dict["attempted_on"][0]
    assert not ContactAttempt.objects.exists()


def test_an_attempt_on_a_completed_visit_is_refused(alice, procedure):
    visit = procedure.visits.get(visit="day_2")
    services.visit_record_completion(actor=alice, visit=visit, completed_on=dt.date(2023, 1, 17))
    with pytest.raises(ValidationError, match="open visits"):
        _log(alice, visit)
    assert not ContactAttempt.objects.exists()


def test_a_clinician_cannot_mark_a_procedure_lost_to_follow_up(alice, procedure):
    _attempts(procedure, alice, settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS)
    with pytest.raises(PermissionDenied):
        services.procedure_mark_lost_to_follow_up(actor=alice, procedure=procedure)
    assert Procedure.objects.get(pk=procedure.pk).lost_to_follow_up_on is None


def test_a_coordinator_needs_the_documented_attempts_first(dora, procedure):
    _attempts(procedure, dora, settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS - 1)
    with pytest.raises(ValidationError) as info:
        services.procedure_mark_lost_to_follow_up(actor=dora, procedure=procedure)
    expected = f"after {settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS} documented contact attempts"
    assert expected in info.value.messages[0]
    assert Procedure.objects.get(pk=procedure.pk).lost_to_follow_up_on is None


def test_a_coordinator_marks_and_unmarks_lost_to_follow_up_and_the_overdue_list_follows(dora, root, procedure):
    _attempts(procedure, dora, settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS)
    services.procedure_mark_lost_to_follow_up(actor=dora, procedure=procedure)
    assert (procedure.lost_to_follow_up_on, procedure.lost_to_follow_up_by) == (today(), dora)
    assert not FollowUpVisit.objects.overdue().filter(procedure=procedure).exists()
    with pytest.raises(ValidationError, match="already lost"):
        services.procedure_mark_lost_to_follow_up(actor=dora, procedure=procedure)
    services.procedure_unmark_lost_to_follow_up(actor=root, procedure=procedure)
    assert procedure.lost_to_follow_up_on is None
    assert FollowUpVisit.objects.overdue().filter(procedure=procedure).exists()


def test_a_coordinator_of_another_clinic_cannot_mark(clinic_b, dora):
    other = ProcedureFactory(patient__clinic=clinic_b)
    with pytest.raises(PermissionDenied):
        services.procedure_mark_lost_to_follow_up(actor=dora, procedure=other)
    assert Procedure.objects.get(pk=other.pk).lost_to_follow_up_on is None


# --- admin -------------------------------------------------------------------------------------------


def _visit_form(visit, **attempt):
    data = {
        "completed_on": "",
        "contact_method": "",
        "notes": "",
        "expected_version": visit.version,
        "contact_attempts-TOTAL_FORMS": "1",
        "contact_attempts-INITIAL_FORMS": "0",
        "contact_attempts-MIN_NUM_FORMS": "0",
        "contact_attempts-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    data.update({f"contact_attempts-0-{key}": value for key, value in attempt.items()})
    return data


def test_the_visit_page_logs_an_attempt_through_its_inline(client, dora, procedure):
    visit = procedure.visits.get(visit="month_6")
    assert client.login(username="dora", password=PASSWORD)
    url = reverse("admin:registry_followupvisit_change", args=[visit.pk])
    response = client.post(
        url, _visit_form(visit, attempted_on="2024-03-01", method="phone", outcome="no_answer", notes="")
    )
    assert response.status_code == 302
    attempt = ContactAttempt.objects.get(visit=visit)
    assert (attempt.attempted_on, attempt.recorded_by) == (dt.date(2024, 3, 1), dora)
    refused = client.post(
        url, _visit_form(visit, attempted_on="2022-01-01", method="phone", outcome="no_answer", notes="")
    )
    assert refused.status_code == 200
    assert "before the procedure date" in refused.content.decode()
    assert ContactAttempt.objects.filter(visit=visit).count() == 1


def test_the_procedure_page_button_marks_lost_to_follow_up_for_a_coordinator_only(client, alice, dora, procedure):
    _attempts(procedure, dora, settings.FOLLOW_UP_LOST_AFTER_ATTEMPTS)
    url = reverse("admin:registry_procedure_lost_to_follow_up", args=[procedure.pk])
    change = reverse("admin:registry_procedure_change", args=[procedure.pk])
    assert client.login(username="alice", password=PASSWORD)
    assert "Mark lost to follow-up" not in client.get(change).content.decode()
    assert client.post(url).status_code == 403
    assert Procedure.objects.get(pk=procedure.pk).lost_to_follow_up_on is None
    client.logout()
    assert client.login(username="dora", password=PASSWORD)
    assert "Mark lost to follow-up" in client.get(change).content.decode()
    assert client.post(url).status_code == 302
    assert Procedure.objects.get(pk=procedure.pk).lost_to_follow_up_by == dora
