"""manage.py compute_incidence: the incidence table as CSV on stdout, computed now.

Bounded like a stored run: a report over REPORTS_MAX_RESULT_ROWS is refused before it
starts, and the rows stream (the engine yields them a few groups at a time; they are
put in report order through temporary files, one per outcome), so memory stays flat.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reports.choices import CIMethod
from reports.engine import IncidenceParams, iter_incidence
from reports.exports.incidence_csv import result_record, write_csv
from reports.management.options import add_report_arguments, build_params, split_list
from reports.services import incidence_run_size

# Per outcome, rows kept in memory before their temporary file spills to disk.
SPOOL_BYTES = 1 << 20


def _in_report_order(params: IncidenceParams) -> Iterator[dict]:
    """Yield the report's records in report order (outcome, then strata), holding none of them in memory.

    The engine yields group after group, every outcome of a group together; each
    outcome's records go to a file of their own (JSON lines: floats round-trip exactly),
    read back one outcome after another once the query is done.
    """
    index = {outcome: k for k, outcome in enumerate(params.outcomes)}
    with ExitStack() as stack:
        spools = [
            stack.enter_context(tempfile.SpooledTemporaryFile(SPOOL_BYTES, mode="w+", encoding="utf-8"))
            for _ in params.outcomes
        ]
        for _, row in iter_incidence(params=params):
            spools[index[row.outcome]].write(json.dumps(result_record(row)) + "\n")
        for spool in spools:
            spool.seek(0)
            for line in spool:
                yield json.loads(line)


class Command(BaseCommand):
    help = (
        "Compute adverse-event incidence by strata (with margins) and write CSV to stdout: the stratum "
        "columns, then outcome, procedures, cases, proportion (+95% CI), person_years, rate_per_100py "
        "(+95% Garwood CI), km_cuminc_30d/1y/2y/5y, then person_days, the KM intervals and aj_cuminc_30d/1y/2y/5y "
        "(Aalen-Johansen, death as a competing risk). "
        "Margins carry ALL; empty cells are not estimable."
    )

    def add_arguments(self, parser):
        parser.add_argument("--by", default="site,cell_type", help="Comma-separated strata (default site,cell_type).")
        parser.add_argument("--outcome", default="", help="Outcome code(s), comma-separated; default all.")
        parser.add_argument("--ci", default=CIMethod.WILSON, choices=CIMethod.values, help="Proportion interval.")
        add_report_arguments(parser)

    def handle(self, *args, **options):
        params = build_params(
            options, outcomes=split_list(options["outcome"]), strata=split_list(options["by"]), ci_method=options["ci"]
        )
        try:
            incidence_run_size(params=params)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        write_csv(self.stdout, strata=params.strata, records=_in_report_order(params))
