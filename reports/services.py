"""Writes to incidence runs: start (sized, validated, scoped, published after commit), execute, fail, sweep.

Life of a run: ``queued`` (its task is published to the broker once the transaction
commits; ``published_at`` records that it got there) -> claimed by a conditional UPDATE
(``attempts`` + 1) -> ``running``, the worker stamping ``heartbeat_at`` every
REPORTS_HEARTBEAT_SECONDS -> result rows streamed into the table, and what the run's
documents show stored with them (reports.snapshot), in the same transaction as the
flip to ``succeeded`` (or ``failed`` with the reason).

Bounds: a run whose result would exceed REPORTS_MAX_RESULT_ROWS is refused before it
is stored (and checked again when it starts, for data entered meanwhile); the engine
streams, so memory stays flat; a run is attempted at most REPORTS_MAX_ATTEMPTS times.

Recovery (the sweep, ``incidence_runs_requeue_stale``, runs every minute):
- a worker process that dies mid-run (kill -9, out of memory) leaves ``running`` and no
  rows. If the worker's main process survived, it hands the message back and the
  same task claims the run again at once; otherwise the heartbeat goes stale and the
  sweep queues the run again (or fails it once it is out of attempts);
- a run whose task never reached the broker (broker down at commit) is published by
  the sweep; the request that started it was answered 202 all the same.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone
from psycopg.types.json import Jsonb

from core.audit import audit_context
from core.integrity import save_or_field_error
from core.models import ConcurrentUpdate
from core.tasks import PUBLISH_RETRY_POLICY
from registry.selectors import ALL, clinic_scope
from reports.choices import (
    DEFAULT_STRATA,
    INCIDENCE_RUN_TASK,
    OUTCOME_LABELS,
    CIMethod,
    RunStatus,
    Trigger,
    Unit,
    WindowsMode,
)
from reports.engine import IncidenceParams, SizeEstimate, estimate_result_rows, iter_incidence
from reports.exports.incidence_csv import result_record
from reports.models import IncidenceResult, IncidenceRun, OutcomeDefinition
from reports.outcomes import freeze as freeze_definitions
from reports.selectors import may_use_reports
from reports.snapshot import run_snapshot_store

log = logging.getLogger(__name__)

# Sent by incidence_run_execute at each stage of an attempt ("compute": claimed, about to
# compute; "write": every row inserted, not yet committed), with run_id and attempt.
# Monitoring may listen; the worker tests use it to stop an attempt at a known point.
incidence_run_stage = Signal()

# Rows copied per COPY statement while streaming a run's results.
WRITE_BATCH = 2000
# Publishing from a request or the sweep tries the broker briefly: the sweep retries later.
# A queued run younger than this may still be being published by the request that made it.
PUBLISH_GRACE = timedelta(seconds=15)


class RunTooLarge(Exception):
    """The run's result would exceed REPORTS_MAX_RESULT_ROWS."""


class _ClaimLost(Exception):
    """Another worker (or the sweep) took the run over while this one computed it."""


def _too_large_message(estimate: SizeEstimate, limit: int) -> str:
    at_least = "" if estimate.exact else "at least "
    return (
        f"This report would have {at_least}{estimate.rows:,} rows ({estimate.groups:,} strata and margins x "
        f"{estimate.outcomes} outcomes), more than the limit of {limit:,}. Choose fewer or coarser strata, "
        "or fewer outcomes."
    )


def incidence_run_size(*, params: IncidenceParams) -> SizeEstimate:
    """Return the size of the report of ``params``; ValidationError on "strata" if over REPORTS_MAX_RESULT_ROWS.

    Costs one grouping of the scoped procedures (well under a second on 100,000), and
    refuses a far too large report after that one query.
    """
    limit = settings.REPORTS_MAX_RESULT_ROWS
    estimate = estimate_result_rows(params=params, limit=limit)
    if estimate.rows > limit:
        raise ValidationError({"strata": [_too_large_message(estimate, limit)]}, code="too_large")
    return estimate


def _windows_mode_error(windows_mode) -> dict[str, str]:
    if windows_mode in WindowsMode.values:
        return {}
    return {"windows_mode": f"Risk windows must be one of {', '.join(WindowsMode.values)}."}


