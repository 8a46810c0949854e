"""Reads of the public app. Publications are public by nature: no user limits them, only withdrawal does."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from public.models import Publication


def publications_current() -> QuerySet[Publication]:
    """Return the publications not withdrawn, newest first, with their runs."""
    return Publication.objects.filter(withdrawn_at__isnull=True).select_related("run").order_by("-published_at", "-id")


def publication_public(pk: int) -> Publication:
    """Return the publication ``pk``, withdrawn or not (a withdrawn one answers 410 Gone), or raise Http404."""
    publication = Publication.objects.select_related("run").filter(pk=pk).first()
    if publication is None:
        raise Http404("No such publication.")
    return publication
