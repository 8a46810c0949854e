"""Options, parameters and CSV cells shared by the epidemiology commands (compute_incidence,
compare_providers, compute_signals): one home for the cut-off, risk windows, unit and user scope."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TextIO

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from core.text import spreadsheet_cell
from registry.selectors import ALL, clinic_scope
from reports.choices import CIMethod, Unit, WindowsMode
from reports.engine import IncidenceParams
from reports.services import incidence_params


def split_list(value: str) -> list[str]:
    """Return the comma-separated names of an option, blanks dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def add_report_arguments(parser) -> None:
    """Add the options every epidemiology command shares: cut-off, risk windows, unit, user, format."""
    parser.add_argument("--cutoff", required=True, help="Data cut-off date, YYYY-MM-DD.")
    parser.add_argument(
        "--windows",
        default=WindowsMode.OPEN,
        choices=WindowsMode.values,
        help="Risk windows: open (default: every outcome from day 0 to the end of follow-up, the figures of "
        "DESIGN 2) or registry "
        "(the registry's stored outcome definitions, DESIGN 2b). An outcome whose window ends is compared "
        "on proportions, an open one on person-time.",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=None,
        help="End every outcome's risk window N days after time zero: events after it do not qualify and "
        "person-time stops there (comparisons are then on proportions); each window keeps its start day.",
    )
    parser.add_argument(
        "--unit",
        default=Unit.PROCEDURE,
        choices=Unit.values,
        help="procedure (default; time zero: the procedure) or patient (time zero: the first procedure).",
    )
    parser.add_argument("--user", default=None, help="Limit to the clinics this username may see.")
    parser.add_argument("--format", default="csv", choices=["csv"], help="Output format (csv).")


def build_params(
    options: dict,
    *,
    outcomes: Sequence[str] | None = None,
    strata: Sequence[str] = (),
    ci_method: str = CIMethod.WILSON,
) -> IncidenceParams:
    """Return the report parameters of the shared options, or raise CommandError saying what is wrong."""
    try:
        cutoff = dt.date.fromisoformat(options["cutoff"])
    except ValueError as exc:
        raise CommandError(f"--cutoff must be YYYY-MM-DD, got {options['cutoff']!r}.") from exc
    clinic_ids = None
    if options["user"]:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        scope = clinic_scope(user)
        if scope is not ALL and not scope:
            raise CommandError(f"User {options['user']!r} may see no clinic.")
        clinic_ids = None if scope is ALL else scope
    try:
        # The parameters a stored run would be given (reports.services): one home for windows and unit.
        params, _definitions = incidence_params(
            cutoff_on=cutoff,
            strata=strata,
            outcomes=outcomes or None,
            ci_method=ci_method,
            onset_window_days=options["window"],
            clinic_ids=clinic_ids,
            windows_mode=options["windows"],
            unit=options["unit"],
        )
        return params
    except ValidationError as exc:
        raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc


def cell(value) -> str:
    """Return a CSV cell: empty for missing, true/false, floats in full precision (repr), text made safe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return spreadsheet_cell(value)
    return str(value)


def write_rows(out: TextIO, *, columns: Sequence[str], rows: Iterable[dict]) -> None:
    """Write ``rows`` (dicts with the keys ``columns``) as CSV with that header."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row[c]) for c in columns])
