"""The Celery app for the worker tests: the product's app, plus a pause the tests steer from the environment.

``celery -A tests.reports.worker_app worker`` runs the registry's own app (config.celery_app);
each pool process also listens to reports.services.incidence_run_stage and, when
REPORTS_TEST_PAUSE_AT names the stage, writes its pid to REPORTS_TEST_PAUSE_FILE and sleeps
REPORTS_TEST_PAUSE_SECONDS, so a test can kill the worker at a known point of an attempt.
REPORTS_TEST_PAUSE_ATTEMPTS="all" pauses every attempt (default: the first only). None of
this is in the product: it only sends the signal.
"""

from __future__ import annotations

import os
import time

from celery.signals import worker_process_init

from config.celery_app import app

__all__ = ["app"]


def _pause(sender, stage: str, run_id: int, attempt: int, **kwargs) -> None:
    if os.environ.get("REPORTS_TEST_PAUSE_AT") != stage:
        return
    if os.environ.get("REPORTS_TEST_PAUSE_ATTEMPTS", "1") != "all" and attempt != 1:
        return
    marker = os.environ.get("REPORTS_TEST_PAUSE_FILE")
    if marker:
        with open(marker, "w") as fh:
            fh.write(f"{os.getpid()} {attempt}")
    time.sleep(float(os.environ.get("REPORTS_TEST_PAUSE_SECONDS", "60")))


@worker_process_init.connect
def _listen(**kwargs) -> None:
    from reports.services import incidence_run_stage

    incidence_run_stage.connect(_pause, weak=False)
