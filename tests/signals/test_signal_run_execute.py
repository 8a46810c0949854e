"""signals.services.signal_run_execute: a run stored whole, what is new flagged, one email for what is new.

Hand-worked registry: tests/signals/conftest.py (10/10 infections after umbilical-cord MSC at clinic A
against 2/30 after BMAC at clinic B).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from scipy import stats

from reports.engine.params import IncidenceParams
from reports.engine.signals import COLUMNS, compute_signals
from reports.outcomes import current_windows
from signals.choices import SignalRunStatus, SignalTrigger
from signals.models import SignalRow, SignalRun
from signals.services import LOST_ERROR, signal_rows_prune, signal_run_execute, signal_run_notify
from tests.signals.conftest import CUTOFF, UC_SIGNALS, add_bmac_clinic_b, add_uc_clinic_a

pytestmark = pytest.mark.django_db


def _run(trigger=SignalTrigger.BEAT, cutoff=CUTOFF) -> SignalRun:
    return signal_run_execute(cutoff_on=cutoff, trigger=trigger)


def _signals(run: SignalRun) -> set[tuple[str, str, str]]:
    return {row.key for row in run.rows.all() if row.is_signal}


def _new(run: SignalRun) -> set[tuple[str, str, str]]:
    return set(run.rows.filter(is_new=True).values_list("attribute", "value", "outcome"))


def test_a_nightly_run_stores_every_row_of_the_screen_and_marks_its_signals_new(
    uc_registry, reviewers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = _run()
    assert (run.status, run.trigger, run.error, run.cutoff_on) == (SignalRunStatus.SUCCEEDED, "beat", "", CUTOFF)
    assert run.parameters["windows"] == "registry" and run.parameters["unit"] == "procedure"
    assert run.parameters["by"][0] == "cell_type" and run.parameters["previous_run"] is None
    assert {d["code"]: d["window_end_day"] for d in run.parameters["definitions"]}["infection"] == 90

    # Every row of the screen is stored, column for column, in its order.
    params = IncidenceParams.build(cutoff_on=CUTOFF, windows=current_windows(), unit="procedure")
    expected = compute_signals(params=params, by=run.parameters["by"])
    stored = list(SignalRow.objects.filter(run=run).order_by("position").values(*COLUMNS))
    assert len(stored) == len(expected) > 40
    assert stored == expected

    # The hand-worked signal: 10/10 against 2/30, RR 15, Fisher's exact test as scipy computes it.
    row = run.rows.get(attribute="cell_type", value="umbilical_cord_msc", outcome="infection")
    assert (row.basis, row.procedures, row.cases, row.rest_procedures, row.rest_cases) == ("proportion", 10, 10, 30, 2)
    assert row.ratio == pytest.approx((10 / 10) / (2 / 30))
    assert row.p_value == pytest.approx(stats.fisher_exact([[10, 0], [2, 28]]).pvalue)
    assert row.q_value < 0.05 and row.signal and not row.evans_signal  # all events are infections: PRR 1

    # Exactly the four signals of the registry, all new (there is no previous run).
    assert _signals(run) == UC_SIGNALS == _new(run)
    assert (run.signal_count, run.new_signal_count) == (4, 4)
    assert len(mail.outbox) == 1 and run.__class__.objects.get(pk=run.pk).notified_at is not None


def test_a_second_run_with_no_change_marks_nothing_new_and_sends_no_email(
    uc_registry, reviewers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = _run(cutoff=CUTOFF)
    assert len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = _run(trigger=SignalTrigger.COMMAND)
    assert second.pk != first.pk and second.parameters["previous_run"] == first.pk
    assert _signals(second) == UC_SIGNALS
    assert _new(second) == set() and (second.signal_count, second.new_signal_count) == (4, 0)
    assert callbacks == [] and len(mail.outbox) == 1  # nothing new: no email queued, none sent
    second.refresh_from_db()
    assert second.notified_at is None


def test_a_new_signal_sends_one_email_to_the_registry_administrators(
    clinic_a, clinic_b, reviewers, alice, django_capture_on_commit_callbacks
):
    alice.email = "alice@clinic-a.example"
    alice.save(update_fields=["email"])
    clinic_b_procedures = add_bmac_clinic_b(clinic_b)
    with django_capture_on_commit_callbacks(execute=True):
        quiet = _run()
    assert quiet.signal_count == 0 and mail.outbox == []  # nothing new: no email

    uc = add_uc_clinic_a(clinic_a)
    with django_capture_on_commit_callbacks(execute=True):
        run = _run(trigger=SignalTrigger.COMMAND)
    assert _new(run) == UC_SIGNALS
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    # The registry administrators with an address: root (membership) and the superuser; not the inactive
    # administrator, not the one without an address, not the clinician.
    assert sorted(message.to) == reviewers["told"]
    assert message.subject == "[AE registry] Signal run at cut-off 2024-06-30: 4 new signals, 0 new lot-cluster alerts"
    body = message.body
    assert "cell_type = umbilical_cord_msc, outcome Infection (proportion)" in body
    assert "10 cases in 10 procedures with this value, 2 in 30 without; ratio (95% CI) 15 (" in body
    assert f"http://localhost:8000/admin/signals/signalrun/?run={run.pk}" in body
    # No patient identifier: no registry id, procedure id or event id of any patient involved.
    for procedure in (*uc, *clinic_b_procedures):
        assert procedure.patient.registry_id not in body and procedure.external_id not in body
        for event in procedure.adverse_events.all():
            assert event.external_id not in body
    assert message.content_subtype == "plain" and not message.alternatives

    # Sent once: a second notification of the same run sends nothing.
    assert signal_run_notify(run_id=run.pk) is False and len(mail.outbox) == 1


def test_a_failed_run_is_stored_with_the_reason_and_sends_nothing(
    uc_registry, reviewers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = signal_run_execute(cutoff_on=CUTOFF, trigger=SignalTrigger.COMMAND, by=["cell_type", "colour"])
    assert run.status == SignalRunStatus.FAILED and "colour" in run.error
    assert run.rows.count() == 0 and run.lot_alerts.count() == 0 and mail.outbox == []
    # A failed run is no "previous run": the next one still finds its signals new.
    with django_capture_on_commit_callbacks(execute=True):
        after = _run()
    assert after.parameters["previous_run"] is None and _new(after) == UC_SIGNALS


def test_a_nightly_run_is_stored_once_per_cutoff(uc_registry, reviewers, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = _run()
        again = _run()
    assert first is not None and again is None
    assert SignalRun.objects.filter(cutoff_on=CUTOFF, trigger="beat").count() == 1
    assert len(mail.outbox) == 1


def _lost_run(cutoff=CUTOFF) -> SignalRun:
    """Return a run left "running" by a worker that died (what a killed worker leaves behind)."""
    return SignalRun.objects.create(
        started_at=timezone.now(), cutoff_on=cutoff, status=SignalRunStatus.RUNNING, trigger=SignalTrigger.BEAT
    )


def test_a_run_left_running_by_a_lost_worker_is_failed_by_the_next_run(uc_registry, reviewers):
    lost = _lost_run()
    run = _run()
    lost.refresh_from_db()
    assert (lost.status, lost.error, lost.rows.count()) == (SignalRunStatus.FAILED, LOST_ERROR, 0)
    assert lost.finished_at >= lost.started_at
    assert run.status == SignalRunStatus.SUCCEEDED and _new(run) == UC_SIGNALS


def test_a_nightly_cutoff_whose_worker_was_lost_every_attempt_is_not_tried_again(uc_registry, reviewers, settings):
    settings.REPORTS_MAX_ATTEMPTS = 2
    for _ in range(2):
        _lost_run()
        assert _run(trigger=SignalTrigger.COMMAND).status == SignalRunStatus.SUCCEEDED  # fails the lost one
    assert SignalRun.objects.filter(error=LOST_ERROR).count() == 2
    assert _run() is None  # the nightly run at this cut-off is not tried a third time
    assert not SignalRun.objects.filter(trigger=SignalTrigger.BEAT, status=SignalRunStatus.SUCCEEDED).exists()
    assert _run(cutoff=CUTOFF.replace(day=29)).status == SignalRunStatus.SUCCEEDED  # another night is


def test_an_old_run_keeps_its_signals_and_loses_its_other_rows(uc_registry, reviewers, settings):
    settings.SIGNALS_KEEP_ALL_ROWS_DAYS = 90
    old = _run(trigger=SignalTrigger.COMMAND)
    total = old.rows.count()
    SignalRun.objects.filter(pk=old.pk).update(
        started_at=old.started_at - timedelta(days=91), finished_at=old.finished_at - timedelta(days=91)
    )
    recent = _run(trigger=SignalTrigger.COMMAND)  # prunes after it succeeds
    assert set(old.rows.values_list("attribute", "value", "outcome")) == UC_SIGNALS
    assert recent.rows.count() == total  # a recent run keeps every row
    assert signal_rows_prune() == 0
