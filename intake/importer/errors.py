"""Return import errors as values: a cell-level error, the capped list that collects them, and the refusal."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

# The order a report lists files in: the order references flow in.
FILES = ("clinics.csv", "patients.csv", "procedures.csv", "follow_ups.csv", "adverse_events.csv")
_RANK = {name: i for i, name in enumerate(FILES)}


@dataclass(frozen=True, slots=True)
class RowError:
    """One refused cell: file, 1-based physical line (header = 1), column name and why."""

    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        if self.line == 0:  # about the folder or the database, not a cell
            return f"{self.file}: {self.message}"
        return f"{self.file} line {self.line}, column {self.column}: {self.message}"


def _order(error: RowError) -> tuple[int, int]:
    return _RANK.get(error.file, len(FILES)), error.line


def sorted_errors(errors: Iterable[RowError]) -> list[RowError]:
    """Return ``errors`` by file (reference order), then line; a line keeps the order found."""
    return sorted(errors, key=_order)


class ErrorList:
    """Collects errors, keeping only the first ``limit`` in report order and counting every one.

    A folder of bad rows yields an error per row; holding them all is what made a 200 MB
    folder need gigabytes. The kept errors are the ``limit`` earliest by file, line and
    the order found (a bounded heap, so an error found late about an early line, such as
    a death date checked against all of a patient's procedures, still takes its place);
    the others are only counted, so ``total`` is exact and memory stays at ``limit`` errors.
    """

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("The error limit must be 1 or more.")
        self.limit = limit
        self.total = 0
        # Max-heap of the kept errors by (file rank, line, order found), as negated keys.
        self._heap: list[tuple[int, int, int, RowError]] = []

    def add(self, error: RowError) -> None:
        """Count ``error`` and keep it if it is among the first ``limit``."""
        self.total += 1
        rank, line = _order(error)
        entry = (-rank, -line, -self.total, error)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, entry)
        elif entry > self._heap[0]:  # earlier than the latest kept error
            heapq.heapreplace(self._heap, entry)

    def extend(self, errors: Iterable[RowError]) -> None:
        """Add every error of ``errors``."""
        for error in errors:
            self.add(error)

    def kept(self) -> list[RowError]:
        """Return the kept errors in report order."""
        return [entry[3] for entry in sorted(self._heap, reverse=True)]

    def __bool__(self) -> bool:
        return self.total > 0

    def __len__(self) -> int:
        return self.total


class ImportRefused(Exception):
    """The folder was not imported; ``errors`` lists the first errors found, ``total`` counts all of them."""

    def __init__(self, errors: ErrorList | Iterable[RowError]):
        if isinstance(errors, ErrorList):
            self.errors, self.total = errors.kept(), errors.total
        else:
            self.errors = sorted_errors(errors)
            self.total = len(self.errors)
        super().__init__(self.report())

    @property
    def not_shown(self) -> int:
        """Return how many errors were counted but not kept."""
        return self.total - len(self.errors)

    def report(self) -> str:
        """Return the kept errors, one per line, under a one-line headline and above the count of the rest."""
        head = f"Import refused, nothing was changed: {self.total:,} error{'s' * (self.total != 1)}."
        lines = [head, *(str(e) for e in self.errors)]
        if self.not_shown:
            lines.append(
                f"... and {self.not_shown:,} more error{'s' * (self.not_shown != 1)} not shown "
                "(--max-errors or IMPORT_MAX_ERRORS shows more)."
            )
        return "\n".join(lines)
