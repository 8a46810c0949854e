"""Celery tasks: thin, idempotent, taking ids and calling reports.services."""

from __future__ import annotations

import logging
import os

from celery import shared_task
from django.db import InterfaceError, OperationalError

from reports import services
from reports.choices import DEFAULT_STRATA, Trigger

log = logging.getLogger(__name__)

MAX_RETRIES = 3


@shared_task(
    bind=True,
    name="reports.incidence_run",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def incidence_run_task(self, run_id: int) -> str:
    """Return the run's final status after claiming and computing it ("skipped" if not ours).

    Acknowledged only when done, so a worker lost mid-run hands the message (same task
    id) to another worker, which claims the run again. Connection errors retry with
    exponential backoff (10 s, 20 s, 40 s); after the last retry the run is failed.
    """
    worker = f"{self.request.hostname or 'local'}:{os.getpid()}"
    try:
        run = services.incidence_run_execute(run_id=run_id, task_id=self.request.id or "", worker=worker)
    except (OperationalError, InterfaceError) as exc:
        if self.request.retries >= MAX_RETRIES:
            services.incidence_run_fail(
                run_id=run_id, task_id=self.request.id or "", error=f"Database unavailable after retries: {exc}"
            )
            raise
        raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc
    return run.status if run is not None else "skipped"


@shared_task(name="reports.incidence_nightly")
def incidence_nightly_task() -> int:
    """Return the id of the nightly site x cell type run (all outcomes, cut-off yesterday)."""
    run = services.incidence_run_start(
        actor=None, cutoff_on=services.nightly_cutoff(), strata=DEFAULT_STRATA, trigger=Trigger.BEAT
    )
    return run.pk


@shared_task(name="reports.incidence_requeue_stale")
def incidence_requeue_stale_task() -> list[int]:
    """Return the ids of runs whose claim outlived the time limit, now queued again."""
    return services.incidence_runs_requeue_stale()
