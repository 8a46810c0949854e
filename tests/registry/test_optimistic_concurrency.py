"""Nothing is silently overwritten: a save based on a stale version is refused."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from core.models import ConcurrentUpdate
from events.models import AdverseEvent
from events.services import adverse_event_save
from tests.conftest import PASSWORD
from tests.factories import AdverseEventFactory, ProcedureFactory
from tests.registry.test_audit_trail import ae_form_data

pytestmark = pytest.mark.django_db


def test_the_second_of_two_edits_from_the_same_version_is_refused(clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    first, second = AdverseEvent.objects.get(pk=ae.pk), AdverseEvent.objects.get(pk=ae.pk)
    first.grade = 2
    adverse_event_save(actor=None, event=first)
    second.term = "Overwrites grade?"
    with pytest.raises(ConcurrentUpdate):
        adverse_event_save(actor=None, event=second)
    stored = AdverseEvent.objects.get(pk=ae.pk)
    assert (stored.grade, stored.term, stored.version) == (2, ae.term, 2)


def test_every_write_path_bumps_the_version(clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    assert AdverseEvent.objects.get(pk=ae.pk).version == 1
    AdverseEvent.objects.filter(pk=ae.pk).update(reporter="bulk")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE events_adverseevent SET reporter = 'sql' WHERE id = %s", [ae.pk])
    assert AdverseEvent.objects.get(pk=ae.pk).version == 3


def test_the_admin_refuses_a_form_opened_before_a_colleagues_edit(client, alice, bob, clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    url = reverse("admin:events_adverseevent_change", args=[ae.pk])
    assert client.login(username="alice", password=PASSWORD)
    page = client.get(url).content.decode()
    assert 'name="expected_version" value="1"' in page

    # Bob saves first.
    AdverseEvent.objects.filter(pk=ae.pk).update(term="Bob's correction")

    response = client.post(url, {**ae_form_data(ae, grade=3), "expected_version": 1})
    assert response.status_code == 200
    assert "Someone else changed this record" in response.content.decode()
    stored = AdverseEvent.objects.get(pk=ae.pk)
    assert (stored.term, stored.grade) == ("Bob's correction", 1)
