"""Every change to clinical data leaves who, when, old and new value."""

from __future__ import annotations

import pghistory
import pghistory.models
import pytest
from django.urls import reverse

from events.models import AdverseEvent
from tests.conftest import PASSWORD
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db


def events_of(obj):
    return list(pghistory.models.Events.objects.tracks(obj).order_by("pgh_created_at", "pgh_id"))


def ae_form_data(ae, **changes):
    data = {
        "external_id": ae.external_id,
        "procedure": ae.procedure_id,
        "category": ae.category,
        "term": ae.term,
        "meddra_code": ae.meddra_code,
        "onset_on": ae.onset_on.isoformat(),
        "grade": ae.grade,
        "causality_procedure": ae.causality_procedure,
        "causality_product": ae.causality_product,
        "expectedness": ae.expectedness,
        "outcome": ae.outcome,
        "resolved_on": ae.resolved_on.isoformat() if ae.resolved_on else "",
        "action_taken": ae.action_taken,
        "reporter": ae.reporter,
    }
    data.update(changes)
    return data


def test_an_admin_edit_records_who_when_old_and_new(client, alice, clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), grade=1)
    assert client.login(username="alice", password=PASSWORD)
    url = reverse("admin:events_adverseevent_change", args=[ae.pk])
    response = client.post(url, ae_form_data(ae, grade=2, term="Knee effusion"))
    assert response.status_code == 302, response.content.decode()[:2000]

    last = events_of(ae)[-1]
    assert last.pgh_label == "update"
    assert last.pgh_diff["grade"] == [1, 2]
    assert last.pgh_diff["term"] == ["Knee pain at injection site", "Knee effusion"]
    assert last.pgh_context["user"] == alice.pk
    assert last.pgh_created_at is not None

    # ...and the admin's history page shows it to the clinic.
    page = client.get(reverse("admin:events_adverseevent_history", args=[ae.pk])).content.decode()
    assert "Audit trail" in page
    assert "alice" in page
    assert "Knee pain at injection site → Knee effusion" in page


def test_the_first_event_records_the_creation(alice, clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    first = events_of(ae)[0]
    assert first.pgh_label == "insert"
    assert first.pgh_data["term"] == ae.term


def test_a_bulk_update_is_recorded_row_by_row_with_its_author(root, clinic_a):
    events = [AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a)) for _ in range(3)]
    with pghistory.context(user=root.pk, action="bulk_outcome_update"):
        updated = AdverseEvent.objects.filter(pk__in=[e.pk for e in events]).update(outcome="recovering")
    assert updated == 3
    for ae in events:
        last = events_of(ae)[-1]
        assert last.pgh_diff["outcome"] == ["recovered", "recovering"]
        assert last.pgh_context == {"user": root.pk, "action": "bulk_outcome_update"}


def test_a_write_that_skips_python_is_still_recorded(clinic_a):
    from django.db import connection

    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE events_adverseevent SET reporter = 'nurse-7' WHERE id = %s", [ae.pk])
    last = events_of(ae)[-1]
    assert last.pgh_diff["reporter"] == ["", "nurse-7"]


def test_a_retraction_through_the_admin_action_is_audited(client, alice, clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    assert client.login(username="alice", password=PASSWORD)
    response = client.post(
        reverse("admin:events_adverseevent_changelist"),
        {"action": "retract_selected", "_selected_action": [ae.pk], "apply": "1", "reason": "Entered twice"},
    )
    assert response.status_code == 302
    ae.refresh_from_db()
    assert ae.retracted_by == alice
    last = events_of(ae)[-1]
    assert last.pgh_diff["retraction_reason"] == ["", "Entered twice"]
    assert last.pgh_context["user"] == alice.pk
    # The retracted event stays visible for audit but no longer counts.
    assert AdverseEvent.objects.filter(pk=ae.pk).exists()
    assert not AdverseEvent.objects.active().filter(pk=ae.pk).exists()
