"""Periodic housekeeping of the registry (Celery beat), and how a service puts a task on the broker."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.utils import timezone

from core.models import IdempotencyRecord

log = logging.getLogger(__name__)

# A broker that refuses a message gets one quick retry; a caller never waits long for an unreachable one
# (each queued thing has a sweep or a nightly run that does the work later).
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


def publish_by_name(name: str, *, what: str, args: tuple = (), kwargs: dict | None = None) -> bool:
    """Return True once the task ``name`` is on the broker; False, logged with ``what``, when it is not.

    By name from the app's registry (each app's ready() loads its tasks): tasks call services, so services
    do not import tasks. With eager tasks (no broker) an error is the task's own and is raised.
    """
    task = current_app.tasks[name]
    try:
        task.apply_async(args, kwargs, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:
        if task.app.conf.task_always_eager:
            raise
        log.warning("%s not queued (%s: %s); it is retried later.", what, type(exc).__name__, exc)
        return False
    return True


@shared_task(name="registry.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    """Return how many Idempotency-Key records older than their retention were deleted."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
