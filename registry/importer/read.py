"""Return the rows of an import folder, parsed cell by cell, with every parse error found.

This module knows the public CSV format (docs/import-format.md): the files, their
columns, how a cell becomes a value and which cells are required. It touches no
database; registry.importer.check holds the rows against each other, the stored
rows and the rule functions.

Row objects are slotted dataclasses whose attribute names are the model field
names, so the rule functions in registry.rules and events.rules read them as they
read model instances. Where a rule compares clinics (``clinic_id``) the row holds
the clinic's code: before anything is written, the code is the clinic's identity.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ValidationError

from events.choices import SERIOUS_CRITERIA, Category, Causality, Outcome
from events.models import AdverseEvent
from registry.choices import Carrier, CellSource, CellType, Guidance, Laterality, Sex, Site, Visit
from registry.importer.errors import FILES, RowError
from registry.models import Clinic, Patient, Procedure

CLINICS, PATIENTS, PROCEDURES, FOLLOW_UPS, EVENTS = FILES


@dataclass(slots=True)
class ClinicRow:
    line: int
    code: str | None = None
    name: str | None = None
    country: str | None = None
    city: str = ""
    gmp_certified: bool | None = None


@dataclass(slots=True)
class PatientRow:
    line: int
    registry_id: str | None = None
    clinic_id: str | None = None  # the clinic's code
    sex: str | None = None
    birth_year: int | None = None
    enrolled_on: dt.date | None = None
    withdrawn_on: dt.date | None = None
    death_date: dt.date | None = None


@dataclass(slots=True)
class ProcedureRow:
    line: int
    external_id: str | None = None
    patient_key: str | None = None  # the patient's registry_id
    clinic_id: str | None = None  # the clinic's code; empty means the patient's clinic
    performed_on: dt.date | None = None
    site: str | None = None
    laterality: str | None = None
    cell_source: str | None = None
    cell_type: str | None = None
    cell_dose_millions: Decimal | None = None
    carrier: str = ""
    guidance: str = ""
    # Not in the format: a stored procedure keeps its own values, which the rules must see.
    processing: str = ""
    volume_ml: Decimal | None = None


@dataclass(slots=True)
class VisitRow:
    line: int
    procedure_key: str | None = None  # the procedure's external id
    visit: str | None = None
    due_on: dt.date | None = None
    completed_on: dt.date | None = None
    window_start: dt.date | None = None
    window_end: dt.date | None = None


@dataclass(slots=True)
class EventRow:
    line: int
    external_id: str | None = None
    procedure_key: str | None = None  # the procedure's external id
    category: str | None = None
    term: str | None = None
    onset_on: dt.date | None = None
    grade: int | None = None
    serious: bool | None = None
    serious_death: bool = False
    serious_life_threatening: bool = False
    serious_hospitalisation: bool = False
    serious_disability: bool = False
    serious_congenital_anomaly: bool = False
    serious_medically_important: bool = False
    outcome: str | None = None
    resolved_on: dt.date | None = None
    causality_procedure: str = ""
    # Imported events are never retracted; the rules still read these attributes.
    retracted_at: dt.datetime | None = None
    retraction_reason: str = ""


# --- cell parsers: return the value or raise ValueError with the message to report ---

_INT = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _text(model, name: str) -> Callable[[str], str]:
    max_length = model._meta.get_field(name).max_length

    def parse(raw: str) -> str:
        if len(raw) > max_length:
            raise ValueError(f"At most {max_length} characters, got {len(raw)}.")
        return raw

    return parse


def _code(choices) -> Callable[[str], str]:
    # Plain str values, shared by every row that uses them.
    allowed = {str(v): str(v) for v in choices.values}
    listing = ", ".join(allowed)

    def parse(raw: str) -> str:
        try:
            return allowed[raw]
        except KeyError:
            raise ValueError(f"Unknown code {raw!r}; allowed: {listing}.") from None

    return parse


# A folder holds a million dates but only a few thousand distinct ones; dates are immutable,
# so rows can share one object (less parsing, less memory).
_DATES: dict[str, dt.date] = {}


def _date(raw: str) -> dt.date:
    value = _DATES.get(raw)
    if value is not None:
        return value
    # fromisoformat() alone would also take 20240131 and 2024-W05-3.
    if len(raw) == 10 and raw[4] == "-" and raw[7] == "-":
        try:
            value = dt.date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if len(_DATES) < 100_000:
                _DATES[raw] = value
            return value
    raise ValueError(f"Not a date in the form YYYY-MM-DD: {raw!r}.")


def _int(raw: str) -> int:
    # int() alone would also take ' 7', '+7' and '1_000'.
    if not _INT.fullmatch(raw):
        raise ValueError(f"Not a whole number: {raw!r}.")
    return int(raw)


def _decimal(model, name: str) -> Callable[[str], Decimal]:
    validators = model._meta.get_field(name).validators  # max digits and decimal places of the column

    def parse(raw: str) -> Decimal:
        # Decimal() alone would also take NaN, 1e3 and 1_000.
        if not _DECIMAL.fullmatch(raw):
            raise ValueError(f"Not a decimal number (e.g. 12.5): {raw!r}.")
        value = Decimal(raw)
        for validator in validators:
            try:
                validator(value)
            except ValidationError as exc:
                raise ValueError(" ".join(exc.messages)) from None
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError(f"Not true or false: {raw!r}.")


_CRITERIA_LISTING = ", ".join(SERIOUS_CRITERIA)


def _criteria(raw: str) -> dict[str, bool]:
    flags = dict.fromkeys(SERIOUS_CRITERIA.values(), False)
    for part in raw.split(";"):
        code = part.strip()
        if not code:
            continue
        if code not in SERIOUS_CRITERIA:
            raise ValueError(f"Unknown seriousness criterion {code!r}; allowed: {_CRITERIA_LISTING}.")
        flags[SERIOUS_CRITERIA[code]] = True
    return flags


@dataclass(frozen=True)
class Column:
    """A CSV column: its header name, the row attribute it fills, its parser and whether it is required."""

    name: str
    attr: str | None  # None: the parser returns a dict of attributes
    parse: Callable[[str], object]
    required: bool = True
    empty: object = None  # the value of an empty optional cell


@dataclass(frozen=True)
class FileSpec:
    name: str
    row: type
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # attributes that must be unique within the file
    column_of: dict[str, str] = field(default_factory=dict)  # row attribute -> CSV column, for rule errors

    def __post_init__(self):
        for column in self.columns:
            if column.attr:
                self.column_of.setdefault(column.attr, column.name)
                # Rules name the model field ("clinic"), rows carry its column ("clinic_id").
                self.column_of.setdefault(column.attr.removesuffix("_id"), column.name)
        if self.row is EventRow:
            self.column_of.update(dict.fromkeys(SERIOUS_CRITERIA.values(), "serious_criteria"))


SPECS = {
    CLINICS: FileSpec(
        CLINICS,
        ClinicRow,
        (
            Column("code", "code", _text(Clinic, "code")),
            Column("name", "name", _text(Clinic, "name")),
            Column("country", "country", _text(Clinic, "country")),
            Column("city", "city", _text(Clinic, "city"), required=False, empty=""),
            Column("gmp_certified", "gmp_certified", _bool),
        ),
        key=("code",),
    ),
    PATIENTS: FileSpec(
        PATIENTS,
        PatientRow,
        (
            Column("registry_id", "registry_id", _text(Patient, "registry_id")),
            Column("clinic_code", "clinic_id", _text(Clinic, "code")),
            Column("sex", "sex", _code(Sex)),
            Column("birth_year", "birth_year", _int),
            Column("enrolled_on", "enrolled_on", _date),
            Column("withdrawn_on", "withdrawn_on", _date, required=False),
            Column("death_date", "death_date", _date, required=False),
        ),
        key=("registry_id",),
    ),
    PROCEDURES: FileSpec(
        PROCEDURES,
        ProcedureRow,
        (
            Column("procedure_id", "external_id", _text(Procedure, "external_id")),
            Column("patient_registry_id", "patient_key", _text(Patient, "registry_id")),
            Column("clinic_code", "clinic_id", _text(Clinic, "code"), required=False),
            Column("performed_on", "performed_on", _date),
            Column("site", "site", _code(Site)),
            Column("laterality", "laterality", _code(Laterality)),
            Column("cell_source", "cell_source", _code(CellSource)),
            Column("cell_type", "cell_type", _code(CellType)),
            Column(
                "cell_dose_millions", "cell_dose_millions", _decimal(Procedure, "cell_dose_millions"), required=False
            ),
            Column("carrier", "carrier", _code(Carrier), required=False, empty=""),
            Column("guidance", "guidance", _code(Guidance), required=False, empty=""),
        ),
        key=("external_id",),
    ),
    FOLLOW_UPS: FileSpec(
        FOLLOW_UPS,
        VisitRow,
        (
            Column("procedure_id", "procedure_key", _text(Procedure, "external_id")),
            Column("visit", "visit", _code(Visit)),
            Column("due_on", "due_on", _date, required=False),
            Column("completed_on", "completed_on", _date, required=False),
        ),
        key=("procedure_key", "visit"),
    ),
    EVENTS: FileSpec(
        EVENTS,
        EventRow,
        (
            Column("event_id", "external_id", _text(AdverseEvent, "external_id")),
            Column("procedure_id", "procedure_key", _text(Procedure, "external_id")),
            Column("category", "category", _code(Category)),
            Column("term", "term", _text(AdverseEvent, "term")),
            Column("onset_on", "onset_on", _date),
            Column("grade", "grade", _int),
            Column("serious", "serious", _bool),
            Column("serious_criteria", None, _criteria, required=False, empty={}),
            # Empty outcome is the registry's own 'unknown'.
            Column("outcome", "outcome", _code(Outcome), required=False, empty=Outcome.UNKNOWN.value),
            Column("resolved_on", "resolved_on", _date, required=False),
            Column("relatedness", "causality_procedure", _code(Causality), required=False, empty=""),
        ),
        key=("external_id",),
    ),
}


@dataclass
class Parsed:
    """The folder's rows per file (duplicates and malformed rows left out) and the errors found."""

    folder: Path
    present: set[str] = field(default_factory=set)
    rows: dict[str, list] = field(default_factory=lambda: {name: [] for name in FILES})
    errors: list[RowError] = field(default_factory=list)


