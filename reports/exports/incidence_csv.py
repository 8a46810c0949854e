"""The incidence table as CSV: fixed leading columns, full float precision, empty = not estimable.

Stratum values (a clinic code may begin with "-") pass through core.text.spreadsheet_cell, so
no cell opens as a formula (Hardening 7); numbers are written as numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import TextIO

from core.text import spreadsheet_cell
from reports.choices import AJ_COLUMNS, HORIZONS

LEADING_COLUMNS: tuple[str, ...] = (
    "outcome",
    "procedures",
    "cases",
    "proportion",
    "proportion_ci_low",
    "proportion_ci_high",
    "person_years",
    "rate_per_100py",
    "rate_ci_low",
    "rate_ci_high",
    *(f"km_cuminc_{label}" for label, _ in HORIZONS),
)
TRAILING_COLUMNS: tuple[str, ...] = (
    "person_days",
    *(f"km_cuminc_{label}_ci_{end}" for label, _ in HORIZONS for end in ("low", "high")),
    # Aalen-Johansen cumulative incidence with death as a competing risk (DESIGN 2b), after the
    # existing columns, which keep their names and order.
    *AJ_COLUMNS,
)


def header(strata: Sequence[str]) -> list[str]:
    """Return the CSV header: the stratum columns, then the measures."""
    return [*strata, *LEADING_COLUMNS, *TRAILING_COLUMNS]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return spreadsheet_cell(value)
    return str(value)


def result_record(row) -> dict:
    """Return a flat {column: value} of an engine row (IncidenceRow) for storage and export."""
    record = {
        "stratum": dict(row.stratum),
        "outcome": row.outcome,
        "procedures": row.procedures,
        "cases": row.cases,
        "person_days": row.person_days,
        "proportion": row.proportion,
        "proportion_ci_low": row.proportion_ci_low,
        "proportion_ci_high": row.proportion_ci_high,
        "person_years": row.person_years,
        "rate_per_100py": row.rate_per_100py,
        "rate_ci_low": row.rate_ci_low,
        "rate_ci_high": row.rate_ci_high,
    }
    for label, _ in HORIZONS:
        estimate = row.km[label]
        record[f"km_cuminc_{label}"] = estimate.value
        record[f"km_cuminc_{label}_ci_low"] = estimate.ci_low
        record[f"km_cuminc_{label}_ci_high"] = estimate.ci_high
    for label, _ in HORIZONS:
        record[f"aj_cuminc_{label}"] = row.aj.get(label)
    return record


def write_csv(out: TextIO, *, strata: Sequence[str], records: Iterable[dict]) -> None:
    """Write ``records`` (see result_record; stored results give the same keys) as CSV."""
    writer = csv.writer(out, lineterminator="\n")
    columns = header(strata)
    writer.writerow(columns)
    for record in records:
        stratum = record["stratum"]
        writer.writerow([_cell(stratum[s]) for s in strata] + [_cell(record[c]) for c in columns[len(strata) :]])
