"""manage.py compare_providers: providers compared on case-mix-adjusted expected cases (DESIGN.md 2b), as CSV.

The output is small (groups x outcomes); the counting is one GROUP BY in PostgreSQL
(reports.engine.providers); options, parameters and CSV cells are reports.management.options.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from reports.engine.providers import ADJUSTABLE, COLUMNS, DEFAULT_ADJUST, GROUPS, compare_providers
from reports.management.options import add_report_arguments, build_params, split_list, write_rows


class Command(BaseCommand):
    help = (
        "Compare providers (clinics, countries, or GMP-certified vs not) on observed against expected cases, "
        "expected by indirect standardisation over the report's scope within the --adjust strata (DESIGN 2b). "
        "Per outcome: basis proportion for a closed risk window (E = sum n_gz p_z), person_time for an open "
        "one (E = sum PY_gz r_z). CSV columns: " + ",".join(COLUMNS) + ". sir = observed/expected with the "
        "exact Poisson 95% interval; p_high = P(X >= O), p_low = P(X <= O), X ~ Poisson(expected); flag "
        "above/below 95 % or 99.8 %. Empty cells are not estimable (expected 0)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--group", default="clinic", choices=GROUPS, help="Compare clinics (default), countries, or gmp status."
        )
        parser.add_argument(
            "--adjust",
            default=",".join(DEFAULT_ADJUST),
            help=f"Comma-separated adjustment attributes (default {','.join(DEFAULT_ADJUST)}; empty: crude). "
            f"Choose from {','.join(ADJUSTABLE)}.",
        )
        parser.add_argument("--outcome", default="", help="Outcome code(s), comma-separated; default all.")
        add_report_arguments(parser)

    def handle(self, *args, **options):
        params = build_params(options, outcomes=split_list(options["outcome"]))
        try:
            rows = compare_providers(params=params, group=options["group"], adjust=split_list(options["adjust"]))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        write_rows(self.stdout, columns=COLUMNS, rows=rows)
