"""The Celery task with a real worker process, a real broker and the test database.

The worker is ``celery -A tests.reports.worker_app worker`` (the product's app plus a pause
the tests steer: see that module) in a subprocess, consuming a queue of its own on the
broker of CELERY_TEST_BROKER_URL, with DATABASE_URL naming this test run's database.
Killing tests pause an attempt at a known stage and kill the pool process or the whole
worker there; the broker-down tests point the app at a closed port (nothing listens there).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from reports.choices import RunStatus, Trigger
from reports.models import IncidenceRun
from reports.services import incidence_run_start, incidence_runs_requeue_stale

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

BROKER_URL = (
    os.environ.get("CELERY_TEST_BROKER_URL") or os.environ.get("REPORTS_TEST_BROKER_URL") or "redis://127.0.0.1:6379/5"
)
CUTOFF = dt.date(2024, 1, 1)
ROOT = Path(settings.BASE_DIR)
RUNS_URL = "/api/v1/reports/incidence-runs/"


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"])
    host = db["HOST"] or ""
    if host.startswith("/"):  # a socket directory (embedded PostgreSQL)
        return f"postgres://{auth}@/{quote(db['NAME'])}?host={quote(host)}"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{quote(db['NAME'])}"


def _closed_port_url() -> str:
    """Return a broker URL on a local port nothing listens on (bound and released just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def _use_broker(url: str) -> None:
    """Point this process's Celery app (the web side: publishing) at ``url``."""
    from config.celery_app import app

    app.conf.update(CELERY_BROKER_URL=url)
    for attr in ("queues", "default_queue", "router"):
        app.amqp.__dict__.pop(attr, None)
    app.amqp._rtable = None
    app._pool = None  # kombu keeps one pool per broker URL; only drop the app's references
    app.amqp._producer_pool = None


@pytest.fixture
def queue():
    """Return a private queue name, with this process sending tasks to it on the real broker."""
    from config.celery_app import app

    name = f"reports-test-{uuid.uuid4().hex[:10]}"
    # The app reads Django settings under the CELERY namespace: overrides use those names.
    saved = {
        "CELERY_BROKER_URL": app.conf.broker_url,
        "CELERY_TASK_ALWAYS_EAGER": app.conf.task_always_eager,
        "CELERY_TASK_DEFAULT_QUEUE": app.conf.task_default_queue,
    }
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=False, CELERY_TASK_DEFAULT_QUEUE=name)
    _use_broker(BROKER_URL)
    yield name
    app.conf.update(saved)
    _use_broker(saved["CELERY_BROKER_URL"])
    import redis

    redis.Redis.from_url(BROKER_URL).delete(name)


class Worker:
    """A celery worker subprocess (its own process group) consuming one queue."""

    def __init__(self, queue: str, log: Path, **env):
        full_env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env,
        }
        self.log = log
        self.handle = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "tests.reports.worker_app", "worker", "-Q", queue),
                *("-c", "1", "-P", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat"),
                *("-l", "INFO", "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h"),
            ],
            cwd=ROOT,
            env=full_env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait(lambda: " ready." in self.log.read_text() or self.proc.poll() is not None, 60, self.log)
        assert self.proc.poll() is None, self.log.read_text()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: nothing gets to clean up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.handle.close()


