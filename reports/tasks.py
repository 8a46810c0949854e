"""Celery tasks: thin, idempotent, taking ids and calling reports.services."""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from billiard.einfo import ExceptionWithTraceback
from celery import shared_task
from celery.exceptions import TimeLimitExceeded, WorkerLostError
from celery.worker.request import Request
from django.conf import settings
from django.db import InterfaceError, OperationalError

from reports import services
from reports.choices import DEFAULT_STRATA, INCIDENCE_RUN_TASK, Trigger, WindowsMode

log = logging.getLogger(__name__)

MAX_RETRIES = 3
TASK_NAME = INCIDENCE_RUN_TASK


def _address_space() -> int:
    """Return this process's virtual memory size in bytes (/proc/self/statm, first field, in pages)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * resource.getpagesize()


@contextmanager
def memory_ceiling(megabytes: int) -> Iterator[None]:
    """Cap this process's address space at its current size plus ``megabytes`` while the block runs.

    A runaway computation then gets MemoryError (and the run fails with that reason)
    instead of growing until the kernel kills the worker. The cap is lifted afterwards,
    since the pool process lives on for other tasks. 0 disables it.
    """
    if megabytes <= 0:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = _address_space() + megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class IncidenceRunRequest(Request):
    """An incidence task as the worker's main process sees it: it records why a pool process was lost.

    A pool process killed mid-run (kill -9, the kernel's out-of-memory killer) cannot
    say so itself; the main process notes the reason on the run (still running: the
    message goes back to the queue and the next attempt claims it), so that a run out of
    attempts ends failed with it. A run killed at the hard time limit is failed at once:
    another attempt would only hit the same limit.
    """

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = exc_info.exception
        exc = exc.exc if isinstance(exc, ExceptionWithTraceback) else exc
        if self.args and isinstance(exc, WorkerLostError | TimeLimitExceeded):
            try:
                if isinstance(exc, TimeLimitExceeded):
                    services.incidence_run_fail(
                        run_id=self.args[0],
                        task_id=self.id,
                        error=f"Stopped at the hard time limit of {settings.CELERY_TASK_TIME_LIMIT} s "
                        "(CELERY_TASK_TIME_LIMIT). Choose fewer strata, or raise the limit.",
                    )
                else:
                    services.incidence_run_note_lost(run_id=self.args[0], task_id=self.id, reason=str(exc))
            except Exception:
                # The worker must go on handling messages whatever happened to the database.
                log.exception("Could not record the loss of incidence run %s.", self.args[0])
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


@shared_task(
    bind=True,
    name=TASK_NAME,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    Request=IncidenceRunRequest,
)
def incidence_run_task(self, run_id: int) -> str:
    """Return the run's final status after claiming and computing it ("skipped" if not ours).

    Acknowledged only when done, so a worker process lost mid-run hands the message
    (same task id) back, and the task claims the run again (up to REPORTS_MAX_ATTEMPTS
    times). Connection errors retry with exponential backoff (10 s, 20 s, 40 s); after
    the last retry the run is failed. On a worker the run's memory is capped
    (REPORTS_TASK_MEMORY_MB).
    """
    worker = f"{self.request.hostname or 'local'}:{os.getpid()}"
    # In-process (eager) runs share the web server's process: no cap there.
    ceiling = 0 if self.request.is_eager else settings.REPORTS_TASK_MEMORY_MB
    try:
        with memory_ceiling(ceiling):
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
    """Return the id of the nightly site x cell type run (all outcomes, cut-off yesterday, the registry's
    outcome definitions, procedure unit)."""
    run = services.incidence_run_start(
        actor=None,
        cutoff_on=services.nightly_cutoff(),
        strata=DEFAULT_STRATA,
        windows_mode=WindowsMode.REGISTRY,
        trigger=Trigger.BEAT,
    )
    return run.pk


@shared_task(name="reports.incidence_requeue_stale")
def incidence_requeue_stale_task() -> dict[str, list[int]]:
    """Return the ids of runs queued again (worker gone), failed (out of attempts) and published (broker was down)."""
    return asdict(services.incidence_runs_requeue_stale())
