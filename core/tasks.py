"""Periodic housekeeping of the registry (Celery beat)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from core.models import IdempotencyRecord


@shared_task(name="registry.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    """Return how many Idempotency-Key records older than their retention were deleted."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
