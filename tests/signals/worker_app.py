"""The Celery app for the signal worker tests: the product's app, plus a pause the tests steer from the environment.

``celery -A tests.signals.worker_app worker`` runs the registry's own app (config.celery_app); each
pool process also listens to signals.services.signal_run_stage and, when SIGNALS_TEST_PAUSE_AT names
the stage and the file SIGNALS_TEST_PAUSE_FILE does not exist yet, writes its pid there and sleeps
SIGNALS_TEST_PAUSE_SECONDS: the first run pauses, so a test can kill its worker at a known point,
and the redelivered task goes on. None of this is in the product: it only sends the signal.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery.signals import worker_process_init

from config.celery_app import app

__all__ = ["app"]


def _pause(sender, stage: str, run_id: int, **kwargs) -> None:
    marker = os.environ.get("SIGNALS_TEST_PAUSE_FILE")
    if os.environ.get("SIGNALS_TEST_PAUSE_AT") != stage or not marker or Path(marker).exists():
        return
    Path(marker).write_text(f"{os.getpid()} {run_id}")
    time.sleep(float(os.environ.get("SIGNALS_TEST_PAUSE_SECONDS", "60")))


@worker_process_init.connect
def _listen(**kwargs) -> None:
    from signals.services import signal_run_stage

    signal_run_stage.connect(_pause, weak=False)
