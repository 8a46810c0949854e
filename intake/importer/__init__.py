"""The registry's CSV import (docs/import-format.md): read, check and stage every row, then write all or nothing.

read.py parses the folder a chunk of rows at a time without touching the database;
check.py holds each chunk against the rule functions, the rows staged before it and the
stored rows, and stages it with COPY (stage.py), then checks what spans rows in SQL;
write.py upserts the staging tables set-wise. Python never holds more than a chunk of
rows and the capped error list, so memory does not grow with the folder. This module
runs it all in one transaction under one audit context.
"""

from __future__ import annotations

import time
from pathlib import Path

import pghistory
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models.expressions import RawSQL

from events.models import AdverseEvent
from intake.importer import stage
from intake.importer.check import Checker
from intake.importer.errors import ErrorList, ImportRefused, RowError
from intake.importer.read import SPECS, left_out, read_chunks, read_headers
from intake.importer.write import WRITTEN_EVENTS_SQL, Summary, database_refusal, timed, write_staged
from safety import services as safety_services

__all__ = ["ImportRefused", "RowError", "Summary", "import_folder"]

# Rows parsed, checked and staged at a time: large enough that the per-chunk look-ups by key
# cost little, small enough that a chunk is a few megabytes.
CHUNK_ROWS = 5000


def import_folder(*, folder: Path, user=None, max_errors: int | None = None) -> Summary:
    """Return the counts of importing ``folder``, run by ``user`` (or None for the system).

    Raises ImportRefused when any row is bad; nothing is changed then. It lists the first
    ``max_errors`` errors (default settings.IMPORT_MAX_ERRORS) in file and line order and
    counts every other one: the whole folder is still checked, so the count is exact.
    """
    phases: dict[str, float] = {}
    errors = ErrorList(max_errors if max_errors is not None else settings.IMPORT_MAX_ERRORS)
    folder = Path(folder).resolve()
    layouts = read_headers(folder=folder, errors=errors)
    if errors:
        # Rows read against a wrong header would only bury the real problem in noise.
        raise ImportRefused(errors)
    # Columns added to the format later that a file leaves out: stored records keep their values.
    missing = {name: left_out(SPECS[name], layout) for name, layout in layouts.items()}
    # Checking inside the writing transaction narrows the gap in which another writer could
    # change what the checks saw; the database's triggers cover what remains.
    with (
        transaction.atomic(),
        pghistory.context(user=getattr(user, "pk", None), action="import_registry", source=str(folder)),
        connection.cursor() as cursor,
    ):
        stage.create_tables(cursor)
        checker = Checker(cursor, errors)
        try:
            with timed(phases, "read, check, stage (COPY)"):
                for name, layout in layouts.items():  # reference order: what a row names is staged before it
                    for chunk in read_chunks(folder / name, SPECS[name], layout, errors, CHUNK_ROWS):
                        stage.fill_left_out(cursor, name, chunk, missing[name])
                        checker.check_chunk(name, chunk)
                    checker.finish_file(name)
            with timed(phases, "check across rows"):
                checker.check_across_rows()
        except (IntegrityError, DataError) as exc:
            # The parsers keep every staged value within its column's type; this is the backstop.
            raise database_refusal(exc) from exc
        if errors:
            raise ImportRefused(errors)
        summary = write_staged(
            cursor,
            staged=checker.staged,
            present=layouts,
            left_out=missing,
            phases=phases,
        )
        with timed(phases, "expedited-report rules"):
            # Issue 10: the importer writes past events.services, so it starts the cases' clocks itself,
            # for the events this import created or changed.
            written_events = AdverseEvent.objects.filter(pk__in=RawSQL(WRITTEN_EVENTS_SQL, ()))  # noqa: S611 - a constant
            summary.cases_evaluated = safety_services.cases_evaluate(
                events=written_events, actor=user, reason="changed"
            )
        written = time.perf_counter()
    # Deferred foreign-key checks run at commit (inside an outer transaction, later).
    phases["commit"] = time.perf_counter() - written
    return summary
