"""manage.py signal_run: a run stored now from the command line, as the nightly job stores it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from signals.models import SignalRun

pytestmark = pytest.mark.django_db


def test_it_stores_a_command_run_and_says_what_is_new(uc_registry, reviewers, django_capture_on_commit_callbacks):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("signal_run", "--cutoff", "2024-06-30", stdout=out)
    run = SignalRun.objects.get()
    assert run.trigger == "command" and run.requested_by is None
    assert out.getvalue().strip() == (
        f"Signal run #{run.pk} at cut-off 2024-06-30: 4 signals (4 new), 0 lot-cluster alerts (0 new)."
    )


def test_a_bad_date_is_refused_before_anything_runs(db):
    with pytest.raises(CommandError):
        call_command("signal_run", "--cutoff", "30/06/2024")
    assert SignalRun.objects.count() == 0