@pytest.fixture
def workers():
    started: list[Worker] = []

    def start(queue: str, log: Path, **env) -> Worker:
        worker = Worker(queue, log, **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _wait(condition, seconds: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    detail = log.read_text()[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {seconds}s\n{detail}")


def _status(run_id: int) -> str:
    return IncidenceRun.objects.values_list("status", flat=True).get(pk=run_id)


def _paused(marker: Path, attempt: int = 1) -> bool:
    """Return True once the pool process running ``attempt`` has written its pid to ``marker``."""
    return marker.exists() and marker.read_text().split()[1:] == [str(attempt)]


def _pause_env(marker: Path, stage: str, **extra) -> dict:
    return {
        "REPORTS_TEST_PAUSE_AT": stage,
        "REPORTS_TEST_PAUSE_SECONDS": "120",
        "REPORTS_TEST_PAUSE_FILE": str(marker),
        **extra,
    }


def test_a_worker_computes_a_queued_run_end_to_end(alice, two_clinics, queue, workers, tmp_path):
    worker = workers(queue, tmp_path / "worker.log")
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF, trigger=Trigger.API)  # autocommit: sent at once
    _wait(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 60, worker.log)
    run.refresh_from_db()
    assert (run.attempts, run.error) == (1, "")
    assert run.claimed_by.startswith(queue) and run.task_id  # computed by the worker, not in-process
    assert run.published_at is not None and run.heartbeat_at is not None
    assert run.results.count() == run.row_count == run.estimated_rows > 0
    total = run.results.get(outcome="any", stratum={"site": "ALL", "cell_type": "ALL"})
    assert (total.procedures, total.cases) == (2, 1)  # alice's clinic only


def test_a_worker_killed_while_writing_leaves_no_rows_and_the_redelivered_task_completes(
    alice, two_clinics, queue, workers, tmp_path
):
    paused = tmp_path / "paused"
    worker = workers(queue, tmp_path / "worker.log", **_pause_env(paused, "write"))
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF)
    _wait(lambda: _paused(paused), 60, worker.log)
    # The rows are inserted but not committed: nobody can see half a result.
    assert (_status(run.pk), run.results.count()) == (RunStatus.RUNNING, 0)
    os.kill(int(paused.read_text().split()[0]), signal.SIGKILL)  # the pool process running the task
    _wait(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 60, worker.log)
    run.refresh_from_db()
    assert (run.attempts, run.error) == (2, "")  # the same task, redelivered after the worker was lost
    assert run.results.count() == run.row_count > 0
    assert "WorkerLostError" in worker.log.read_text() or "worker lost" in worker.log.read_text().lower()


def test_a_worker_killed_outright_is_requeued_by_the_sweep_once_its_heartbeat_is_stale(
    alice, two_clinics, queue, workers, tmp_path
):
    paused = tmp_path / "paused"
    beats = {"REPORTS_HEARTBEAT_SECONDS": "1", "REPORTS_HEARTBEAT_STALE_SECONDS": "3"}
    first = workers(queue, tmp_path / "first.log", **_pause_env(paused, "compute"), **beats)
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF)
    _wait(lambda: _paused(paused), 60, first.log)
    claimed_at = IncidenceRun.objects.get(pk=run.pk).claimed_at
    # While the computation is held up, the heartbeat thread keeps stamping the run.
    _wait(lambda: IncidenceRun.objects.get(pk=run.pk).heartbeat_at > claimed_at + timedelta(seconds=1), 10)
    first.kill()  # main process and pool process: no one is left to hand the message back
    assert incidence_runs_requeue_stale(stale_after=timedelta(seconds=3)).requeued == []  # still fresh
    run.refresh_from_db()
    assert (run.status, run.results.count(), run.attempts) == (RunStatus.RUNNING, 0, 1)
    second = workers(queue, tmp_path / "second.log")
    time.sleep(3.5)
    sweep = incidence_runs_requeue_stale(stale_after=timedelta(seconds=3))
    assert (sweep.requeued, sweep.failed) == ([run.pk], [])
    _wait(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 60, second.log)
    run.refresh_from_db()
    assert run.attempts == 2 and run.claimed_by.startswith(queue)
    assert run.results.count() == run.row_count > 0


def test_a_run_whose_worker_is_killed_on_every_attempt_ends_failed_with_the_reason(
    alice, two_clinics, queue, workers, tmp_path
):
    paused = tmp_path / "paused"
    env = _pause_env(paused, "compute", REPORTS_TEST_PAUSE_ATTEMPTS="all", REPORTS_MAX_ATTEMPTS="2")
    worker = workers(queue, tmp_path / "worker.log", **env)
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF)
    for attempt in (1, 2):
        _wait(lambda attempt=attempt: _paused(paused, attempt), 60, worker.log)
        # What the kernel's out-of-memory killer does to a pool process.
        os.kill(int(paused.read_text().split()[0]), signal.SIGKILL)
    _wait(lambda: _status(run.pk) == RunStatus.FAILED, 60, worker.log)
    run.refresh_from_db()
    assert run.attempts == 2 and run.results.count() == 0
    assert "Stopped after 2 attempts" in run.error and "out of memory" in run.error
    assert "signal 9 (SIGKILL)" in run.error  # the reason the worker's main process saw
    assert worker.proc.poll() is None  # the worker itself lives on


