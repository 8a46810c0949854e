"""Row-level isolation on every admin path: alice (clinic A) never sees clinic B's rows."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from events.models import AdverseEvent
from registry.models import Patient, Procedure
from tests.conftest import PASSWORD
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clinic_a, clinic_b, alice, bob, charlie, root):
    """Return one procedure with an event at each clinic."""
    ae_a = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), term="Swelling A")
    ae_b = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_b), term="Swelling B")
    return {"a": ae_a, "b": ae_b}


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def change_url(obj):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def objects_of(ae):
    procedure = ae.procedure
    return [ae, procedure, procedure.patient, procedure.visits.first()]


def test_a_clinician_lists_only_her_clinics_rows(client, alice, world):
    login(client, alice)
    for model, needle_a, needle_b in [
        ("registry_patient", world["a"].procedure.patient.registry_id, world["b"].procedure.patient.registry_id),
        ("registry_procedure", world["a"].procedure.external_id, world["b"].procedure.external_id),
        ("events_adverseevent", world["a"].external_id, world["b"].external_id),
        ("registry_clinic", "A-MAD", "B-BER"),
    ]:
        response = client.get(reverse(f"admin:{model}_changelist"))
        assert response.status_code == 200, model
        body = response.content.decode()
        assert needle_a in body, model
        assert needle_b not in body, model


def test_the_clinic_filter_does_not_name_other_clinics(client, alice, world):
    login(client, alice)
    body = client.get(reverse("admin:events_adverseevent_changelist")).content.decode()
    assert "B-BER" not in body
    # Forcing the other clinic's id through the filter parameter yields nothing.
    response = client.get(reverse("admin:events_adverseevent_changelist"), {"clinic": world["b"].procedure.clinic_id})
    assert world["b"].external_id not in response.content.decode()


@pytest.mark.parametrize("suffix", ["change", "history"])
def test_a_clinician_cannot_open_another_clinics_rows(client, alice, world, suffix):
    login(client, alice)
    for obj in objects_of(world["b"]):
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{suffix}", args=[obj.pk])
        response = client.get(url, follow=True)
        # The admin redirects a missing object to the index with a message: no content leaks.
        body = response.content.decode()
        assert str(obj) not in body, (suffix, obj)
        assert response.redirect_chain or response.status_code in (403, 404)


def test_the_colleague_and_the_administrator_open_the_row(client, bob, root, world):
    for user in (bob, root):
        client.logout()
        login(client, user)
        response = client.get(change_url(world["a"]))
        assert response.status_code == 200
        assert world["a"].term in response.content.decode()
    response = client.get(change_url(world["b"]))
    assert response.status_code == 200  # root sees every clinic


def test_autocomplete_offers_only_her_clinics_rows(client, alice, world):
    login(client, alice)
    for app, model, field, expect, forbid in [
        ("events", "adverseevent", "procedure", world["a"].procedure.pk, world["b"].procedure.pk),
        ("registry", "procedure", "patient", world["a"].procedure.patient.pk, world["b"].procedure.patient.pk),
        ("registry", "patient", "clinic", world["a"].procedure.clinic_id, world["b"].procedure.clinic_id),
    ]:
        response = client.get(
            reverse("admin:autocomplete"),
            {"app_label": app, "model_name": model, "field_name": field, "term": ""},
        )
        assert response.status_code == 200, (model, field)
        ids = {int(r["id"]) for r in json.loads(response.content)["results"]}
        assert expect in ids
        assert forbid not in ids


def test_raw_id_lookup_popup_and_labels_show_only_her_rows(client, alice, world):
    login(client, alice)
    # The related-object lookup popup (what a raw-id widget opens) is a scoped changelist.
    response = client.get(reverse("admin:registry_procedure_changelist"), {"_popup": "1", "_to_field": "id"})
    body = response.content.decode()
    assert world["a"].procedure.external_id in body
    assert world["b"].procedure.external_id not in body
    # Rendering her own event's form never shows the other clinic's procedure label.
    body = client.get(change_url(world["a"])).content.decode()
    assert world["b"].procedure.external_id not in body


def test_a_forbidden_post_changes_nothing(client, alice, world):
    login(client, alice)
    ae_b = world["b"]
    before = AdverseEvent.objects.values().get(pk=ae_b.pk)
    response = client.post(change_url(ae_b), {"term": "hacked", "grade": 1}, follow=True)
    assert response.status_code in (200, 403, 404)
    assert AdverseEvent.objects.values().get(pk=ae_b.pk) == before


def test_a_clinician_cannot_attach_an_event_to_another_clinics_procedure(client, alice, world):
    login(client, alice)
    count = AdverseEvent.objects.count()
    response = client.post(
        reverse("admin:events_adverseevent_add"),
        {
            "external_id": "AE-FORGED",
            "procedure": world["b"].procedure.pk,
            "category": "infection",
            "term": "Forged",
            "onset_on": "2023-02-01",
            "grade": 2,
            "outcome": "recovered",
        },
    )
    assert response.status_code == 200  # the form comes back with an error
    assert "Select a valid choice" in response.content.decode()
    assert AdverseEvent.objects.count() == count


def test_a_clinician_cannot_move_a_patient_to_another_clinic(client, alice, world):
    login(client, alice)
    patient = world["a"].procedure.patient
    url = change_url(patient)
    response = client.post(
        url,
        {
            "clinic": world["b"].procedure.clinic_id,
            "sex": "F",
            "birth_year": 1970,
            "enrolled_on": "2023-01-10",
            "procedures-TOTAL_FORMS": "0",
            "procedures-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert Patient.objects.get(pk=patient.pk).clinic_id == world["a"].procedure.clinic_id


def test_actions_only_touch_her_rows(client, alice, world):
    login(client, alice)
    response = client.post(
        reverse("admin:events_adverseevent_changelist"),
        {
            "action": "retract_selected",
            "_selected_action": [world["a"].pk, world["b"].pk],
            "apply": "1",
            "reason": "Duplicate entry",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert AdverseEvent.objects.get(pk=world["a"].pk).retracted_at is not None
    assert AdverseEvent.objects.get(pk=world["b"].pk).retracted_at is None


def test_nobody_can_delete_clinical_rows_from_the_admin(client, root, world):
    login(client, root)
    for obj in objects_of(world["a"]):
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_delete", args=[obj.pk])
        assert client.post(url, {"post": "yes"}).status_code == 403
    assert Procedure.objects.filter(pk=world["a"].procedure.pk).exists()
