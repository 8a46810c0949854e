"""publication_create: only a registry administrator publishes, only a succeeded run with a comparison."""

from __future__ import annotations

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from public.models import Publication
from public.services import publication_create
from reports.services import incidence_run_start


@pytest.mark.django_db
def test_a_registry_administrator_publishes_a_succeeded_run(small_run, root):
    publication = publication_create(actor=root, run=small_run, note="First comparison")
    stored = Publication.objects.get()
    assert (stored.pk, stored.run_id, stored.published_by, stored.note) == (
        publication.pk,
        small_run.pk,
        root,
        "First comparison",
    )
    assert stored.published_at is not None and stored.withdrawn_at is None
    event = pghistory.models.Events.objects.filter(pgh_obj_model="public.Publication").get()
    assert event.pgh_label == "insert" and event.pgh_context["action"] == "publication_create"
    assert event.pgh_context["user"] == root.pk


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["alice", "charlie", "sam", "dora"])
def test_nobody_else_may_publish_and_nothing_is_stored(small_run, persona, request):
    user = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        publication_create(actor=user, run=small_run, note="")
    assert not Publication.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["alice", "charlie", "sam"])
def test_the_admin_refuses_others_a_publication_with_403(small_run, persona, request, client):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/admin/public/publication/add/").status_code == 403
    response = client.post("/admin/public/publication/add/", {"run": small_run.pk, "note": "sneaky"})
    assert response.status_code == 403
    assert not Publication.objects.exists()


@pytest.mark.django_db
def test_the_admin_publishes_a_run_for_a_registry_administrator(small_run, root, client):
    client.force_login(root)
    response = client.post("/admin/public/publication/add/", {"run": small_run.pk, "note": "Via the admin"})
    assert response.status_code == 302
    publication = Publication.objects.get()
    assert (publication.run_id, publication.published_by, publication.note) == (small_run.pk, root, "Via the admin")
    # Read-only afterwards: no edit, no delete.
    page = client.get(f"/admin/public/publication/{publication.pk}/change/").content.decode()
    assert 'name="note"' not in page and "Withdraw" in page
    assert client.post(f"/admin/public/publication/{publication.pk}/delete/").status_code == 403


@pytest.mark.django_db
def test_a_run_that_has_not_succeeded_cannot_be_published(root, clinic_a):
    queued = incidence_run_start(actor=None, cutoff_on=clinic_a.created_at.date(), outcomes=["any"])
    with pytest.raises(ValidationError) as excinfo:
        publication_create(actor=root, run=queued, note="")
    assert "succeeded" in str(excinfo.value)
    assert not Publication.objects.exists()


@pytest.mark.django_db
def test_a_note_with_control_characters_is_refused(small_run, root):
    with pytest.raises(ValidationError) as excinfo:
        publication_create(actor=root, run=small_run, note="Hidden \u202e text")
    assert "note" in excinfo.value.message_dict
    assert not Publication.objects.exists()
