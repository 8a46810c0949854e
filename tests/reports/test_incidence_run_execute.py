"""services.incidence_run_execute and the sweep: claim once, store with the status flip, never change a
snapshot; stale heartbeats requeue, attempts are capped, failures carry their reason."""

from __future__ import annotations

import datetime as dt
import threading
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from reports.choices import RunStatus, Trigger
from reports.engine import compute_incidence
from reports.exports.incidence_csv import result_record
from reports.models import IncidenceResult, IncidenceRun
from reports.services import (
    Sweep,
    incidence_run_execute,
    incidence_run_note_lost,
    incidence_run_stage,
    incidence_run_start,
    incidence_runs_requeue_stale,
    run_params,
)
from reports.tasks import memory_ceiling
from tests.reports.conftest import add_event

CUTOFF = dt.date(2024, 1, 1)


@pytest.fixture
def queued(alice, two_clinics):
    return incidence_run_start(actor=alice, cutoff_on=CUTOFF, trigger=Trigger.ADMIN)


def test_it_stores_exactly_what_the_engine_computes(queued):
    run = incidence_run_execute(run_id=queued.pk, task_id="t-1")
    assert (run.status, run.attempts, run.task_id, run.error) == (RunStatus.SUCCEEDED, 1, "t-1", "")
    assert run.finished_at is not None and run.row_count == run.results.count() == run.estimated_rows > 0
    assert run.heartbeat_at is not None
    expected = [result_record(row) for row in compute_incidence(params=run_params(run))]
    stored = list(run.results.order_by("position").values(*expected[0].keys()))
    assert stored == expected


def test_a_clinicians_stored_run_has_no_other_clinics_procedures(queued):
    run = incidence_run_execute(run_id=queued.pk)
    total = run.results.get(outcome="any", stratum={"site": "ALL", "cell_type": "ALL"})
    assert (total.procedures, total.cases) == (2, 1)
    assert not run.results.filter(outcome="neoplasm", cases__gt=0).exists()  # clinic B's neoplasm


def test_a_finished_run_is_not_claimed_again(queued):
    incidence_run_execute(run_id=queued.pk, task_id="t-1")
    assert incidence_run_execute(run_id=queued.pk, task_id="t-1") is None
    assert incidence_run_execute(run_id=queued.pk, task_id="t-2") is None
    queued.refresh_from_db()
    assert (queued.attempts, queued.results.count()) == (1, queued.row_count)


def test_a_run_held_by_another_task_is_left_alone(queued):
    IncidenceRun.objects.filter(pk=queued.pk).update(
        status=RunStatus.RUNNING, task_id="other", claimed_at=timezone.now(), attempts=1
    )
    assert incidence_run_execute(run_id=queued.pk, task_id="mine") is None
    queued.refresh_from_db()
    assert (queued.status, queued.task_id, queued.results.count()) == (RunStatus.RUNNING, "other", 0)


def test_the_same_task_reclaims_its_run_after_its_worker_died(queued):
    IncidenceRun.objects.filter(pk=queued.pk).update(
        status=RunStatus.RUNNING, task_id="t-1", claimed_at=timezone.now(), attempts=1
    )
    run = incidence_run_execute(run_id=queued.pk, task_id="t-1")
    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2)


def test_a_run_whose_heartbeat_is_stale_is_requeued_and_then_completed(queued, django_capture_on_commit_callbacks):
    long_ago = timezone.now() - timedelta(minutes=3)
    IncidenceRun.objects.filter(pk=queued.pk).update(
        status=RunStatus.RUNNING, task_id="dead", claimed_at=long_ago, heartbeat_at=long_ago, attempts=1
    )
    fresh = incidence_run_start(actor=None, cutoff_on=CUTOFF)  # queued just now: left to its publisher
    with django_capture_on_commit_callbacks(execute=True):
        sweep = incidence_runs_requeue_stale()
    assert (sweep.requeued, sweep.failed, sweep.published) == ([queued.pk], [], [])
    queued.refresh_from_db()
    fresh.refresh_from_db()
    assert (queued.status, queued.attempts, fresh.status) == (RunStatus.SUCCEEDED, 2, RunStatus.QUEUED)


