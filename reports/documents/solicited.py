"""The solicited-reactions table of a run's report (issue 12): for the procedures in the run's scope
whose patient diary was used, the share reporting each symptom on each day 0-7, and pain by grade.

Scope: the run's clinics (all when the run has none), procedures performed on or before its cut-off,
neither the procedure nor its patient retracted; diary days dated on or before the cut-off, not
rejected by a clinician (unconfirmed and confirmed days both count: the table is patient-reported by
definition). The denominator of a day is the procedures with a diary entry that day. Counted in
PostgreSQL in one statement (GROUPING SETS: one row per day, and one for the distinct procedures).

Unlike the run's stored rows, the table is read when the document is made (the diaries are not copied
into the run's snapshot): the cut-off bounds it, but a diary day rejected or a procedure retracted later
leaves it. Storing it with the snapshot (reports.snapshot) would freeze it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from patients.choices import DIARY_LAST_DAY, ReportKind, ReportStatus
from patients.models import PatientReport
from patients.redflags import FEVER_C
from registry.models import Patient, Procedure
from reports.models import IncidenceRun

DAYS = tuple(range(DIARY_LAST_DAY + 1))
# (label, SQL condition on the diary row r)
SYMPTOMS = (
    ("pain (1-10)", "r.pain > 0"),
    ("swelling", "r.swelling <> 'none' AND r.swelling <> ''"),
    ("redness", "r.redness"),
    ("warmth", "r.warmth"),
    (f"fever (measured >= {FEVER_C} C)", "r.temperature_c >= %(fever)s"),
    ("discharge", "r.discharge"),
    ("flu-like symptoms", "r.flu_like"),
    ("fatigue", "r.fatigue"),
)
PAIN_GRADES = (
    ("0", "r.pain = 0"),
    ("1-3", "r.pain BETWEEN 1 AND 3"),
    ("4-6", "r.pain BETWEEN 4 AND 6"),
    ("7-10", "r.pain >= 7"),
)


@dataclass(frozen=True)
class SolicitedRow:
    label: str
    counts: tuple[int, ...]  # per day
    shares: tuple[float | None, ...]  # per day, None where nobody wrote that day


@dataclass(frozen=True)
class SolicitedTable:
    procedures: int  # procedures whose diary was used
    entries: tuple[int, ...]  # diary entries (= procedures) per day
    symptoms: tuple[SolicitedRow, ...]
    pain: tuple[SolicitedRow, ...]


def _sql(run: IncidenceRun) -> tuple[str, dict]:
    conditions = SYMPTOMS + PAIN_GRADES
    measures = ", ".join(f"count(*) FILTER (WHERE {cond}) AS c{i}" for i, (_label, cond) in enumerate(conditions))
    clinics = "" if run.clinic_ids is None else "AND p.clinic_id = ANY(%(clinics)s)"
    sql = f"""
        SELECT GROUPING(r.day) AS total, r.day, count(*) AS n, count(DISTINCT r.procedure_id) AS procedures, {measures}
        FROM {PatientReport._meta.db_table} r
        JOIN {Procedure._meta.db_table} p ON p.id = r.procedure_id
        JOIN {Patient._meta.db_table} pt ON pt.id = p.patient_id
        WHERE r.kind = %(diary)s AND r.status <> %(rejected)s AND r.entry_on <= %(cutoff)s
          AND p.performed_on <= %(cutoff)s AND p.retracted_at IS NULL AND pt.retracted_at IS NULL {clinics}
        GROUP BY GROUPING SETS ((r.day), ())
    """  # noqa: S608 - table names from the models, values as parameters
    params = {
        "diary": ReportKind.DIARY,
        "rejected": ReportStatus.REJECTED,
        "cutoff": run.cutoff_on,
        "fever": FEVER_C,
        "clinics": list(run.clinic_ids or []),
    }
    return sql, params


def solicited_table(run: IncidenceRun) -> SolicitedTable | None:
    """Return the run's solicited-reactions table, or None when no procedure in its scope has a diary."""
    sql, params = _sql(run)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    total = next((row for row in rows if row[0] == 1), None)
    if total is None or not total[3]:
        return None
    by_day = {row[1]: row for row in rows if row[0] == 0}
    entries = tuple(by_day[d][2] if d in by_day else 0 for d in DAYS)

    def make(offset: int, labels) -> tuple[SolicitedRow, ...]:
        out = []
        for i, (label, _cond) in enumerate(labels):
            counts = tuple(by_day[d][4 + offset + i] if d in by_day else 0 for d in DAYS)
            shares = tuple(c / n if n else None for c, n in zip(counts, entries, strict=True))
            out.append(SolicitedRow(label=label, counts=counts, shares=shares))
        return tuple(out)

    return SolicitedTable(
        procedures=total[3], entries=entries, symptoms=make(0, SYMPTOMS), pain=make(len(SYMPTOMS), PAIN_GRADES)
    )


def share_text(share: float | None) -> str:
    """Return a share as a whole percentage, or an en dash where nobody wrote that day."""
    return "\u2013" if share is None else f"{round(share * 100)} %"


def table_rows(table: SolicitedTable) -> list[tuple]:
    """Return flat rows for the XLSX sheet: (section, label, day 0 share, ..., day 7 share)."""
    rows = [("entries", "diary entries", *table.entries)]
    rows += [("symptom", r.label, *r.shares) for r in table.symptoms]
    rows += [("pain grade", r.label, *r.shares) for r in table.pain]
    return rows