def read_folder(*, folder: Path) -> Parsed:
    """Return every present file of ``folder`` parsed; a wrong header stops all row checks."""
    parsed = Parsed(folder=folder)
    if not folder.is_dir():
        parsed.errors.append(RowError(str(folder), 0, "-", "Not a folder."))
        return parsed
    layouts = {}
    for name in FILES:
        path = folder / name
        if path.is_file():
            parsed.present.add(name)
            layouts[name] = _read_header(path, SPECS[name], parsed.errors)
    if not parsed.present:
        parsed.errors.append(
            RowError(str(folder), 0, "-", f"No import files found; expected any of {', '.join(FILES)}.")
        )
    if parsed.errors:
        # Rows read against a wrong header would only bury the real problem in noise.
        return parsed
    for name, layout in layouts.items():
        _read_rows(folder / name, SPECS[name], layout, parsed)
    return parsed


def _read_header(path: Path, spec: FileSpec, errors: list[RowError]) -> list[Column | None]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, strict=True), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        errors.append(RowError(spec.name, 1, "-", f"Unreadable header ({exc}); files must be UTF-8 CSV."))
        return []
    if not header:
        errors.append(RowError(spec.name, 1, "-", "The file is empty; the first line must be the header."))
        return []
    by_name = {c.name: c for c in spec.columns}
    names = [h.strip() for h in header]
    expected = ", ".join(by_name)
    for name in dict.fromkeys(names):  # each name once, in header order
        if name not in by_name:
            errors.append(RowError(spec.name, 1, name or "(blank)", f"Unknown column; the columns are {expected}."))
        elif names.count(name) > 1:
            errors.append(RowError(spec.name, 1, name, "The column appears more than once."))
    for name in by_name:
        if name not in names:
            errors.append(RowError(spec.name, 1, name, f"Missing column; the columns are {expected}."))
    return [by_name.get(name) for name in names]


