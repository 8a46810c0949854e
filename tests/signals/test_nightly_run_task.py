"""The nightly Celery task: scheduled, idempotent per cut-off, with a real worker on a real broker.

The worker is ``celery -A tests.signals.worker_app worker`` (the product's app plus a pause the tests
steer: see that module) in a subprocess with two pool processes (two deliveries can run at once),
consuming a private queue on the broker of CELERY_TEST_BROKER_URL, with DATABASE_URL naming this test
run's database and the file email backend writing each message it sends to a folder the test counts.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from config.celery_app import app
from reports.services import nightly_cutoff
from signals.choices import NIGHTLY_RUN_TASK
from signals.models import SignalRun
from signals.services import LOST_ERROR
from signals.tasks import nightly_run_task
from tests.signals.conftest import CUTOFF, UC_SIGNALS

BROKER_URL = os.environ.get("CELERY_TEST_BROKER_URL") or "redis://127.0.0.1:6379/13"
ROOT = Path(settings.BASE_DIR)


def test_the_beat_schedule_runs_the_registered_task_nightly():
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == NIGHTLY_RUN_TASK]
    assert NIGHTLY_RUN_TASK in app.tasks
    schedule = entry["schedule"]
    assert (schedule.hour, schedule.minute) == ({3}, {15})  # once a night, after the incidence report (02:30)


@pytest.mark.django_db
def test_in_process_the_task_screens_yesterday_and_a_second_call_stores_nothing(uc_registry, reviewers):
    first = nightly_run_task.delay().get()
    second = nightly_run_task.delay().get()
    run = SignalRun.objects.get()
    assert (first, second) == (run.pk, None)
    assert (run.trigger, run.cutoff_on) == ("beat", nightly_cutoff())


# ---------------------------------------------------------------------------------------------
# A real worker


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


def _use_broker(url: str) -> None:
    app.conf.update(CELERY_BROKER_URL=url)
    for attr in ("queues", "default_queue", "router"):
        app.amqp.__dict__.pop(attr, None)
    app.amqp._rtable = None
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def queue():
    """Return a private queue name, with this process sending tasks to it on the real broker."""
    name = f"signals-test-{uuid.uuid4().hex[:10]}"
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

    redis.Redis.from_url(BROKER_URL).delete(name, f"_kombu.binding.{name}")


def _wait(condition, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds}s\n{log.read_text()[-4000:] if log.exists() else ''}")


@pytest.fixture
def worker_env():
    """Return extra environment for the worker (a test sets it before asking for ``worker``)."""
    return {}


@pytest.fixture
def worker(queue, tmp_path, worker_env):
    """Return (log file, mail folder) of a worker with two pool processes consuming ``queue``."""
    log, mail_dir = tmp_path / "worker.log", tmp_path / "mail"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        **worker_env,
    }
    handle = open(log, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "tests.signals.worker_app", "worker", "-Q", queue),
            *("-c", "2", "-P", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat"),
            *("-l", "INFO", "-n", f"{queue}@%h"),
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait(lambda: " ready." in log.read_text() or proc.poll() is not None, 60, log)
        assert proc.poll() is None, log.read_text()
        yield log, mail_dir
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        handle.close()


def _results(log: Path) -> list[str]:
    return re.findall(rf"Task {re.escape(NIGHTLY_RUN_TASK)}\[[^\]]+\] succeeded in [^:]+: (\w+)", log.read_text())


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_duplicate_deliveries_of_the_nightly_task_store_one_run_and_send_one_email(uc_registry, reviewers, worker):
    log, mail_dir = worker
    task_id = str(uuid.uuid4())
    # Two deliveries at once (the two pool processes take one each), then the first one redelivered.
    for delivery in (task_id, str(uuid.uuid4())):
        app.send_task(NIGHTLY_RUN_TASK, kwargs={"cutoff_on": CUTOFF.isoformat()}, task_id=delivery)
    _wait(lambda: len(_results(log)) == 2, 90, log)
    app.send_task(NIGHTLY_RUN_TASK, kwargs={"cutoff_on": CUTOFF.isoformat()}, task_id=task_id)
    _wait(lambda: len(_results(log)) == 3, 90, log)

    run = SignalRun.objects.get()
    assert sorted(_results(log)) == sorted([str(run.pk), "None", "None"])
    assert (run.trigger, run.cutoff_on, run.status) == ("beat", CUTOFF, "succeeded")
    assert {row.key for row in run.rows.filter(is_new=True)} == UC_SIGNALS
    [message] = [path.read_text() for path in mail_dir.iterdir()]
    assert "4 new signals" in message and "To: root@registry.example, sue@registry.example" in message
    assert run.__class__.objects.get(pk=run.pk).notified_at is not None


@pytest.fixture
def paused(tmp_path, worker_env):
    """Return the marker file of a worker whose first run pauses once claimed (before computing)."""
    marker = tmp_path / "paused"
    worker_env.update(
        SIGNALS_TEST_PAUSE_AT="compute", SIGNALS_TEST_PAUSE_FILE=str(marker), SIGNALS_TEST_PAUSE_SECONDS="120"
    )
    return marker


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_leaves_no_rows_and_the_redelivered_task_stores_the_run(
    uc_registry, reviewers, paused, worker
):
    log, mail_dir = worker
    app.send_task(NIGHTLY_RUN_TASK, kwargs={"cutoff_on": CUTOFF.isoformat()})
    _wait(paused.exists, 60, log)
    pid, run_id = (int(part) for part in paused.read_text().split())
    lost = SignalRun.objects.get(pk=run_id)
    assert (lost.status, lost.rows.count()) == ("running", 0)  # claimed and committed, nothing computed
    os.kill(pid, signal.SIGKILL)  # the pool process running the task, as the out-of-memory killer does

    _wait(lambda: SignalRun.objects.filter(status="succeeded").exists(), 90, log)
    lost.refresh_from_db()
    assert lost.status == "failed" and lost.error == LOST_ERROR and lost.rows.count() == 0
    run = SignalRun.objects.get(status="succeeded")
    assert (run.trigger, run.cutoff_on, run.new_signal_count) == ("beat", CUTOFF, 4)
    _wait(lambda: mail_dir.exists() and len(list(mail_dir.iterdir())) == 1, 30, log)
    assert SignalRun.objects.count() == 2
