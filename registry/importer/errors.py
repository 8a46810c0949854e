"""Return import errors as values: a cell-level error and the refusal that carries them all."""

from __future__ import annotations

from dataclasses import dataclass

# The order a report lists files in: the order references flow in.
FILES = ("clinics.csv", "patients.csv", "procedures.csv", "follow_ups.csv", "adverse_events.csv")


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


def sorted_errors(errors: list[RowError]) -> list[RowError]:
    """Return ``errors`` by file (reference order), then line; a line keeps the order found."""
    rank = {name: i for i, name in enumerate(FILES)}
    return sorted(errors, key=lambda e: (rank.get(e.file, len(FILES)), e.line))


class ImportRefused(Exception):
    """The folder was not imported; ``errors`` lists every reason and nothing was changed."""

    def __init__(self, errors: list[RowError]):
        self.errors = sorted_errors(errors)
        super().__init__(self.report())

    def report(self) -> str:
        """Return the full list of errors, one per line, under a one-line headline."""
        head = f"Import refused, nothing was changed: {len(self.errors)} error{'s' * (len(self.errors) != 1)}."
        return "\n".join([head, *(str(e) for e in self.errors)])
