"""Writes to incidence runs: start (validated, scoped, enqueued on commit), execute, fail, requeue.

Life of a run: ``queued`` -> claimed by a conditional UPDATE -> ``running`` -> results
written in the same transaction as the flip to ``succeeded`` (or ``failed`` with the
error). A worker that dies mid-run leaves ``running`` and no rows; the redelivered
task (same task id) claims it again, and ``incidence_runs_requeue_stale`` puts back
runs whose claim outlived the task time limit.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from registry.selectors import ALL, clinic_scope
from reports.choices import DEFAULT_STRATA, CIMethod, RunStatus, Trigger
from reports.engine import IncidenceParams, compute_incidence
from reports.export import result_record
from reports.models import IncidenceResult, IncidenceRun
from reports.selectors import may_use_reports

log = logging.getLogger(__name__)

# Test-only: pause a first attempt at a stage ("compute" or "write") so a test can
# kill the worker there deterministically. Unset in every real deployment.
_PAUSE_AT = "REPORTS_TEST_PAUSE_AT"
_PAUSE_SECONDS = "REPORTS_TEST_PAUSE_SECONDS"
_PAUSE_FILE = "REPORTS_TEST_PAUSE_FILE"


def _test_pause(stage: str, attempts: int) -> None:
    if os.environ.get(_PAUSE_AT) != stage or attempts != 1:
        return
    marker = os.environ.get(_PAUSE_FILE)
    if marker:
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
    time.sleep(float(os.environ.get(_PAUSE_SECONDS, "60")))


def _enqueue(run_id: int) -> None:
    from reports.tasks import incidence_run_task

    incidence_run_task.delay(run_id)


def incidence_run_start(
    *,
    actor,
    cutoff_on: date,
    strata: Iterable[str] = DEFAULT_STRATA,
    outcomes: Iterable[str] | None = None,
    onset_window_days: int | None = None,
    ci_method: str = CIMethod.WILSON,
    trigger: str = Trigger.API,
) -> IncidenceRun:
    """Return a new queued incidence run, enqueued for a worker once the transaction commits.

    ``actor`` None is the system (the nightly schedule) and covers every clinic; a
    user's run is limited, for good, to the clinics the user may see at this moment.
    Any member of a clinic may ask (reports.selectors.may_use_reports): the scope, not a
    model permission, is what keeps other clinics' data out.
    """
    if actor is None:
        scope = ALL
    else:
        scope = clinic_scope(actor)
        if not may_use_reports(actor):
            raise PermissionDenied("You belong to no clinic, so there is nothing to report on.")
    params = IncidenceParams.build(
        cutoff_on=cutoff_on,
        strata=strata,
        outcomes=outcomes,
        onset_window_days=onset_window_days,
        ci_method=ci_method,
        clinic_ids=None if scope is ALL else scope,
    )
    with transaction.atomic():
        run = IncidenceRun(
            strata=list(params.strata),
            outcomes=list(params.outcomes),
            cutoff_on=params.cutoff_on,
            onset_window_days=params.onset_window_days,
            ci_method=params.ci_method,
            clinic_ids=None if params.clinic_ids is None else sorted(params.clinic_ids),
            requested_by=actor,
            trigger=trigger,
        )
        run.full_clean()
        run.save()
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def run_params(run: IncidenceRun) -> IncidenceParams:
    """Return the engine parameters frozen in ``run``."""
    return IncidenceParams.build(
        cutoff_on=run.cutoff_on,
        strata=run.strata,
        outcomes=run.outcomes,
        onset_window_days=run.onset_window_days,
        ci_method=run.ci_method,
        clinic_ids=run.clinic_ids,
    )


def _claim(*, run_id: int, task_id: str, worker: str) -> uuid.UUID | None:
    """Return a fresh claim token if this call moved the run to running, else None."""
    token = uuid.uuid4()
    claimable = Q(status=RunStatus.QUEUED)
    if task_id:
        # The same task again: a retry, or a redelivery after its worker died.
        claimable |= Q(status=RunStatus.RUNNING, task_id=task_id)
    touched = IncidenceRun.objects.filter(claimable, pk=run_id).update(
        status=RunStatus.RUNNING,
        task_id=task_id,
        claim_token=token,
        claimed_by=worker[:200],
        claimed_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    return token if touched == 1 else None


def incidence_run_execute(*, run_id: int, task_id: str = "", worker: str = "") -> IncidenceRun | None:
    """Return the run after computing and storing it, or None when it was not ours to run.

    The claim is a conditional UPDATE that must touch one row. Results are written in
    one transaction with the flip to succeeded, and only while the claim is still ours.
    Database connection errors propagate (the task retries); any other error marks the
    run failed with its message.
    """
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    token = _claim(run_id=run_id, task_id=task_id, worker=worker)
    if token is None:
        log.info("Incidence run %s not claimable (already running elsewhere or finished).", run_id)
        return None
    run = IncidenceRun.objects.get(pk=run_id)
    try:
        _test_pause("compute", run.attempts)
        rows = compute_incidence(params=run_params(run))
        with transaction.atomic():
            locked = IncidenceRun.objects.select_for_update().filter(
                pk=run_id, status=RunStatus.RUNNING, claim_token=token
            )
            if not locked.exists():
                log.warning("Incidence run %s was reclaimed while computing; discarding this result.", run_id)
                return None
            IncidenceResult.objects.bulk_create(
                [IncidenceResult(run_id=run_id, position=i, **result_record(row)) for i, row in enumerate(rows)],
                batch_size=2000,
            )
            _test_pause("write", run.attempts)
            locked.update(status=RunStatus.SUCCEEDED, finished_at=timezone.now(), row_count=len(rows), error="")
    except Exception as exc:
        if _is_retryable(exc):
            raise
        log.exception("Incidence run %s failed.", run_id)
        _fail(run_id=run_id, token=token, error=f"{type(exc).__name__}: {exc}")
    return IncidenceRun.objects.get(pk=run_id)


def _is_retryable(exc: BaseException) -> bool:
    """Return True for a lost or refused database connection: the task retries those."""
    return isinstance(exc, OperationalError | InterfaceError)


def _fail(*, run_id: int, error: str, token: uuid.UUID | None = None, task_id: str | None = None) -> bool:
    claim = Q(claim_token=token) if token is not None else Q(task_id=task_id)
    return (
        IncidenceRun.objects.filter(claim, pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=error[:10000] or "Unknown error."
        )
        == 1
    )


def incidence_run_fail(*, run_id: int, task_id: str, error: str) -> bool:
    """Return True if the run held by ``task_id`` was marked failed with ``error`` (retries exhausted)."""
    return _fail(run_id=run_id, task_id=task_id, error=error)


def stale_claim_age() -> timedelta:
    """Return how old a running claim must be to count as abandoned: the hard time limit plus a margin."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) + timedelta(minutes=5)


