"""publication_withdraw: registry administrators only, with a reason, once; then everything answers 410 Gone."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from public.models import Publication
from public.services import publication_create, publication_withdraw


def _urls(publication) -> list[str]:
    base = f"/public/{publication.pk}/"
    return [base, f"{base}comparison.csv", f"{base}comparison.json"]


@pytest.mark.django_db
def test_a_withdrawn_publication_answers_410_on_its_page_csv_and_json(small_run, root, client):
    publication = publication_create(actor=root, run=small_run, note="Soon gone")
    assert [client.get(url).status_code for url in _urls(publication)] == [200, 200, 200]  # cached now
    publication_withdraw(actor=root, publication=publication, reason="Clinic S-TWO's data were incomplete.")
    for url in _urls(publication):
        response = client.get(url)
        assert response.status_code == 410, url
        assert "Clinic S-TWO&#x27;s data were incomplete." in response.content.decode()
    index = client.get("/public/").content.decode()
    assert f"/public/{publication.pk}/" not in index


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["alice", "charlie", "sam"])
def test_nobody_else_may_withdraw(small_run, root, persona, request, client):
    publication = publication_create(actor=root, run=small_run, note="")
    user = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        publication_withdraw(actor=user, publication=publication, reason="Mine to take down")
    client.force_login(user)
    response = client.post(f"/admin/public/publication/{publication.pk}/withdraw/", {"reason": "Mine"})
    assert response.status_code in (302, 403)  # the admin sends a non-staff... or refuses a staff user
    assert Publication.objects.get().withdrawn_at is None


@pytest.mark.django_db
def test_a_withdrawal_needs_a_reason_and_happens_once(small_run, root):
    publication = publication_create(actor=root, run=small_run, note="")
    with pytest.raises(ValidationError):
        publication_withdraw(actor=root, publication=publication, reason="  ")
    publication_withdraw(actor=root, publication=publication, reason="First")
    with pytest.raises(ValidationError):
        publication_withdraw(actor=root, publication=publication, reason="Second")
    assert Publication.objects.get().withdrawal_reason == "First"


@pytest.mark.django_db
def test_the_admin_withdraws_with_a_reason(small_run, root, client):
    publication = publication_create(actor=root, run=small_run, note="")
    client.force_login(root)
    assert client.get(f"/admin/public/publication/{publication.pk}/withdraw/").status_code == 200
    response = client.post(f"/admin/public/publication/{publication.pk}/withdraw/", {"reason": "Superseded"})
    assert response.status_code == 302
    stored = Publication.objects.get()
    assert (stored.withdrawal_reason, stored.withdrawn_by) == ("Superseded", root)
    assert client.get(f"/public/{publication.pk}/").status_code == 410
