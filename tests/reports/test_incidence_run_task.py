"""The Celery task with a real worker process, a real broker and the test database.

The worker is ``celery -A config worker`` in a subprocess, consuming a queue of its
own on Redis, with DATABASE_URL naming this test run's database. Killing tests use
the test-only pause (REPORTS_TEST_PAUSE_AT) to stop a first attempt at a known stage.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
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

from reports.choices import RunStatus, Trigger
from reports.models import IncidenceRun
from reports.services import incidence_run_start, incidence_runs_requeue_stale

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

BROKER_URL = os.environ.get("REPORTS_TEST_BROKER_URL", "redis://127.0.0.1:6379/5")
CUTOFF = dt.date(2024, 1, 1)
ROOT = Path(settings.BASE_DIR)


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

    def reset_caches():
        for attr in ("queues", "default_queue", "router"):
            app.amqp.__dict__.pop(attr, None)
        app.amqp._rtable = None
        app._pool = None  # kombu keeps one pool per broker URL; only drop the app's references
        app.amqp._producer_pool = None

    app.conf.update(CELERY_BROKER_URL=BROKER_URL, CELERY_TASK_ALWAYS_EAGER=False, CELERY_TASK_DEFAULT_QUEUE=name)
    reset_caches()
    yield name
    app.conf.update(saved)
    reset_caches()
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
                *(sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", "1", "-P", "prefork"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"),
                *("-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h"),
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


def test_a_worker_computes_a_queued_run_end_to_end(alice, two_clinics, queue, workers, tmp_path):
    worker = workers(queue, tmp_path / "worker.log")
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF, trigger=Trigger.API)  # autocommit: sent at once
    _wait(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 60, worker.log)
    run.refresh_from_db()
    assert (run.attempts, run.error) == (1, "")
    assert run.claimed_by.startswith(queue) and run.task_id  # computed by the worker, not in-process
    assert run.results.count() == run.row_count > 0
    total = run.results.get(outcome="any", stratum={"site": "ALL", "cell_type": "ALL"})
    assert (total.procedures, total.cases) == (2, 1)  # alice's clinic only


def test_a_worker_killed_while_writing_leaves_no_rows_and_the_redelivered_task_completes(
    alice, two_clinics, queue, workers, tmp_path
):
    paused = tmp_path / "paused"
    env = {
        "REPORTS_TEST_PAUSE_AT": "write",
        "REPORTS_TEST_PAUSE_SECONDS": "120",
        "REPORTS_TEST_PAUSE_FILE": str(paused),
    }
    worker = workers(queue, tmp_path / "worker.log", **env)
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF)
    _wait(paused.exists, 60, worker.log)
    # The rows are inserted but not committed: nobody can see half a result.
    assert (_status(run.pk), run.results.count()) == (RunStatus.RUNNING, 0)
    os.kill(int(paused.read_text()), signal.SIGKILL)  # the pool process running the task
    _wait(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 60, worker.log)
    run.refresh_from_db()
    assert run.attempts == 2  # the same task, redelivered after the worker was lost
    assert run.results.count() == run.row_count > 0
    assert "WorkerLostError" in worker.log.read_text() or "worker lost" in worker.log.read_text().lower()


def test_a_worker_killed_outright_leaves_a_retryable_run_that_a_new_worker_completes(
    alice, two_clinics, queue, workers, tmp_path
):
    paused = tmp_path / "paused"
    env = {
        "REPORTS_TEST_PAUSE_AT": "compute",
        "REPORTS_TEST_PAUSE_SECONDS": "120",
        "REPORTS_TEST_PAUSE_FILE": str(paused),
    }
    first = workers(queue, tmp_path / "first.log", **env)
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF)
    _wait(paused.exists, 60, first.log)
    first.kill()
    run.refresh_from_db()
    assert (run.status, run.results.count(), run.attempts) == (RunStatus.RUNNING, 0, 1)
    second = workers(queue, tmp_path / "second.log")
    # The sweep (beat, every 15 minutes) finds claims older than the time limit; here, any claim.
    assert incidence_runs_requeue_stale(older_than=timedelta(0)) == [run.pk]
    _wait(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 60, second.log)
    run.refresh_from_db()
    assert run.attempts == 2
    assert run.results.count() == run.row_count > 0
