"""A publication is immutable in the database itself: no edit, no delete, a withdrawal made once."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from public.models import Publication
from public.services import publication_create, publication_withdraw
from reports.services import incidence_run_start


def _refused(**changes) -> str:
    with pytest.raises(DatabaseError) as excinfo, transaction.atomic():
        Publication.objects.update(**changes)
    return str(excinfo.value)


@pytest.mark.django_db
def test_the_database_refuses_to_change_the_run_or_the_note(small_run, root, clinic_a):
    publication = publication_create(actor=root, run=small_run, note="As published")
    other = incidence_run_start(actor=None, cutoff_on=small_run.cutoff_on, outcomes=["any"])
    assert "cannot be edited" in _refused(note="Rewritten")
    assert "cannot be edited" in _refused(run=other)
    assert "cannot be edited" in _refused(published_at=timezone.now())
    stored = Publication.objects.get()
    assert (stored.note, stored.run_id, stored.published_at) == ("As published", small_run.pk, publication.published_at)


@pytest.mark.django_db
def test_the_database_refuses_to_delete_a_publication(small_run, root):
    publication_create(actor=root, run=small_run, note="")
    with pytest.raises(DatabaseError), transaction.atomic():
        Publication.objects.all().delete()
    assert Publication.objects.count() == 1


@pytest.mark.django_db
def test_a_withdrawal_is_made_once_and_never_changed(small_run, root, sam):
    publication = publication_create(actor=root, run=small_run, note="")
    withdrawn = publication_withdraw(actor=root, publication=publication, reason="Coding error in clinic B")
    assert withdrawn.withdrawn_at is not None and withdrawn.withdrawn_by == root
    assert "withdrawn once" in _refused(withdrawal_reason="Another reason")
    assert "withdrawn once" in _refused(withdrawn_at=None, withdrawn_by=None, withdrawal_reason="")
    assert "withdrawn once" in _refused(withdrawn_by=sam)
    stored = Publication.objects.get()
    assert (stored.withdrawal_reason, stored.withdrawn_by) == ("Coding error in clinic B", root)


@pytest.mark.django_db
def test_a_withdrawal_needs_when_who_and_why_together(small_run, root):
    publication_create(actor=root, run=small_run, note="")
    with pytest.raises(DatabaseError), transaction.atomic():
        Publication.objects.update(withdrawn_at=timezone.now())  # no one, no reason
    assert Publication.objects.get().withdrawn_at is None


@pytest.mark.django_db
def test_the_database_refuses_a_publication_of_a_run_that_has_not_succeeded(root, clinic_a):
    queued = incidence_run_start(actor=None, cutoff_on=clinic_a.created_at.date(), outcomes=["any"])
    with pytest.raises(DatabaseError) as excinfo, transaction.atomic():
        Publication.objects.create(run=queued, published_by=root)
    assert "succeeded" in str(excinfo.value)
