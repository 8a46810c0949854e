"""services.incidence_run_start: validated, limited to the requester's clinics, enqueued on commit."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from reports.choices import OUTCOMES, RunStatus, Trigger
from reports.models import IncidenceRun
from reports.services import incidence_run_execute, incidence_run_start
from tests.factories import UserFactory

CUTOFF = dt.date(2024, 1, 1)


def test_a_clinicians_run_is_limited_to_her_clinic(alice, clinic_a, clinic_b):
    run = incidence_run_start(actor=alice, cutoff_on=CUTOFF)
    assert run.clinic_ids == [clinic_a.pk]
    assert (run.status, run.requested_by, run.strata) == (RunStatus.QUEUED, alice, ["site", "cell_type"])


def test_an_administrators_run_covers_every_clinic(root, clinic_a, clinic_b):
    run = incidence_run_start(actor=root, cutoff_on=CUTOFF, strata=["country"], outcomes=["infection", "any"])
    assert run.clinic_ids is None
    assert run.outcomes == ["any", "infection"]  # canonical order


def test_no_outcomes_means_every_outcome(root):
    assert incidence_run_start(actor=root, cutoff_on=CUTOFF).outcomes == list(OUTCOMES)


def test_it_rejects_unknown_strata_and_stores_nothing(root):
    with pytest.raises(ValidationError) as err:
        incidence_run_start(actor=root, cutoff_on=CUTOFF, strata=["site", "shoe_size"])
    assert "strata" in err.value.message_dict
    assert not IncidenceRun.objects.exists()


def test_it_records_the_estimated_size_which_is_what_the_run_stores(root, two_clinics):
    strata = ["site", "cell_type", "clinic", "sex", "year"]
    run = incidence_run_start(actor=root, cutoff_on=CUTOFF, strata=strata, outcomes=["any", "neoplasm"])
    run = incidence_run_execute(run_id=run.pk)
    assert run.status == RunStatus.SUCCEEDED
    assert run.estimated_rows == run.row_count == run.results.count()


def test_it_refuses_a_run_over_the_row_limit_and_stores_nothing(root, two_clinics, settings):
    settings.REPORTS_MAX_RESULT_ROWS = 20
    with pytest.raises(ValidationError) as err:
        incidence_run_start(actor=root, cutoff_on=CUTOFF, strata=["site", "cell_type", "clinic"])
    (message,) = err.value.message_dict["strata"]
    assert "more than the limit of 20" in message and "Choose fewer or coarser strata" in message
    assert not IncidenceRun.objects.exists()


def test_it_rejects_a_negative_onset_window(root):
    with pytest.raises(ValidationError):
        incidence_run_start(actor=root, cutoff_on=CUTOFF, onset_window_days=-1)


def test_a_user_without_a_clinic_may_not_start_a_run(db):
    with pytest.raises(PermissionDenied):
        incidence_run_start(actor=UserFactory(username="nobody"), cutoff_on=CUTOFF)
    assert not IncidenceRun.objects.exists()


def test_it_enqueues_the_computation_only_when_the_transaction_commits(
    alice, two_clinics, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = incidence_run_start(actor=alice, cutoff_on=CUTOFF, trigger=Trigger.ADMIN)
    assert len(callbacks) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    callbacks[0]()  # the commit: eager Celery computes it here
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    total = run.results.get(outcome="infection", stratum={"site": "ALL", "cell_type": "ALL"})
    assert (total.procedures, total.cases) == (2, 1)  # clinic B's procedure is not in it


def test_the_nightly_task_queues_a_registry_wide_site_by_cell_type_run(db, django_capture_on_commit_callbacks):
    from reports.tasks import incidence_nightly_task

    with django_capture_on_commit_callbacks(execute=True):
        run_id = incidence_nightly_task()
    run = IncidenceRun.objects.get(pk=run_id)
    assert (run.trigger, run.clinic_ids, run.strata, run.status) == (
        Trigger.BEAT,
        None,
        ["site", "cell_type"],
        RunStatus.SUCCEEDED,
    )
    assert run.cutoff_on < dt.date.today()
