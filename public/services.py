"""Writes of the public app: publish a succeeded run, withdraw a publication (registry administrators only)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from core.audit import audit_context
from public import cache
from public.models import Publication
from registry.selectors import is_registry_admin
from reports.choices import RunStatus
from reports.models import IncidenceRun


def _require_admin(actor) -> None:
    if actor is None or not is_registry_admin(actor):
        raise PermissionDenied("Only a registry administrator may publish or withdraw a publication.")


def publication_create(*, actor, run: IncidenceRun, note: str = "") -> Publication:
    """Return a new publication of ``run`` by ``actor``: the run's provider comparison becomes public.

    PermissionDenied unless ``actor`` administers the registry; ValidationError when the run has not
    succeeded or stored no provider comparison (nothing to publish), or the note is unsafe text.
    """
    _require_admin(actor)
    with transaction.atomic(), audit_context(actor, "publication_create"):
        run = IncidenceRun.objects.select_for_update().get(pk=run.pk)
        if run.status != RunStatus.SUCCEEDED:
            raise ValidationError({"run": "Only a succeeded incidence run can be published."})
        if not run.provider_comparisons.exists():
            raise ValidationError({"run": "This run stored no provider comparison: there is nothing to publish."})
        publication = Publication(run=run, published_by=actor, note=note, published_at=timezone.now())
        publication.full_clean()
        publication.save()
    return publication


def publication_withdraw(*, actor, publication: Publication, reason: str) -> Publication:
    """Return ``publication`` withdrawn by ``actor`` with ``reason``: its pages and downloads answer 410 Gone.

    PermissionDenied unless ``actor`` administers the registry; ValidationError without a reason or
    when the publication is already withdrawn (a withdrawal is made once and never changed).
    """
    _require_admin(actor)
    with transaction.atomic(), audit_context(actor, "publication_withdraw"):
        publication = Publication.objects.select_for_update().get(pk=publication.pk)
        if publication.withdrawn_at is not None:
            raise ValidationError("This publication is already withdrawn.")
        if not (reason or "").strip():
            raise ValidationError({"withdrawal_reason": "Say why the publication is withdrawn."})
        publication.withdrawn_at = timezone.now()
        publication.withdrawn_by = actor
        publication.withdrawal_reason = reason.strip()
        publication.full_clean()
        publication.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawal_reason"])
        transaction.on_commit(lambda: cache.forget(publication.pk))
    return publication