def test_a_running_run_with_a_fresh_heartbeat_is_left_alone(queued):
    started = timezone.now() - timedelta(hours=2)  # a long run, still alive
    IncidenceRun.objects.filter(pk=queued.pk).update(
        status=RunStatus.RUNNING, task_id="alive", claimed_at=started, heartbeat_at=timezone.now(), attempts=1
    )
    assert incidence_runs_requeue_stale() == Sweep()
    queued.refresh_from_db()
    assert (queued.status, queued.task_id, queued.attempts) == (RunStatus.RUNNING, "alive", 1)


def test_a_stale_run_out_of_attempts_is_failed_by_the_sweep_with_the_reason(queued):
    long_ago = timezone.now() - timedelta(minutes=3)
    IncidenceRun.objects.filter(pk=queued.pk).update(
        status=RunStatus.RUNNING, task_id="dead", claimed_at=long_ago, heartbeat_at=long_ago, attempts=3
    )
    assert incidence_runs_requeue_stale() == Sweep(failed=[queued.pk])
    queued.refresh_from_db()
    assert (queued.status, queued.results.count()) == (RunStatus.FAILED, 0)
    assert queued.error.startswith("Stopped after 3 attempts") and f"{queued.estimated_rows:,} rows" in queued.error


def test_a_redelivered_task_out_of_attempts_fails_the_run_instead_of_computing_it(queued):
    IncidenceRun.objects.filter(pk=queued.pk).update(
        status=RunStatus.RUNNING,
        task_id="t-1",
        claimed_at=timezone.now(),
        attempts=3,
        error="Attempt 3 lost: Worker exited prematurely: signal 9 (SIGKILL) Job: 7.",
    )
    assert incidence_run_execute(run_id=queued.pk, task_id="t-1") is None
    queued.refresh_from_db()
    assert (queued.status, queued.attempts, queued.results.count()) == (RunStatus.FAILED, 3, 0)
    assert "Stopped after 3 attempts" in queued.error and "signal 9 (SIGKILL)" in queued.error


def test_the_main_process_notes_why_an_attempt_was_lost_and_success_clears_it(queued):
    IncidenceRun.objects.filter(pk=queued.pk).update(
        status=RunStatus.RUNNING, task_id="t-1", claimed_at=timezone.now(), attempts=1
    )
    assert incidence_run_note_lost(run_id=queued.pk, task_id="t-1", reason="signal 9 (SIGKILL)")
    assert not incidence_run_note_lost(run_id=queued.pk, task_id="someone-else", reason="x")
    queued.refresh_from_db()
    assert (queued.status, queued.error) == (RunStatus.RUNNING, "Attempt 1 lost: signal 9 (SIGKILL)")
    run = incidence_run_execute(run_id=queued.pk, task_id="t-1")
    assert (run.status, run.attempts, run.error) == (RunStatus.SUCCEEDED, 2, "")


def test_a_queued_run_the_broker_never_got_is_published_by_the_sweep(queued, django_capture_on_commit_callbacks):
    assert incidence_runs_requeue_stale().published == []  # just queued: its request is publishing it
    assert incidence_runs_requeue_stale(publish_grace=timedelta(0)).published == [queued.pk]  # eager: computed
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == (RunStatus.SUCCEEDED, 1)


def test_a_run_that_grew_past_the_limit_since_it_was_accepted_fails_with_the_reason(queued, settings):
    settings.REPORTS_MAX_RESULT_ROWS = queued.estimated_rows - 1
    run = incidence_run_execute(run_id=queued.pk, task_id="t-1")
    assert (run.status, run.results.count()) == (RunStatus.FAILED, 0)
    assert f"would have {queued.estimated_rows:,} rows" in run.error
    assert f"limit of {queued.estimated_rows - 1:,}" in run.error


