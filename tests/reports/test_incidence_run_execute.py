"""services.incidence_run_execute: claim once, store with the status flip, never change a snapshot."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from reports.choices import RunStatus, Trigger
from reports.engine import compute_incidence
from reports.export import result_record
from reports.models import IncidenceResult, IncidenceRun
from reports.services import incidence_run_execute, incidence_run_start, incidence_runs_requeue_stale, run_params
from tests.reports.conftest import add_event

CUTOFF = dt.date(2024, 1, 1)


@pytest.fixture
def queued(alice, two_clinics):
    return incidence_run_start(actor=alice, cutoff_on=CUTOFF, trigger=Trigger.ADMIN)


def test_it_stores_exactly_what_the_engine_computes(queued):
    run = incidence_run_execute(run_id=queued.pk, task_id="t-1")
    assert (run.status, run.attempts, run.task_id, run.error) == (RunStatus.SUCCEEDED, 1, "t-1", "")
    assert run.finished_at is not None and run.row_count == run.results.count() > 0
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


def test_a_stale_claim_is_requeued_and_then_completed(queued, django_capture_on_commit_callbacks):
    IncidenceRun.objects.filter(pk=queued.pk).update(
        status=RunStatus.RUNNING, task_id="dead", claimed_at=timezone.now() - timedelta(hours=3), attempts=1
    )
    fresh = incidence_run_start(actor=None, cutoff_on=CUTOFF)  # queued just now: not stale
    with django_capture_on_commit_callbacks(execute=True):
        requeued = incidence_runs_requeue_stale()
    assert requeued == [queued.pk]
    queued.refresh_from_db()
    fresh.refresh_from_db()
    assert (queued.status, queued.attempts, fresh.status) == (RunStatus.SUCCEEDED, 2, RunStatus.QUEUED)


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
