"""Writes of signal runs and reviews: execute a run (store it whole, flag what is new, email it), review a signal.

Life of a run, serialised with every other signal run by a PostgreSQL advisory lock (session level,
so a dead worker's connection releases it): the run is claimed, stored "running" and committed; one
transaction then computes the screen (reports.engine.signals.compute_signals, with the registry's
current outcome definitions, procedure unit) and the product-lot clusters (signals.clusters),
compares them with the previous succeeded run, stores the rows and alerts and flips the run to
succeeded. After that commit one email lists what is new to the reviewers
(signals.selectors.signal_recipients); nothing new, no email.

Idempotent and bounded: a nightly run is stored once per cut-off (a second delivery of the task
waits for the lock, finds the stored run and does nothing; a partial unique constraint backs this
up). A worker lost mid-run leaves its run "running" with no rows; the next run, holding the lock,
knows it is dead and marks it failed, and a nightly cut-off whose worker was lost
REPORTS_MAX_ATTEMPTS times is not tried again. Any other error fails the run with the reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from collections.abc import Iterator, Sequence
from functools import partial

from celery import current_app
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest, Now
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.audit import audit_context
from core.tasks import PUBLISH_RETRY_POLICY
from reports.choices import Unit, WindowsMode
from reports.engine.signals import ATTRIBUTES, COLUMNS, compute_signals
from reports.services import incidence_params
from signals import selectors
from signals.choices import (
    LOT_CLUSTER_DAYS,
    LOT_CLUSTER_MIN_EVENTS,
    REQUESTED_RUN_TASK,
    SignalRunStatus,
    SignalTrigger,
)
from signals.clusters import LotCluster, lot_clusters
from signals.display import outcome_label, signal_figures
from signals.models import LotClusterAlert, SignalReview, SignalRow, SignalRun

log = logging.getLogger(__name__)

# pg_advisory_lock key of signal runs: one run is computed and stored at a time.
RUN_LOCK_KEY = 0x5349474E414C  # "SIGNAL"
INSERT_BATCH = 1000
# The error of a run whose worker was lost mid-run (found "running" by the next run, under the lock).
LOST_ERROR = (
    "Stopped before it finished: the worker computing it was lost (its process killed, most often for running "
    "out of memory, or its machine or database connection gone)."
)

# Sent by signal_run_execute at each stage of a run ("compute": claimed, about to compute), with run_id.
# Monitoring may listen; the worker tests use it to stop a run at a known point.
signal_run_stage = Signal()
SUBJECT_PREFIX = "[AE registry]"


def _empty_to_none(value):
    """Return None for an empty cell (None, '' or NaN), else the value."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _signal_row(position: int, record: dict, *, previous_signals: set) -> SignalRow:
    if tuple(record) != COLUMNS:
        raise ValueError(f"compute_signals returned the columns {list(record)}, not {list(COLUMNS)}.")
    row = SignalRow(position=position, **{column: _empty_to_none(record[column]) for column in COLUMNS})
    row.signal, row.evans_signal = bool(record["signal"]), bool(record["evans_signal"])
    row.is_new = row.is_signal and row.key not in previous_signals
    return row


def _lot_alert(cluster: LotCluster, *, previous_alerts: set) -> LotClusterAlert:
    return LotClusterAlert(
        product_lot=cluster.product_lot,
        category=cluster.category,
        clinic_id=cluster.clinic_ids[0] if len(cluster.clinic_ids) == 1 else None,
        clinic_ids=list(cluster.clinic_ids),
        event_count=cluster.event_count,
        first_onset_on=cluster.first_onset_on,
        last_onset_on=cluster.last_onset_on,
        event_ids=list(cluster.event_ids),
        is_new=(cluster.product_lot, cluster.category) not in previous_alerts,
    )