def _definitions_for(windows_mode: str) -> dict[str, dict]:
    """Return {code: frozen definition} the run would use before any onset window: stored or open."""
    if windows_mode == WindowsMode.REGISTRY:
        return {d["code"]: d for d in freeze_definitions()}
    return {
        code: {
            "code": code,
            "label": label,
            "qualifies": code,
            "window_start_day": 0,
            "window_end_day": None,
            "version": None,  # no stored definition: the open window
        }
        for code, label in OUTCOME_LABELS.items()
    }


def incidence_params(
    *,
    cutoff_on: date,
    strata: Iterable[str] = DEFAULT_STRATA,
    outcomes: Iterable[str] | None = None,
    onset_window_days: int | None = None,
    ci_method: str = CIMethod.WILSON,
    clinic_ids: Iterable[int] | None = None,
    windows_mode: str = WindowsMode.OPEN,
    unit: str = Unit.PROCEDURE,
) -> tuple[IncidenceParams, list[dict]]:
    """Return the validated engine parameters of a new run and the outcome definitions it freezes.

    ``windows_mode`` "open" gives every outcome the window 0-open; "registry" the current
    stored definitions (reports.outcomes). ``onset_window_days`` N then ends every window on
    day N, keeping each start day (DESIGN 2b). The definitions are the run's outcomes in
    report order, each with the window the engine is given. ValidationError names the field.
    """
    errors = _windows_mode_error(windows_mode)
    definitions = {} if errors else _definitions_for(windows_mode)
    try:
        params = IncidenceParams.build(
            cutoff_on=cutoff_on,
            strata=strata,
            outcomes=outcomes,
            onset_window_days=onset_window_days,
            ci_method=ci_method,
            clinic_ids=clinic_ids,
            windows={code: (d["window_start_day"], d["window_end_day"]) for code, d in definitions.items()},
            unit=unit,
        )
    except ValidationError as exc:
        raise ValidationError({**exc.message_dict, **errors}) from exc
    if errors:
        raise ValidationError(errors)
    used = []
    for outcome, (start, end) in zip(params.outcomes, params.windows, strict=True):
        used.append({**definitions[outcome], "window_start_day": start, "window_end_day": end})
    return params, used


def incidence_run_start(
    *,
    actor,
    cutoff_on: date,
    strata: Iterable[str] = DEFAULT_STRATA,
    outcomes: Iterable[str] | None = None,
    onset_window_days: int | None = None,
    ci_method: str = CIMethod.WILSON,
    windows_mode: str = WindowsMode.OPEN,
    unit: str = Unit.PROCEDURE,
    trigger: str = Trigger.API,
) -> IncidenceRun:
    """Return a new queued incidence run, published to the workers once the transaction commits.

    ``actor`` None is the system (the nightly schedule) and covers every clinic; a
    user's run is limited, for good, to the clinics the user may see at this moment.
    Any member of a clinic may ask (reports.selectors.may_use_reports): the scope, not a
    model permission, is what keeps other clinics' data out. A run whose result would
    exceed REPORTS_MAX_RESULT_ROWS is refused (ValidationError on "strata"); the
    estimate is stored with the run. A broker that is down does not fail the call:
    the run stays queued with ``published_at`` empty and the sweep publishes it.

    ``windows_mode`` (open here, as on the command line; the admin, the API and the nightly
    run ask for "registry") and ``unit`` are stored with the run, and so are the outcome
    definitions it uses (``outcome_definitions``): recomputing the run later
    (run_params) reads those, never the live definitions.
    """
    if actor is None:
        scope = ALL
    else:
        scope = clinic_scope(actor)
        if not may_use_reports(actor):
            raise PermissionDenied("You belong to no clinic, so there is nothing to report on.")
    params, definitions = incidence_params(
        cutoff_on=cutoff_on,
        strata=strata,
        outcomes=outcomes,
        onset_window_days=onset_window_days,
        ci_method=ci_method,
        clinic_ids=None if scope is ALL else scope,
        windows_mode=windows_mode,
        unit=unit,
    )
    estimate = incidence_run_size(params=params)
    with transaction.atomic():
        run = IncidenceRun(
            strata=list(params.strata),
            outcomes=list(params.outcomes),
            cutoff_on=params.cutoff_on,
            onset_window_days=params.onset_window_days,
            ci_method=params.ci_method,
            windows_mode=windows_mode,
            unit=params.unit,
            outcome_definitions=definitions,
            clinic_ids=None if params.clinic_ids is None else sorted(params.clinic_ids),
            requested_by=actor,
            trigger=trigger,
            estimated_rows=estimate.rows,
        )
        run.full_clean()
        run.save()
        transaction.on_commit(lambda: incidence_run_publish(run_id=run.pk))
    return run