def _read_rows(path: Path, spec: FileSpec, layout: list[Column], parsed: Parsed) -> None:
    name, row_class, key_attrs = spec.name, spec.row, spec.key
    rows, errors = parsed.rows[name], parsed.errors
    seen: dict[tuple, int] = {}
    width = len(layout)
    # Unpacked once: this loop runs for every cell of a million rows.
    plan = [(c.attr, c.parse, c.required, c.empty, c.name) for c in layout]
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, strict=True)
        next(reader)
        end = reader.line_num
        try:
            for cells in reader:
                # A quoted cell may span lines: the row starts where the previous one ended.
                line, end = end + 1, reader.line_num
                if not any(cells):
                    continue  # blank lines and spreadsheet rows of empty cells
                if len(cells) != width:
                    message = f"The row has {len(cells)} values; the header has {width}."
                    errors.append(RowError(name, line, "(row)", message))
                    continue
                values = {}
                for (attr, parse, required, empty, column), raw in zip(plan, cells, strict=True):
                    raw = raw.strip()
                    if not raw:
                        if required:
                            errors.append(RowError(name, line, column, "A value is required."))
                        value = empty
                    elif "\x00" in raw:
                        errors.append(RowError(name, line, column, "The cell contains a NUL character."))
                        value = None
                    else:
                        try:
                            value = parse(raw)
                        except ValueError as exc:
                            errors.append(RowError(name, line, column, str(exc)))
                            value = None
                    if attr is None:
                        values.update(value or {})
                    else:
                        values[attr] = value
                key = tuple(values[a] for a in key_attrs)
                if None not in key:
                    if key in seen:
                        label = "/".join(spec.column_of[a] for a in key_attrs)
                        message = f"Duplicate {label} {'/'.join(key)!r} (first on line {seen[key]})."
                        errors.append(RowError(name, line, spec.column_of[key_attrs[0]], message))
                        continue
                    seen[key] = line
                rows.append(row_class(line=line, **values))
        except (UnicodeDecodeError, csv.Error) as exc:
            message = f"Unreadable from here on ({exc}); files must be UTF-8 CSV."
            errors.append(RowError(name, end + 1, "-", message))