def test_a_run_that_exhausts_its_memory_ceiling_fails_with_the_reason_and_no_rows(queued):
    def runaway(**kwargs):
        # Stands in for a computation that keeps growing: real allocations, past a real ceiling.
        hoard = []
        while True:
            hoard.append(bytearray(16 * 1024 * 1024))

    incidence_run_stage.connect(runaway, weak=False)
    try:
        with memory_ceiling(64):
            run = incidence_run_execute(run_id=queued.pk, task_id="t-1")
    finally:
        incidence_run_stage.disconnect(runaway)
    assert (run.status, run.results.count(), run.attempts) == (RunStatus.FAILED, 0, 1)
    assert run.error.startswith("MemoryError: the computation needed more memory than a run may use")
    assert len(bytearray(256 * 1024 * 1024)) > 0  # and the ceiling is lifted afterwards


@pytest.mark.django_db(transaction=True)
def test_an_attempt_whose_run_was_requeued_meanwhile_stores_nothing(alice, two_clinics):
    # Committed at once and not published (this test is the worker).
    queued = IncidenceRun.objects.create(strata=["site"], outcomes=["any"], cutoff_on=CUTOFF, trigger="api")

    def sweep_from_elsewhere():
        # What the sweep of another process writes when it finds the heartbeat stale.
        try:
            IncidenceRun.objects.filter(pk=queued.pk).update(
                status=RunStatus.QUEUED, task_id="", claim_token=None, claimed_at=None, claimed_by="", heartbeat_at=None
            )
        finally:
            connection.close()

    def swept_meanwhile(stage, **kwargs):
        if stage == "write":  # every row written, not yet committed
            other = threading.Thread(target=sweep_from_elsewhere)
            other.start()
            other.join(30)

    incidence_run_stage.connect(swept_meanwhile, weak=False)
    try:
        assert incidence_run_execute(run_id=queued.pk, task_id="t-1") is None
    finally:
        incidence_run_stage.disconnect(swept_meanwhile)
    queued.refresh_from_db()
    assert (queued.status, queued.task_id, queued.attempts, queued.results.count()) == (RunStatus.QUEUED, "", 1, 0)


def test_a_failure_is_recorded_with_its_error_and_no_rows(alice, two_clinics):
    broken = IncidenceRun.objects.create(strata=["shoe_size"], outcomes=["any"], cutoff_on=CUTOFF, trigger="api")
    run = incidence_run_execute(run_id=broken.pk, task_id="t-1")
    assert run.status == RunStatus.FAILED
    assert "shoe_size" in run.error
    assert run.results.count() == 0


def test_later_data_entry_does_not_change_a_succeeded_run(queued, two_clinics):
    run = incidence_run_execute(run_id=queued.pk)
    before = list(run.results.order_by("position").values())
    add_event(two_clinics["a2"], 2)
    run.refresh_from_db()
    assert list(run.results.order_by("position").values()) == before


def _refused(sql: str, params: list) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_result_rows_of_a_succeeded_run_cannot_be_changed_added_or_deleted(queued):
    run = incidence_run_execute(run_id=queued.pk)
    row = run.results.first()
    _refused("UPDATE reports_incidenceresult SET cases = cases + 1 WHERE id = %s", [row.pk])
    _refused("DELETE FROM reports_incidenceresult WHERE id = %s", [row.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        IncidenceResult.objects.create(
            run=run, position=10_000, stratum={}, outcome="any", procedures=1, cases=0, person_days=0, person_years=0
        )
    row.refresh_from_db()
    assert run.results.count() == run.row_count


def test_a_succeeded_run_cannot_be_edited_or_deleted(queued):
    run = incidence_run_execute(run_id=queued.pk)
    _refused("UPDATE reports_incidencerun SET error = 'x' WHERE id = %s", [run.pk])
    _refused("DELETE FROM reports_incidencerun WHERE id = %s", [run.pk])
    assert IncidenceRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_the_parameters_of_a_queued_run_are_frozen(queued):
    _refused("UPDATE reports_incidencerun SET cutoff_on = '2025-01-01' WHERE id = %s", [queued.pk])
    _refused("UPDATE reports_incidencerun SET clinic_ids = NULL WHERE id = %s", [queued.pk])
    queued.refresh_from_db()
    assert queued.cutoff_on == CUTOFF