def incidence_run_publish(*, run_id: int) -> bool:
    """Return True once the run's task is on the broker (``published_at`` set); False, logged, if it is not.

    Called after the commit that queued the run, and by the sweep for runs left
    unpublished. A broker that refuses or is unreachable costs a short retry and one
    log line, never an error for the caller: the sweep tries again within a minute.
    """
    # By name from the app's registry (ReportsConfig.ready loads reports.tasks): tasks call
    # services, so services do not import tasks.
    incidence_run_task = current_app.tasks[INCIDENCE_RUN_TASK]
    try:
        incidence_run_task.apply_async((run_id,), retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:
        if incidence_run_task.app.conf.task_always_eager:
            raise  # no broker involved: this is the task's own error
        log.warning("Incidence run %s not published (%s: %s); the sweep will retry.", run_id, type(exc).__name__, exc)
        return False
    # A run that already succeeded is a snapshot; one that runs (a fast worker) was published all the same.
    IncidenceRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        published_at=timezone.now()
    )
    return True


def run_params(run: IncidenceRun) -> IncidenceParams:
    """Return the engine parameters frozen in ``run``: its windows come from the definitions it stored.

    Never from the live definitions, so a run recomputed after an edit of them gives the same
    numbers. A run made before definitions existed (none stored) has every window open.
    """
    windows = None
    if run.outcome_definitions:
        # The stored end day already is onset_window_days when that is set; build() applies it
        # again (to the start day it keeps), so it is handed over open here.
        windows = {
            d["code"]: (d["window_start_day"], None if run.onset_window_days is not None else d["window_end_day"])
            for d in run.outcome_definitions
        }
    return IncidenceParams.build(
        cutoff_on=run.cutoff_on,
        strata=run.strata,
        outcomes=run.outcomes,
        onset_window_days=run.onset_window_days,
        ci_method=run.ci_method,
        clinic_ids=run.clinic_ids,
        windows=windows,
        unit=run.unit,
    )


def _out_of_attempts_error(run: dict) -> str:
    previous = f" Last error: {run['error']}" if run["error"] else ""
    return (
        f"Stopped after {run['attempts']} attempts (REPORTS_MAX_ATTEMPTS), none of which finished: the worker "
        "computing it was lost each time (its process killed, most often for running out of memory, or the "
        "machine or its database connection gone). "
        f"Estimated size: {run['estimated_rows'] or 0:,} rows.{previous}"
    )


def _claim(*, run_id: int, task_id: str, worker: str) -> uuid.UUID | None:
    """Return a fresh claim token if this call moved the run to running, else None.

    A run out of attempts is not claimed but failed with the reason, so a message the
    broker keeps redelivering (a worker killed each time) ends here.
    """
    token = uuid.uuid4()
    claimable = Q(status=RunStatus.QUEUED)
    if task_id:
        # The same task again: a retry, or a redelivery after its worker process died.
        claimable |= Q(status=RunStatus.RUNNING, task_id=task_id)
    now = timezone.now()
    touched = IncidenceRun.objects.filter(claimable, pk=run_id, attempts__lt=settings.REPORTS_MAX_ATTEMPTS).update(
        status=RunStatus.RUNNING,
        task_id=task_id,
        claim_token=token,
        claimed_by=worker[:200],
        claimed_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
    )
    if touched == 1:
        return token
    spent = IncidenceRun.objects.filter(claimable, pk=run_id, attempts__gte=settings.REPORTS_MAX_ATTEMPTS)
    for run in spent.values("attempts", "error", "estimated_rows"):
        if spent.update(
            status=RunStatus.FAILED,
            finished_at=now,
            claimed_at=Coalesce("claimed_at", now),
            error=_out_of_attempts_error(run),
        ):
            log.error("Incidence run %s failed: out of attempts.", run_id)
    return None


