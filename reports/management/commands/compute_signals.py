"""manage.py compute_signals: the signal screen of DESIGN.md 2b (cohort screen and disproportionality), as CSV.

The counting is two GROUP BY GROUPING SETS in PostgreSQL (reports.engine.signals); the output has
one row per attribute value and outcome.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from reports.engine.signals import ATTRIBUTES, COLUMNS, compute_signals
from reports.management.options import add_report_arguments, build_params, split_list, write_rows


class Command(BaseCommand):
    help = (
        "Screen for safety signals and write CSV to stdout, one row per attribute value and outcome (every "
        "outcome but any). Columns: " + ",".join(COLUMNS) + ". Cohort screen: the units with the value against "
        "the rest, by risk ratio with Fisher's exact test for a closed risk window (basis proportion) or by the "
        "Mantel-Haenszel rate ratio over bands of days since the window start (0-30, 30-365, 365-1826, 1826+) for "
        "an open one (basis person_time); q_value = Benjamini-Hochberg over every tested row; signal = ratio > 1, "
        "q < 0.05 and cases >= 3. Disproportionality over the events per category (events_a..d, PRR, ROR, "
        "chi2_yates, IC, IC025, evans_signal); empty for serious and grade_3_plus. An empty (unknown) attribute "
        "value is not a value: it has no row, and its units and events count in the rest. Empty cells are not "
        "estimable or not tested."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--by",
            default=",".join(ATTRIBUTES),
            help=f"Comma-separated attributes to screen (default all: {','.join(ATTRIBUTES)}).",
        )
        add_report_arguments(parser)

    def handle(self, *args, **options):
        params = build_params(options)
        try:
            rows = compute_signals(params=params, by=split_list(options["by"]))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        write_rows(self.stdout, columns=COLUMNS, rows=rows)