def test_a_run_past_the_soft_time_limit_ends_failed_with_the_reason(alice, two_clinics, queue, workers, tmp_path):
    paused = tmp_path / "paused"
    env = _pause_env(paused, "compute", CELERY_TASK_SOFT_TIME_LIMIT="2", CELERY_TASK_TIME_LIMIT="60")
    worker = workers(queue, tmp_path / "worker.log", **env)
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF)
    _wait(lambda: _status(run.pk) == RunStatus.FAILED, 60, worker.log)
    run.refresh_from_db()
    assert (run.attempts, run.results.count()) == (1, 0)
    assert "soft time limit of 2 s" in run.error


def test_a_run_killed_at_the_hard_time_limit_ends_failed_at_once(alice, two_clinics, queue, workers, tmp_path):
    paused = tmp_path / "paused"
    # No soft limit (0), or it would stop the run first.
    env = _pause_env(paused, "compute", CELERY_TASK_SOFT_TIME_LIMIT="0", CELERY_TASK_TIME_LIMIT="3")
    worker = workers(queue, tmp_path / "worker.log", **env)
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF)
    _wait(lambda: _status(run.pk) == RunStatus.FAILED, 60, worker.log)
    run.refresh_from_db()
    assert (run.attempts, run.results.count()) == (1, 0)
    assert "hard time limit of 3 s" in run.error


def test_with_the_broker_down_a_post_answers_202_and_the_sweep_publishes_the_run_when_it_is_back(
    alice, two_clinics, queue, workers, tmp_path
):
    client = APIClient()
    client.force_login(alice)
    _use_broker(_closed_port_url())
    started = time.monotonic()
    response = client.post(RUNS_URL, {"cutoff_on": "2024-01-01"}, format="json", HTTP_IDEMPOTENCY_KEY="down-1")
    answered_in = time.monotonic() - started
    assert response.status_code == 202, response.content
    assert answered_in < 10
    run = IncidenceRun.objects.get(pk=response.json()["id"])
    assert (run.status, run.published_at) == (RunStatus.QUEUED, None)
    # The client retries, not knowing whether the first try arrived: nothing new is queued.
    again = client.post(RUNS_URL, {"cutoff_on": "2024-01-01"}, format="json", HTTP_IDEMPOTENCY_KEY="down-1")
    assert (again.status_code, again.json()["id"], again["Idempotent-Replayed"]) == (202, run.pk, "true")
    assert IncidenceRun.objects.count() == 1
    # A sweep while the broker is still down publishes nothing and breaks nothing.
    assert incidence_runs_requeue_stale(publish_grace=timedelta(0)).published == []
    run.refresh_from_db()
    assert (run.status, run.published_at) == (RunStatus.QUEUED, None)

    _use_broker(BROKER_URL)  # the broker is back
    worker = workers(queue, tmp_path / "worker.log")
    # What beat's minutely sweep does (the run is older than the grace period by then).
    assert incidence_runs_requeue_stale(publish_grace=timedelta(0)).published == [run.pk]
    _wait(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 60, worker.log)
    run.refresh_from_db()
    assert run.published_at is not None and run.attempts == 1
    assert run.results.count() == run.row_count > 0


def test_a_run_started_while_the_broker_is_down_is_stored_queued_and_unpublished(alice, two_clinics, queue):
    _use_broker(_closed_port_url())
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF)  # autocommit: the publish fails at once
    run.refresh_from_db()
    assert (run.status, run.published_at, run.attempts) == (RunStatus.QUEUED, None, 0)
    _use_broker(BROKER_URL)
    # Within the grace period the sweep leaves it to the request that is publishing it.
    assert incidence_runs_requeue_stale().published == []
    run.refresh_from_db()
    assert run.published_at is None
