"""Return the rows of an import folder, parsed cell by cell and a chunk at a time, with every parse error found.

This module knows the public CSV format (docs/import-format.md): the files, their
columns, how a cell becomes a value and which cells are required. It touches no
database; intake.importer.check holds each chunk of rows against the other rows,
the stored rows and the rule functions, and stages it.

Row objects are slotted dataclasses whose attribute names are the model field
names, so the rule functions in registry.rules and events.rules read them as they
read model instances. Where a rule compares clinics (``clinic_id``) the row holds
the clinic's code: before anything is written, the code is the clinic's identity.
Each row also carries ``refused``, the columns already reported as unreadable, so
that no rule blames a cell a second time for a value it never had.

Columns added to the format later (``Column.may_be_absent``) may be left out of a
header: a file written for the older format imports as it always did, its rows carry
the model's default for the missing column, and a stored record keeps its own value
(write.py updates only the columns a file carries).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator

from core.text import SafeFreeTextValidator, SafeIdentifierValidator, validate_safe_free_text, validate_safe_identifier
from events.choices import SERIOUS_CRITERIA, Category, Causality, Outcome
from events.models import AdverseEvent
from intake.importer.errors import FILES, ErrorList, RowError
from registry.choices import Carrier, CellSource, CellType, Guidance, Laterality, Processing, Sex, Site, Target, Visit
from registry.models import Clinic, Patient, Procedure

CLINICS, PATIENTS, PROCEDURES, FOLLOW_UPS, EVENTS = FILES


@dataclass(slots=True)
class ClinicRow:
    line: int
    refused: set[str] = field(default_factory=set)  # columns reported unreadable
    code: str | None = None
    name: str | None = None
    country: str | None = None
    city: str = ""
    gmp_certified: bool | None = None
    accreditation_body: str = ""
    accreditation_expires_on: dt.date | None = None


@dataclass(slots=True)
class PatientRow:
    line: int
    refused: set[str] = field(default_factory=set)  # columns reported unreadable
    registry_id: str | None = None
    clinic_id: str | None = None  # the clinic's code
    sex: str | None = None
    birth_year: int | None = None
    enrolled_on: dt.date | None = None
    withdrawn_on: dt.date | None = None
    death_date: dt.date | None = None
    death_cause: str = ""


@dataclass(slots=True)
class ProcedureRow:
    line: int
    refused: set[str] = field(default_factory=set)  # columns reported unreadable
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
    processing: str = ""
    product_lot: str = ""
    target: str = ""
    volume_ml: Decimal | None = None


@dataclass(slots=True)
class VisitRow:
    line: int
    refused: set[str] = field(default_factory=set)  # columns reported unreadable
    procedure_key: str | None = None  # the procedure's external id
    visit: str | None = None
    due_on: dt.date | None = None
    completed_on: dt.date | None = None
    window_start: dt.date | None = None
    window_end: dt.date | None = None


@dataclass(slots=True)
class EventRow:
    line: int
    refused: set[str] = field(default_factory=set)  # columns reported unreadable
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
    model_field = model._meta.get_field(name)
    max_length = model_field.max_length
    # The model's own validators run too (the admin and the API run them), except those this
    # module applies itself with its own wording: the length, and invisible characters (_unsafe).
    own = (MaxLengthValidator, SafeIdentifierValidator, SafeFreeTextValidator)
    validators = [v for v in model_field.validators if not isinstance(v, own)]

    def parse(raw: str) -> str:
        if len(raw) > max_length:
            raise ValueError(f"At most {max_length} characters, got {len(raw)}.")
        for validator in validators:
            try:
                validator(raw)
            except ValidationError as exc:
                raise ValueError(" ".join(exc.messages)) from None
        return raw

    return parse


def _unsafe(raw: str, *, free_text: bool) -> str | None:
    """Return why ``raw`` may not be stored (a control, bidi or zero-width character), or None.

    The same validators the models declare (core.text): ids and codes refuse every invisible
    character; free text keeps tabs and line breaks. They refuse NUL too, which PostgreSQL
    cannot store in text.
    """
    try:
        (validate_safe_free_text if free_text else validate_safe_identifier)(raw)
    except ValidationError as exc:
        return " ".join(exc.messages)
    return None


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
    # Every row is staged, bad ones too (others may refer to them): keep within PostgreSQL's integer.
    if len(raw) > 9:
        raise ValueError(f"Not a plausible number: {raw!r}.")
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
    free_text: bool = False  # may keep tabs and line breaks; every other cell is an id, a code or a value
    # Added to the format later: a header may leave it out (older files keep working), and then
    # a stored record keeps its value. A header that names it makes the file authoritative for it.
    may_be_absent: bool = False


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
            Column("name", "name", _text(Clinic, "name"), free_text=True),
            Column("country", "country", _text(Clinic, "country")),
            Column("city", "city", _text(Clinic, "city"), required=False, empty="", free_text=True),
            Column("gmp_certified", "gmp_certified", _bool),
            Column(
                "accreditation_body",
                "accreditation_body",
                _text(Clinic, "accreditation_body"),
                required=False,
                empty="",
                free_text=True,
                may_be_absent=True,
            ),
            Column("accreditation_expires", "accreditation_expires_on", _date, required=False, may_be_absent=True),
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
            Column(
                "death_cause",
                "death_cause",
                _text(Patient, "death_cause"),
                required=False,
                empty="",
                free_text=True,
                may_be_absent=True,
            ),
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
            Column("processing", "processing", _code(Processing), required=False, empty="", may_be_absent=True),
            Column(
                "product_lot",
                "product_lot",
                _text(Procedure, "product_lot"),
                required=False,
                empty="",
                may_be_absent=True,
            ),
            Column("target", "target", _code(Target), required=False, empty="", may_be_absent=True),
            Column(
                "volume_ml",
                "volume_ml",
                _decimal(Procedure, "volume_ml"),
                required=False,
                may_be_absent=True,
            ),
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
            Column("term", "term", _text(AdverseEvent, "term"), free_text=True),
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


def read_headers(*, folder: Path, errors: ErrorList) -> dict[str, list[Column | None]]:
    """Return the column layout of each file present in ``folder``; header problems go to ``errors``."""
    layouts: dict[str, list[Column | None]] = {}
    if not folder.is_dir():
        errors.add(RowError(str(folder), 0, "-", "Not a folder."))
        return layouts
    for name in FILES:
        path = folder / name
        if path.is_file():
            layouts[name] = _read_header(path, SPECS[name], errors)
    if not layouts:
        errors.add(RowError(str(folder), 0, "-", f"No import files found; expected any of {', '.join(FILES)}."))
    return layouts


def _read_header(path: Path, spec: FileSpec, errors: ErrorList) -> list[Column | None]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, strict=True), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        errors.add(RowError(spec.name, 1, "-", f"Unreadable header ({exc}); files must be UTF-8 CSV."))
        return []
    if not header:
        errors.add(RowError(spec.name, 1, "-", "The file is empty; the first line must be the header."))
        return []
    by_name = {c.name: c for c in spec.columns}
    names = [h.strip() for h in header]
    expected = ", ".join(n for n, c in by_name.items() if not c.may_be_absent)
    if optional := [n for n, c in by_name.items() if c.may_be_absent]:
        expected += f" (and optionally {', '.join(optional)})"
    for name in dict.fromkeys(names):  # each name once, in header order
        if name not in by_name:
            shown = name if _unsafe(name, free_text=False) is None else ascii(name)
            errors.add(RowError(spec.name, 1, shown or "(blank)", f"Unknown column; the columns are {expected}."))
        elif names.count(name) > 1:
            errors.add(RowError(spec.name, 1, name, "The column appears more than once."))
    for name, column in by_name.items():
        if name not in names and not column.may_be_absent:
            errors.add(RowError(spec.name, 1, name, f"Missing column; the columns are {expected}."))
    return [by_name.get(name) for name in names]


def left_out(spec: FileSpec, layout: list[Column | None]) -> set[str]:
    """Return the row attributes of the columns a file with ``layout`` leaves out (those it may leave out)."""
    given = {c.attr for c in layout if c is not None}
    return {c.attr for c in spec.columns if c.may_be_absent and c.attr not in given}


def read_chunks(path: Path, spec: FileSpec, layout: list[Column], errors: ErrorList, size: int) -> Iterator[list]:
    """Return the file's rows, parsed, in lists of at most ``size``; cell errors go to ``errors``.

    Only one chunk is ever held, so memory does not grow with the file. A row with a bad
    cell is still returned (that cell None, its column in ``row.refused``): other rows may
    refer to it, and its other cells are still checked.
    """
    name, row_class = spec.name, spec.row
    width = len(layout)
    # Unpacked once: this loop runs for every cell of a million rows.
    plan = [(c.attr, c.parse, c.required, c.empty, c.name, c.free_text) for c in layout]
    chunk: list = []
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
                    errors.add(RowError(name, line, "(row)", message))
                    continue
                # Printable ASCII holds no invisible character: one test clears almost every row.
                joined = "".join(cells)
                clean = joined.isascii() and joined.isprintable()
                values = {}
                refused = set()
                for (attr, parse, required, empty, column, free_text), raw in zip(plan, cells, strict=True):
                    raw = raw.strip()
                    if not raw:
                        if required:
                            errors.add(RowError(name, line, column, "A value is required."))
                            refused.add(column)
                        value = empty
                    elif not clean and (message := _unsafe(raw, free_text=free_text)):
                        errors.add(RowError(name, line, column, message))
                        refused.add(column)
                        value = None
                    else:
                        try:
                            value = parse(raw)
                        except ValueError as exc:
                            errors.add(RowError(name, line, column, str(exc)))
                            refused.add(column)
                            value = None
                    if attr is None:
                        values.update(value or {})
                    else:
                        values[attr] = value
                chunk.append(row_class(line=line, refused=refused, **values))
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
        except (UnicodeDecodeError, csv.Error) as exc:
            message = f"Unreadable from here on ({exc}); files must be UTF-8 CSV."
            errors.add(RowError(name, end + 1, "-", message))
    if chunk:
        yield chunk
