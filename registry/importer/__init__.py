"""The registry's CSV import (docs/import-format.md): read, check every row, then write all or nothing.

read.py parses the folder without touching the database, check.py holds every row
against the rule functions and the stored rows, write.py stages the rows with COPY
and upserts them set-wise. This module runs the three in one transaction under one
audit context.
"""

from __future__ import annotations

import time
from pathlib import Path

import pghistory
from django.db import transaction

from registry.importer.check import check, load_stored
from registry.importer.errors import ImportRefused, RowError
from registry.importer.read import read_folder
from registry.importer.write import Summary, timed, write_plan

__all__ = ["ImportRefused", "RowError", "Summary", "import_folder"]


def import_folder(*, folder: Path, user=None) -> Summary:
    """Return the counts of importing ``folder``, run by ``user`` (or None for the system).

    Raises ImportRefused, with every error found, when any row is bad; nothing is changed then.
    """
    phases: dict[str, float] = {}
    folder = Path(folder).resolve()
    with timed(phases, "read + parse"):
        parsed = read_folder(folder=folder)
    if parsed.errors and not any(parsed.rows.values()):
        raise ImportRefused(parsed.errors)
    # Checking inside the writing transaction narrows the gap in which another writer could
    # change what the checks saw; the database's triggers cover what remains.
    with (
        transaction.atomic(),
        pghistory.context(user=getattr(user, "pk", None), action="import_registry", source=str(folder)),
    ):
        with timed(phases, "load stored rows"):
            stored = load_stored(parsed=parsed)
        with timed(phases, "check rules"):
            plan, errors = check(parsed=parsed, stored=stored)
        if errors:
            raise ImportRefused(errors)
        summary = write_plan(plan=plan, present=parsed.present, phases=phases)
        written = time.perf_counter()
    # Deferred foreign-key checks run at commit (inside an outer transaction, later).
    phases["commit"] = time.perf_counter() - written
    return summary
