"""manage.py signal_run: store a signal run now (trigger "command"), as the nightly job does, and say what is new."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from reports.services import nightly_cutoff
from signals.choices import SignalRunStatus, SignalTrigger
from signals.services import signal_run_execute


class Command(BaseCommand):
    help = (
        "Screen the registry for signals and product-lot clusters at a data cut-off (default yesterday) with the "
        "registry's outcome definitions, store the run, and email the reviewers what is new since the previous run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cutoff", type=dt.date.fromisoformat, help="Data cut-off date, YYYY-MM-DD.")

    def handle(self, *args, cutoff=None, **options):
        run = signal_run_execute(cutoff_on=cutoff or nightly_cutoff(), trigger=SignalTrigger.COMMAND)
        if run is None or run.status != SignalRunStatus.SUCCEEDED:
            raise CommandError(f"The signal run failed: {run.error if run else 'not stored'}")
        self.stdout.write(
            f"Signal run #{run.pk} at cut-off {run.cutoff_on}: "
            f"{run.signal_count} signals ({run.new_signal_count} new), "
            f"{run.alert_count} lot-cluster alerts ({run.new_alert_count} new)."
        )