class _Heartbeat:
    """A thread stamping ``heartbeat_at`` on a claimed run every interval, on its own connection.

    ``lost`` turns true when the stamp finds the claim gone (the sweep requeued the run
    after missed heartbeats, say): the computation then stops early.
    """

    def __init__(self, *, run_id: int, token: uuid.UUID, interval: float):
        self.run_id, self.token, self.interval = run_id, token, interval
        self.lost = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"incidence-run-{run_id}-heartbeat", daemon=True)

    def _beat(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    touched = IncidenceRun.objects.filter(
                        pk=self.run_id, status=RunStatus.RUNNING, claim_token=self.token
                    ).update(heartbeat_at=timezone.now())
                except DatabaseError as exc:
                    log.warning("Incidence run %s: heartbeat not recorded (%s).", self.run_id, exc)
                    connection.close()  # this thread's connection; the next beat opens a fresh one
                    continue
                # No row touched while the run is there to see: the claim is someone else's now. (A run
                # this connection cannot see at all was created in a transaction not yet committed.)
                if touched == 0 and IncidenceRun.objects.filter(pk=self.run_id).exists():
                    self.lost = True
                    return
        finally:
            connection.close()

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        self._thread.join()


def _copy_results(rows: list[tuple], *, columns: list[str]) -> None:
    """Insert result rows with COPY: several times faster than INSERT for a report's many rows."""
    names = ", ".join(connection.ops.quote_name(IncidenceResult._meta.get_field(c).column) for c in columns)
    table = connection.ops.quote_name(IncidenceResult._meta.db_table)
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _store(*, run: IncidenceRun, token: uuid.UUID, heartbeat: _Heartbeat) -> None:
    """Compute the run and store its rows and the flip to succeeded in one transaction (all or nothing)."""
    params = run_params(run)
    limit = settings.REPORTS_MAX_RESULT_ROWS
    with transaction.atomic():
        # Checked again: procedures entered since the run was accepted may have grown it.
        estimate = estimate_result_rows(params=params, limit=limit)
        if estimate.rows > limit:
            raise RunTooLarge(_too_large_message(estimate, limit))
        count = 0
        pending: list[tuple] = []
        for position, row in iter_incidence(params=params):
            record = result_record(row)
            pending.append((run.pk, position, Jsonb(record.pop("stratum")), *record.values()))
            count += 1
            if count > limit:  # the data grew between the estimate and the computation
                raise RunTooLarge(f"The report grew past the limit of {limit:,} rows while it was computed.")
            if len(pending) >= WRITE_BATCH:
                _copy_results(pending, columns=["run_id", "position", "stratum", *record])
                pending = []
                if heartbeat.lost:
                    raise _ClaimLost
        if pending:
            _copy_results(pending, columns=["run_id", "position", "stratum", *record])
        # What the documents show beyond the rows, frozen with them (reports.snapshot).
        listing_total = run_snapshot_store(run=run, params=params)
        incidence_run_stage.send(sender=IncidenceRun, stage="write", run_id=run.pk, attempt=run.attempts)
        locked = IncidenceRun.objects.select_for_update().filter(pk=run.pk, status=RunStatus.RUNNING, claim_token=token)
        if not locked.exists():
            raise _ClaimLost
        locked.update(
            status=RunStatus.SUCCEEDED,
            finished_at=timezone.now(),
            row_count=count,
            listing_total=listing_total,
            error="",
        )


def incidence_run_execute(*, run_id: int, task_id: str = "", worker: str = "") -> IncidenceRun | None:
    """Return the run after computing and storing it, or None when it was not ours to run.

    The claim is a conditional UPDATE that must touch one row. While computing, a
    thread keeps ``heartbeat_at`` fresh. Results are written in one transaction with
    the flip to succeeded, and only while the claim is still ours. Database connection
    errors propagate (the task retries); anything else (too large, out of memory, the
    soft time limit, a bug) marks the run failed with the reason.
    """
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    token = _claim(run_id=run_id, task_id=task_id, worker=worker)
    if token is None:
        log.info("Incidence run %s not claimable (running elsewhere, finished, or out of attempts).", run_id)
        return None
    run = IncidenceRun.objects.get(pk=run_id)
    error = ""
    with _Heartbeat(run_id=run_id, token=token, interval=settings.REPORTS_HEARTBEAT_SECONDS) as heartbeat:
        try:
            incidence_run_stage.send(sender=IncidenceRun, stage="compute", run_id=run_id, attempt=run.attempts)
            _store(run=run, token=token, heartbeat=heartbeat)
        except _ClaimLost:
            log.warning("Incidence run %s was taken over while computing; this attempt's rows are discarded.", run_id)
            return None
        except RunTooLarge as exc:
            error = str(exc)
        except MemoryError:
            # Raised under the address-space limit the task sets (REPORTS_TASK_MEMORY_MB); the
            # rows are gone with the rolled-back transaction, so there is memory to record it.
            error = (
                "MemoryError: the computation needed more memory than a run may use "
                f"(REPORTS_TASK_MEMORY_MB={settings.REPORTS_TASK_MEMORY_MB}). Choose fewer strata."
            )
        except SoftTimeLimitExceeded:
            error = (
                f"Stopped at the soft time limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s "
                "(CELERY_TASK_SOFT_TIME_LIMIT). Choose fewer strata, or raise the limit."
            )
        except Exception as exc:
            if _is_retryable(exc):
                raise
            log.exception("Incidence run %s failed.", run_id)
            error = f"{type(exc).__name__}: {exc}"
    if error:
        log.error("Incidence run %s failed: %s", run_id, error)
        _fail(run_id=run_id, token=token, error=error)
    return IncidenceRun.objects.get(pk=run_id)


def _is_retryable(exc: BaseException) -> bool:
    """Return True for a lost or refused database connection: the task retries those.

    The client library's own "out of memory" is not retried: it would run out again.
    """
    return isinstance(exc, OperationalError | InterfaceError) and "out of memory" not in str(exc).lower()


def _fail(*, run_id: int, error: str, token: uuid.UUID | None = None, task_id: str | None = None) -> bool:
    claim = Q(claim_token=token) if token is not None else Q(task_id=task_id)
    return (
        IncidenceRun.objects.filter(claim, pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=error[:10000] or "Unknown error."
        )
        == 1
    )


def incidence_run_fail(*, run_id: int, task_id: str, error: str) -> bool:
    """Return True if the run held by ``task_id`` was marked failed with ``error`` (retries exhausted, time limit)."""
    return _fail(run_id=run_id, task_id=task_id, error=error)


def incidence_run_note_lost(*, run_id: int, task_id: str, reason: str) -> bool:
    """Return True if ``reason`` (why the worker process running the attempt was lost) was noted on the run.

    The run stays running: the same task claims it again, and a run out of attempts
    ends failed with this as its last error.
    """
    attempts = IncidenceRun.objects.filter(pk=run_id).values_list("attempts", flat=True).first()
    return (
        IncidenceRun.objects.filter(pk=run_id, task_id=task_id, status=RunStatus.RUNNING).update(
            error=f"Attempt {attempts} lost: {reason}"[:10000]
        )
        == 1
    )


def stale_claim_age() -> timedelta:
    """Return how long a published run may wait unclaimed before its message counts as lost: the hard
    time limit plus a margin (the broker redelivers unacknowledged messages within that)."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) + timedelta(minutes=5)


@dataclass
class Sweep:
    """What one sweep did: runs queued again, runs failed for good, runs (re)published."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    published: list[int] = field(default_factory=list)


def incidence_runs_requeue_stale(
    *, stale_after: timedelta | None = None, publish_grace: timedelta = PUBLISH_GRACE
) -> Sweep:
    """Return what the sweep did to runs whose worker is gone and runs that never reached the broker.

    - running, heartbeat older than ``stale_after`` (REPORTS_HEARTBEAT_STALE_SECONDS):
      the worker is gone. Back to queued and published again, unless the run is out of
      attempts: then failed with the reason. The old claim token is void, so a late
      writer cannot store anything.
    - queued with ``published_at`` empty (the broker was down when it was queued) for
      longer than ``publish_grace`` (younger ones may still be being published by the
      request that queued them), or published longer ago than the time limit and never
      claimed (message lost): published.
    """
    stale_after = timedelta(seconds=settings.REPORTS_HEARTBEAT_STALE_SECONDS) if stale_after is None else stale_after
    now = timezone.now()
    threshold = now - stale_after
    stale = Q(status=RunStatus.RUNNING) & (
        Q(heartbeat_at__lt=threshold) | Q(heartbeat_at__isnull=True, claimed_at__lt=threshold)
    )
    sweep = Sweep()
    for run in IncidenceRun.objects.filter(stale).values("pk", "attempts", "error", "estimated_rows"):
        run_id = run["pk"]
        with transaction.atomic():
            mine = IncidenceRun.objects.filter(stale, pk=run_id)
            if run["attempts"] >= settings.REPORTS_MAX_ATTEMPTS:
                if mine.update(status=RunStatus.FAILED, finished_at=now, error=_out_of_attempts_error(run)):
                    sweep.failed.append(run_id)
                continue
            touched = mine.update(
                status=RunStatus.QUEUED,
                task_id="",
                claim_token=None,
                claimed_at=None,
                claimed_by="",
                heartbeat_at=None,
                published_at=None,
            )
            if touched == 1:
                sweep.requeued.append(run_id)
                transaction.on_commit(lambda run_id=run_id: incidence_run_publish(run_id=run_id))
    unpublished = IncidenceRun.objects.filter(
        Q(published_at__isnull=True, created_at__lt=now - publish_grace) | Q(published_at__lt=now - stale_claim_age()),
        status=RunStatus.QUEUED,
    ).exclude(pk__in=sweep.requeued)
    for run_id in unpublished.values_list("pk", flat=True):
        if incidence_run_publish(run_id=run_id):
            sweep.published.append(run_id)
    if sweep.requeued or sweep.failed or sweep.published:
        log.warning("Incidence run sweep: %s", sweep)
    return sweep


def outcome_definition_save(
    *,
    actor,
    code: str,
    label: str,
    window_start_day: int,
    window_end_day: int | None,
    note: str = "",
    based_on_version: int | None,
) -> OutcomeDefinition:
    """Return the new current definition of ``code``: a new row, version + 1; the stored versions stay as they are.

    ``based_on_version`` is the version the editor started from (None: a code with no stored
    version yet); ConcurrentUpdate when another version was stored meanwhile. Values equal to
    the current version's store nothing and return it. ValidationError names the field
    (window start < 0, end before start). Audited: the insert is attributed to ``actor``.
    """
    with transaction.atomic(), audit_context(actor, "outcome_definition_save"):
        # Lock the current version: two editors of one code store one version after the other.
        current = OutcomeDefinition.objects.select_for_update().filter(code=code).order_by("-version").first()
        current_version = current.version if current is not None else None
        if based_on_version != current_version:
            if based_on_version is None:
                raise ValidationError(
                    {"code": f"{code} already has a definition (version {current_version}): edit it."}
                )
            raise ConcurrentUpdate(
                f"The definition of {code} is at version {current_version or 'none'} now, not {based_on_version}: "
                "someone stored another version after you opened it."
            )
        definition = OutcomeDefinition(
            code=code,
            label=label,
            qualifies=code,
            window_start_day=window_start_day,
            window_end_day=window_end_day,
            note=note,
            version=(current_version or 0) + 1,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        definition.full_clean()
        if current is not None and all(
            getattr(current, f) == getattr(definition, f)
            for f in ("label", "window_start_day", "window_end_day", "note")
        ):
            return current  # nothing changed: no new version
        save_or_field_error(definition)
    return definition


def nightly_cutoff(today: date | None = None) -> date:
    """Return the nightly report's data cut-off: yesterday, the last complete day of data entry."""
    return (today or timezone.localdate()) - timedelta(days=1)