@contextlib.contextmanager
def _run_lock() -> Iterator[None]:
    """Hold the signal runs' advisory lock (session level) while the block runs: one run at a time.

    Held by the database session, so a worker that dies releases it with its connection.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [RUN_LOCK_KEY])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [RUN_LOCK_KEY])
        except DatabaseError:
            log.warning("Could not release the signal-run lock; it goes with the connection.")


def _fail_lost_runs() -> None:
    """Mark failed the runs left "running" by a worker that died (called under the lock: none of them is live)."""
    SignalRun.objects.filter(status=SignalRunStatus.RUNNING).update(
        status=SignalRunStatus.FAILED, error=LOST_ERROR, finished_at=Greatest(Now(), F("started_at"))
    )


def signal_run_execute(
    *,
    cutoff_on: dt.date,
    trigger: str,
    actor=None,
    by: Sequence[str] = ATTRIBUTES,
) -> SignalRun | None:
    """Return the run at ``cutoff_on``, succeeded or failed with the reason; None when a nightly run needs no
    doing: it is stored already for that cut-off (a second delivery of the task: nothing stored, nothing sent),
    or its workers were lost REPORTS_MAX_ATTEMPTS times.

    ``actor`` None is the system (the schedule, the command line); a user must be a signal reviewer.
    Under the runs' lock: the run is claimed (stored "running", committed), then computed and stored
    with its rows and alerts in one transaction that flips it to succeeded; its email goes out after
    that commit. A worker lost mid-run leaves the run "running" with no rows; the next run marks it
    failed. Database connection errors are raised (the task retries them); any other error fails the run.
    """
    if actor is not None and not selectors.may_review_signals(actor):
        raise PermissionDenied("Only registry administrators and safety reviewers run the signal screen.")
    with _run_lock():
        _fail_lost_runs()
        if trigger == SignalTrigger.BEAT:
            if _nightly_run_stored(cutoff_on):
                log.info("The nightly signal run at cut-off %s is stored already: nothing to do.", cutoff_on)
                return None
            lost = SignalRun.objects.filter(cutoff_on=cutoff_on, trigger=trigger, error=LOST_ERROR).count()
            if lost >= settings.REPORTS_MAX_ATTEMPTS:
                log.error("The nightly signal run at cut-off %s lost its worker %s times: not again.", cutoff_on, lost)
                return None
        run = SignalRun(
            started_at=timezone.now(),
            cutoff_on=cutoff_on,
            status=SignalRunStatus.RUNNING,
            trigger=trigger,
            requested_by=actor,
            parameters={"by": list(by), "windows": WindowsMode.REGISTRY.value, "unit": Unit.PROCEDURE.value},
        )
        run.full_clean()
        run.save()
        try:
            with transaction.atomic():
                signal_run_stage.send(sender=SignalRun, stage="compute", run_id=run.pk)
                # The definitions the run used are frozen with it; its windows are theirs (one snapshot).
                params, definitions = incidence_params(
                    cutoff_on=cutoff_on, strata=(), windows_mode=WindowsMode.REGISTRY, unit=Unit.PROCEDURE
                )
                run.parameters["definitions"] = definitions
                _store(run, screen=compute_signals(params=params, by=by), clusters=lot_clusters(cutoff_on=cutoff_on))
                if run.new_signal_count or run.new_alert_count:
                    transaction.on_commit(partial(signal_run_notify, run_id=run.pk))
        except (OperationalError, InterfaceError) as exc:
            _fail(run, _error_text(exc))
            raise
        except Exception as exc:
            log.exception("Signal run %s at cut-off %s failed.", run.pk, cutoff_on)
            _fail(run, _error_text(exc))
        run.refresh_from_db()
        if run.status == SignalRunStatus.SUCCEEDED:
            try:
                signal_rows_prune()
            except DatabaseError:
                log.exception("Could not prune the rows of old signal runs; the next run tries again.")
        return run


def _nightly_run_stored(cutoff_on: dt.date) -> bool:
    return SignalRun.objects.filter(
        cutoff_on=cutoff_on, trigger=SignalTrigger.BEAT, status=SignalRunStatus.SUCCEEDED
    ).exists()


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _store(run: SignalRun, *, screen: list[dict], clusters: list[LotCluster]) -> None:
    """Store the rows and alerts of ``run`` and flip it to succeeded (inside the caller's transaction and lock)."""
    previous = selectors.previous_succeeded_run()
    previous_signals, previous_alerts = selectors.signal_keys(previous), selectors.alert_keys(previous)
    run.signal_count = run.new_signal_count = 0
    # A batch of model instances at a time: a screen by product lot can have hundreds of thousands of rows.
    for start in range(0, len(screen), INSERT_BATCH):
        rows = [
            _signal_row(position, screen[position], previous_signals=previous_signals)
            for position in range(start, min(start + INSERT_BATCH, len(screen)))
        ]
        for row in rows:
            row.run = run
        SignalRow.objects.bulk_create(rows)
        run.signal_count += sum(row.is_signal for row in rows)
        run.new_signal_count += sum(row.is_new for row in rows)
    alerts = [_lot_alert(cluster, previous_alerts=previous_alerts) for cluster in clusters]
    for alert in alerts:
        alert.run = run
    LotClusterAlert.objects.bulk_create(alerts, batch_size=INSERT_BATCH)
    run.parameters["previous_run"] = previous.pk if previous else None
    run.alert_count = len(alerts)
    run.new_alert_count = sum(alert.is_new for alert in alerts)
    run.status = SignalRunStatus.SUCCEEDED
    run.finished_at = timezone.now()
    run.full_clean()
    fields = ["parameters", "signal_count", "new_signal_count", "alert_count", "new_alert_count", "status"]
    if not SignalRun.objects.filter(pk=run.pk, status=SignalRunStatus.RUNNING).update(
        **{name: getattr(run, name) for name in fields}, finished_at=run.finished_at
    ):
        raise RuntimeError(f"Signal run {run.pk} is no longer running: another process took it over.")


def signal_rows_prune(*, now=None) -> int:
    """Return how many screen rows that are no signal were deleted from runs older than SIGNALS_KEEP_ALL_ROWS_DAYS.

    A run keeps every row of its screen that long; after that it keeps its signals (either kind, the
    rows reviews are made on), its counts and its lot alerts, so the table grows by the signals only.
    """
    before = (now or timezone.now()) - dt.timedelta(days=settings.SIGNALS_KEEP_ALL_ROWS_DAYS)
    rows, runs, reviews = (m._meta.db_table for m in (SignalRow, SignalRun, SignalReview))
    # One statement, no rows fetched (the ORM's delete() would load every row to check its reviews).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {rows} r USING {runs} s
             WHERE r.run_id = s.id AND s.finished_at < %s AND NOT r.signal AND NOT r.evans_signal
               AND NOT EXISTS (SELECT 1 FROM {reviews} v WHERE v.row_id = r.id)
            """,  # noqa: S608 - table names from the models; the date is bound
            [before],
        )
        return cursor.rowcount


def _fail(run: SignalRun, error: str) -> None:
    """Mark ``run`` failed with ``error`` if it is still running (logged, never raised, if that cannot be stored)."""
    try:
        SignalRun.objects.filter(pk=run.pk, status=SignalRunStatus.RUNNING).update(
            status=SignalRunStatus.FAILED, error=error or "Failed.", finished_at=Greatest(Now(), F("started_at"))
        )
    except DatabaseError:
        log.exception("Could not record the failure of signal run %s.", run.pk)


# ---------------------------------------------------------------------------------------------
# The email of what is new


def signals_page_url(run: SignalRun) -> str:
    """Return the absolute address of the Signals page showing ``run`` (SITE_URL + the admin's path)."""
    return settings.SITE_URL.rstrip("/") + reverse("admin:signals_signalrun_changelist") + f"?run={run.pk}"


def signal_run_email(run: SignalRun) -> tuple[str, str]:
    """Return the subject and plain-text body listing the new signals and new lot-cluster alerts of ``run``.

    No patient identifier: attribute, value, outcome and counts, lot codes, and a link to the admin page.
    """
    new_signals = list(run.rows.filter(is_new=True).order_by("attribute", "value", "outcome"))
    new_alerts = list(run.lot_alerts.filter(is_new=True).select_related("clinic").order_by("product_lot", "category"))
    signals = [{"row": row, **signal_figures(row)} for row in new_signals]
    alerts = [
        {
            "alert": alert,
            "category": outcome_label(alert.category),
            "clinics": len(alert.clinic_ids),
        }
        for alert in new_alerts
    ]
    subject = (
        f"{SUBJECT_PREFIX} Signal run at cut-off {run.cutoff_on:%Y-%m-%d}: "
        f"{len(signals)} new signal{'s' if len(signals) != 1 else ''}, "
        f"{len(alerts)} new lot-cluster alert{'s' if len(alerts) != 1 else ''}"
    )
    body = render_to_string(
        "signals/email/new_signals.txt",
        {
            "run": run,
            "signals": signals,
            "alerts": alerts,
            "url": signals_page_url(run),
            "min_events": LOT_CLUSTER_MIN_EVENTS,
            "days": LOT_CLUSTER_DAYS,
        },
    )
    return subject, body


def signal_run_notify(*, run_id: int) -> bool:
    """Return True once the email of what run ``run_id`` found new is handed to the mail server.

    False, sending nothing, when nothing is new, nobody is there to tell, or it was sent already:
    the send is claimed with a conditional UPDATE of ``notified_at``, so it happens once. A mail
    server that refuses is logged and recorded on the run (``notify_error``), never raised.
    """
    run = SignalRun.objects.get(pk=run_id)
    if run.status != SignalRunStatus.SUCCEEDED or not (run.new_signal_count or run.new_alert_count):
        return False
    recipients = selectors.signal_recipients()
    if not recipients:
        log.warning("Signal run %s found something new, but no reviewer has an email address.", run_id)
        SignalRun.objects.filter(pk=run_id).update(notify_error="No registry administrator has an email address.")
        return False
    if not SignalRun.objects.filter(pk=run_id, notified_at__isnull=True).update(notified_at=timezone.now()):
        return False
    subject, body = signal_run_email(run)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception as exc:
        log.exception("The email of signal run %s was not sent.", run_id)
        SignalRun.objects.filter(pk=run_id).update(notified_at=None, notify_error=_error_text(exc))
        return False
    SignalRun.objects.filter(pk=run_id).update(notify_error="")
    return True


# ---------------------------------------------------------------------------------------------
# Runs asked for, and reviews


def signal_run_request(*, actor, cutoff_on: dt.date) -> bool:
    """Return True once a run at ``cutoff_on`` for ``actor`` (a signal reviewer) is queued; False (logged) when
    the broker cannot be reached. Nothing is written before the run starts, so there is no commit to wait for."""
    if not selectors.may_review_signals(actor):
        raise PermissionDenied("Only registry administrators and safety reviewers run the signal screen.")
    # By name from the app's registry (SignalsConfig.ready loads signals.tasks): tasks call services.
    task = current_app.tasks[REQUESTED_RUN_TASK]
    kwargs = {"cutoff_on": cutoff_on.isoformat(), "trigger": SignalTrigger.ADMIN.value, "actor_id": actor.pk}
    try:
        task.apply_async(kwargs=kwargs, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:
        if task.app.conf.task_always_eager:
            raise  # no broker involved: this is the task's own error
        log.warning("Signal run not queued (%s: %s).", type(exc).__name__, exc)
        return False
    return True


def signal_review_create(*, actor, row: SignalRow, comment: str) -> SignalReview:
    """Return a new review of the signal of ``row`` by ``actor``, with the required comment (audited).

    Refused (PermissionDenied) unless ``actor`` may review signals; a blank or unsafe comment is a
    ValidationError on "comment". Reviews are never changed or deleted (the database refuses it).
    """
    if not selectors.may_review_signals(actor):
        raise PermissionDenied("Only registry administrators and safety reviewers review signals.")
    if not row.is_signal:
        raise ValidationError({"comment": "Only a signal can be marked reviewed."})
    review = SignalReview(
        attribute=row.attribute,
        value=row.value,
        outcome=row.outcome,
        row=row,
        reviewed_by=actor,
        comment=(comment or "").strip(),
    )
    review.full_clean()
    with transaction.atomic(), audit_context(actor, "signal_review_create"):
        review.save()
    return review