def incidence_runs_requeue_stale(*, older_than: timedelta | None = None) -> list[int]:
    """Return the ids of runs put back in the queue: claims older than ``older_than``, and lost enqueues.

    A claim older than the task's hard time limit belongs to a worker that is gone;
    a queued run that old never reached the broker. Each goes back to queued (the old
    claim token is void, so a late writer cannot store anything) and is enqueued again.
    """
    older_than = stale_claim_age() if older_than is None else older_than
    threshold = timezone.now() - older_than
    requeued = []
    stale = IncidenceRun.objects.filter(
        Q(status=RunStatus.RUNNING, claimed_at__lt=threshold) | Q(status=RunStatus.QUEUED, created_at__lt=threshold)
    ).values_list("pk", flat=True)
    for run_id in stale:
        with transaction.atomic():
            touched = (
                IncidenceRun.objects.filter(pk=run_id)
                .filter(Q(status=RunStatus.RUNNING, claimed_at__lt=threshold) | Q(status=RunStatus.QUEUED))
                .update(status=RunStatus.QUEUED, task_id="", claim_token=None, claimed_at=None, claimed_by="")
            )
            if touched == 1:
                requeued.append(run_id)
                transaction.on_commit(lambda run_id=run_id: _enqueue(run_id))
    return requeued


def nightly_cutoff(today: date | None = None) -> date:
    """Return the nightly report's data cut-off: yesterday, the last complete day of data entry."""
    return (today or timezone.localdate()) - timedelta(days=1)
