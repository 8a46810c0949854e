"""Celery tasks: thin, taking plain values and calling signals.services."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError

from reports.services import nightly_cutoff
from signals import services
from signals.choices import NIGHTLY_RUN_TASK, REQUESTED_RUN_TASK, SignalTrigger

MAX_RETRIES = 3


def _execute(task, *, cutoff_on: dt.date, trigger: str, actor=None, retry_kwargs: dict) -> int | None:
    try:
        run = services.signal_run_execute(cutoff_on=cutoff_on, trigger=trigger, actor=actor)
    except (OperationalError, InterfaceError) as exc:
        # No rows were stored (the run's transaction rolled back; the run is failed if the database let
        # that be written): trying again, at the same cut-off, is safe.
        raise task.retry(exc=exc, args=(), kwargs=retry_kwargs, countdown=30 * 2**task.request.retries) from exc
    return run.pk if run is not None else None


@shared_task(bind=True, name=NIGHTLY_RUN_TASK, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def nightly_run_task(self, cutoff_on: str | None = None) -> int | None:
    """Return the id of the nightly signal run (cut-off yesterday, or ``cutoff_on``); None when it was stored already.

    Idempotent per cut-off: a second delivery (a redelivered message, a retry, a beat that fired
    twice) finds the stored run and stores and sends nothing. Acknowledged only when done, so a
    worker lost mid-run hands the message back and the run is tried again (its lost attempt is
    marked failed; after REPORTS_MAX_ATTEMPTS lost attempts the cut-off is left alone).
    """
    cutoff = dt.date.fromisoformat(cutoff_on) if cutoff_on else nightly_cutoff()
    return _execute(self, cutoff_on=cutoff, trigger=SignalTrigger.BEAT, retry_kwargs={"cutoff_on": cutoff.isoformat()})


# Not handed back when its worker is lost: whoever asked sees the failed run and may ask again.
@shared_task(bind=True, name=REQUESTED_RUN_TASK, acks_late=True, max_retries=MAX_RETRIES)
def requested_run_task(self, cutoff_on: str, trigger: str, actor_id: int | None = None) -> int | None:
    """Return the id of a signal run someone asked for (the admin's "Run now")."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
    if actor_id is not None and actor is None:
        return None  # the user who asked is gone: nobody to run it for
    kwargs = {"cutoff_on": cutoff_on, "trigger": trigger, "actor_id": actor_id}
    return _execute(self, cutoff_on=dt.date.fromisoformat(cutoff_on), trigger=trigger, actor=actor, retry_kwargs=kwargs)
