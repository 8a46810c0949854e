"""Creating a procedure generates its follow-up schedule; missed visits stay visible as overdue."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from registry.models import FollowUpVisit, Procedure
from registry.services import procedure_save, visit_record_completion
from tests.conftest import PASSWORD
from tests.factories import ProcedureFactory

pytestmark = pytest.mark.django_db


def test_it_creates_the_ten_visit_schedule_with_windows():
    procedure = ProcedureFactory(performed_on=dt.date(2024, 1, 1))
    visits = {v.visit: v for v in procedure.visits.all()}
    assert list(visits) == [
        "day_2",
        "week_1",
        "month_1",
        "month_3",
        "month_6",
        "year_1",
        "year_2",
        "year_3",
        "year_4",
        "year_5",
    ]
    assert visits["day_2"].due_on == dt.date(2024, 1, 3)
    assert visits["year_1"].due_on == dt.date(2024, 12, 31)
    assert visits["year_5"].due_on == dt.date(2028, 12, 31)
    for v in visits.values():
        assert v.window_start <= v.due_on <= v.window_end
        assert v.completed_on is None


def test_a_missed_visit_is_overdue_and_a_completed_one_is_not(alice):
    procedure = ProcedureFactory(performed_on=dt.date(2024, 1, 1), patient__clinic=alice.memberships.get().clinic)
    day_2 = procedure.visits.get(visit="day_2")
    assert day_2.is_overdue
    visit_record_completion(actor=alice, visit=day_2, completed_on=dt.date(2024, 1, 3), contact_method="phone")
    overdue = set(FollowUpVisit.objects.overdue().filter(procedure=procedure).values_list("visit", flat=True))
    assert "day_2" not in overdue
    assert "week_1" in overdue
    future = dt.date.today() + dt.timedelta(days=400)
    assert "year_5" not in {v.visit for v in FollowUpVisit.objects.overdue(on=future - dt.timedelta(days=800))}


def test_the_overdue_filter_lists_procedures_with_missed_visits(client, alice):
    clinic = alice.memberships.get().clinic
    recent = ProcedureFactory(performed_on=dt.date.today(), patient__clinic=clinic)
    old = ProcedureFactory(performed_on=dt.date(2024, 1, 1), patient__clinic=clinic)
    assert client.login(username="alice", password=PASSWORD)
    body = client.get(reverse("admin:registry_procedure_changelist"), {"overdue": "yes"}).content.decode()
    assert old.external_id in body
    assert recent.external_id not in body
    body = client.get(reverse("admin:registry_followupvisit_changelist"), {"overdue": "yes"}).content.decode()
    assert "OVERDUE" in client.get(reverse("admin:registry_procedure_change", args=[old.pk])).content.decode()
    assert body.count("field-visit") >= 5


def test_moving_the_procedure_date_moves_the_open_visits():
    procedure = ProcedureFactory(performed_on=dt.date(2024, 1, 1))
    procedure.performed_on = dt.date(2024, 1, 11)
    procedure_save(actor=None, procedure=procedure)
    assert procedure.visits.get(visit="day_2").due_on == dt.date(2024, 1, 13)


def test_a_clinician_cannot_save_a_procedure_of_another_clinic(alice, clinic_b):
    procedure = ProcedureFactory(patient__clinic=clinic_b)
    before = Procedure.objects.values().get(pk=procedure.pk)
    procedure.site = "hip"
    with pytest.raises(PermissionDenied):
        procedure_save(actor=alice, procedure=procedure)
    assert Procedure.objects.values().get(pk=procedure.pk) == before
