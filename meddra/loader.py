"""Read an MSSO MedDRA ASCII release (MedAscii/*.asc) and load it as one new version, all or nothing.

Every file is read and checked before anything is written: field counts, 8-digit codes, flags,
duplicates and every code one file names in another. A malformed release is refused with the
file, line and column (field name) of each problem, and the database is left as it was. A
release that passes is written in one transaction with COPY.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from meddra.models import NAME_LENGTH, MeddraVersion

# The MSSO ASCII layouts: each line is these fields, each followed by '$' (so a line ends with '$').
LAYOUTS: dict[str, tuple[str, ...]] = {
    "soc.asc": (
        "soc_code",
        "soc_name",
        "soc_abbrev",
        "soc_whoart_code",
        "soc_harts_code",
        "soc_costart_sym",
        "soc_icd9_code",
        "soc_icd9cm_code",
        "soc_icd10_code",
        "soc_jart_code",
    ),
    "hlgt.asc": (
        "hlgt_code",
        "hlgt_name",
        "hlgt_whoart_code",
        "hlgt_harts_code",
        "hlgt_costart_sym",
        "hlgt_icd9_code",
        "hlgt_icd9cm_code",
        "hlgt_icd10_code",
        "hlgt_jart_code",
    ),
    "hlt.asc": (
        "hlt_code",
        "hlt_name",
        "hlt_whoart_code",
        "hlt_harts_code",
        "hlt_costart_sym",
        "hlt_icd9_code",
        "hlt_icd9cm_code",
        "hlt_icd10_code",
        "hlt_jart_code",
    ),
    "pt.asc": (
        "pt_code",
        "pt_name",
        "null_field",
        "pt_soc_code",
        "pt_whoart_code",
        "pt_harts_code",
        "pt_costart_sym",
        "pt_icd9_code",
        "pt_icd9cm_code",
        "pt_icd10_code",
        "pt_jart_code",
    ),
    "llt.asc": (
        "llt_code",
        "llt_name",
        "pt_code",
        "llt_whoart_code",
        "llt_harts_code",
        "llt_costart_sym",
        "llt_icd9_code",
        "llt_icd9cm_code",
        "llt_icd10_code",
        "llt_currency",
        "llt_jart_code",
    ),
    "hlt_pt.asc": ("hlt_code", "pt_code"),
    "hlgt_hlt.asc": ("hlgt_code", "hlt_code"),
    "soc_hlgt.asc": ("soc_code", "hlgt_code"),
    "mdhier.asc": (
        "pt_code",
        "hlt_code",
        "hlgt_code",
        "soc_code",
        "pt_name",
        "hlt_name",
        "hlgt_name",
        "soc_name",
        "soc_abbrev",
        "null_field",
        "pt_soc_code",
        "primary_soc_fg",
    ),
}
FILES = tuple(LAYOUTS)

# The columns holding names (required text) and flags (allowed values); _CODES below: codes (8 digits).
_NAMES = ("soc_name", "hlgt_name", "hlt_name", "pt_name", "llt_name")
_FLAGS = {"llt_currency": ("Y", "N"), "primary_soc_fg": ("Y", "N")}
_ABBREV_LENGTH = 16
_CODE = re.compile(r"[0-9]{8}")
_VERSION = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})")
MAX_ERRORS = 50


def _optional(column: str) -> bool:
    """Return True for the legacy cross-reference columns (WHO-ART, HARTS, COSTART, ICD, J-ART): kept blank or not."""
    return any(tag in column for tag in ("whoart", "harts", "costart", "icd9", "icd10", "jart"))


# Per file: the columns holding MedDRA codes, which must be 8 digits.
_CODES = {
    name: tuple(c for c in layout if c.endswith("_code") and not _optional(c)) for name, layout in LAYOUTS.items()
}


@dataclass(frozen=True)
class Problem:
    """One reason a release is refused: where (file, line, column) and what."""

    file: str
    line: int  # 1-based; 0 when the problem is the file itself
    column: str  # the MSSO field name; "-" when the problem is the file or the whole line
    message: str

    def __str__(self) -> str:
        where = self.file if self.line == 0 else f"{self.file}, line {self.line}, column {self.column}"
        return f"{where}: {self.message}"


class ReleaseRefused(Exception):
    """The release (or the version asked for) cannot be loaded; nothing was written."""

    def __init__(self, problems: list[Problem], total: int | None = None):
        self.problems = problems
        self.total = len(problems) if total is None else total
        super().__init__(self.report())

    def report(self) -> str:
        if len(self.problems) == 1 and self.problems[0].file == "--version":
            return f"Refused: {self.problems[0].message} Nothing was loaded."
        lines = [f"MedDRA release refused ({self.total} problem{'s' if self.total != 1 else ''}); nothing was loaded:"]
        lines += [f"  {p}" for p in self.problems]
        if self.total > len(self.problems):
            lines.append(f"  ... and {self.total - len(self.problems)} more")
        return "\n".join(lines)


@dataclass
class Summary:
    version: str
    counts: dict[str, int]
    seconds: float
    files: dict[str, dict] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{table}: {count} rows" for table, count in self.counts.items()]
        out.append(f"Loaded MedDRA {self.version} in {self.seconds:.2f} s.")
        return out


@dataclass
class _Row:
    line: int
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values[column]


class _Problems:
    def __init__(self):
        self.found: list[Problem] = []
        self.total = 0

    def add(self, file: str, line: int, column: str, message: str) -> None:
        self.total += 1
        if len(self.found) < MAX_ERRORS:
            self.found.append(Problem(file, line, column, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise ReleaseRefused(self.found, self.total)


def parse_version(version: str) -> tuple[int, int]:
    """Return (major, minor) of a MedDRA version such as "27.1"; raise ReleaseRefused otherwise."""
    found = _VERSION.fullmatch(version or "")
    if found is None:
        raise ReleaseRefused([Problem("--version", 0, "-", f"{version!r} is not a MedDRA version such as 27.1.")])
    return int(found.group(1)), int(found.group(2))


def _decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding): UTF-8 when the bytes are UTF-8, else latin-1 (as older releases ship)."""
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = data.decode("latin-1"), "latin-1"
    return text.removeprefix("\ufeff"), encoding


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _read(name: str, text: str, problems: _Problems) -> list[_Row]:
    """Return the rows of file ``name``; add a problem for each malformed field."""
    layout = LAYOUTS[name]
    rows = []
    for number, line in _lines(text):
        if not line.endswith("$"):
            problems.add(name, number, layout[-1], "the line does not end with '$' (MSSO ASCII lines end with '$').")
            continue
        fields = line[:-1].split("$")
        if len(fields) != len(layout):
            column = layout[len(fields)] if len(fields) < len(layout) else "-"
            problems.add(
                name,
                number,
                column,
                f"{len(fields)} fields, expected {len(layout)} ({'$'.join(layout)}$).",
            )
            continue
        values = dict(zip(layout, (f.strip() for f in fields), strict=True))
        bad = False
        for column in _CODES[name]:
            value = values[column]
            if not value.isdigit() or not value.isascii():
                problems.add(name, number, column, f"{value!r} is not a number (a MedDRA code is 8 digits).")
                bad = True
            elif not _CODE.fullmatch(value):
                problems.add(name, number, column, f"{value!r} is not 8 digits long (a MedDRA code is 8 digits).")
                bad = True
        for column in _NAMES:
            if column in values:
                if not values[column]:
                    problems.add(name, number, column, "the name is empty.")
                    bad = True
                elif len(values[column]) > NAME_LENGTH:
                    problems.add(name, number, column, f"the name is longer than {NAME_LENGTH} characters.")
                    bad = True
        if len(values.get("soc_abbrev", "")) > _ABBREV_LENGTH:
            problems.add(name, number, "soc_abbrev", f"the abbreviation is longer than {_ABBREV_LENGTH} characters.")
            bad = True
        for column, allowed in _FLAGS.items():
            if column in values and values[column] not in allowed:
                problems.add(name, number, column, f"{values[column]!r} is not one of {', '.join(allowed)}.")
                bad = True
        if not bad:
            rows.append(_Row(number, values))
    return rows


def _index(name: str, rows: Iterable[_Row], key: tuple[str, ...], problems: _Problems) -> dict[tuple, _Row]:
    """Return ``rows`` by ``key``; add a problem for each repeated key."""
    found: dict[tuple, _Row] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        if k in found:
            problems.add(name, row.line, key[0], f"repeats {'/'.join(k)} (first on line {found[k].line}).")
        else:
            found[k] = row
    return found


def _refer(name: str, rows: Iterable[_Row], column: str, known, target: str, problems: _Problems) -> None:
    """Add a problem for each row whose ``column`` names a code that ``target`` does not hold."""
    for row in rows:
        if (row[column],) not in known:
            problems.add(name, row.line, column, f"code {row[column]} is not in {target}.")


@dataclass
class Release:
    """A checked release: the rows of each file, ready to be written."""

    rows: dict[str, list[_Row]]
    files: dict[str, dict]


def read_release(directory: Path) -> Release:
    """Return the checked release in ``directory``; raise ReleaseRefused listing every problem found."""
    problems = _Problems()
    directory = Path(directory)
    if not directory.is_dir():
        raise ReleaseRefused([Problem(str(directory), 0, "-", "is not a folder.")])
    rows: dict[str, list[_Row]] = {}
    files: dict[str, dict] = {}
    for name in FILES:
        path = _find(directory, name)
        if path is None:
            problems.add(name, 0, "-", f"the file is missing from {directory}.")
            continue
        data = path.read_bytes()
        text, encoding = _decode(data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "encoding": encoding}
        rows[name] = _read(name, text, problems)
    problems.raise_if_any()  # references are checked between well-formed files only

    soc = _index("soc.asc", rows["soc.asc"], ("soc_code",), problems)
    hlgt = _index("hlgt.asc", rows["hlgt.asc"], ("hlgt_code",), problems)
    hlt = _index("hlt.asc", rows["hlt.asc"], ("hlt_code",), problems)
    pt = _index("pt.asc", rows["pt.asc"], ("pt_code",), problems)
    _index("llt.asc", rows["llt.asc"], ("llt_code",), problems)
    for name, key in (
        ("hlt_pt.asc", ("hlt_code", "pt_code")),
        ("hlgt_hlt.asc", ("hlgt_code", "hlt_code")),
        ("soc_hlgt.asc", ("soc_code", "hlgt_code")),
        ("mdhier.asc", ("pt_code", "hlt_code", "hlgt_code", "soc_code")),
    ):
        _index(name, rows[name], key, problems)

    _refer("pt.asc", rows["pt.asc"], "pt_soc_code", soc, "soc.asc", problems)
    _refer("llt.asc", rows["llt.asc"], "pt_code", pt, "pt.asc", problems)
    _refer("hlt_pt.asc", rows["hlt_pt.asc"], "hlt_code", hlt, "hlt.asc", problems)
    _refer("hlt_pt.asc", rows["hlt_pt.asc"], "pt_code", pt, "pt.asc", problems)
    _refer("hlgt_hlt.asc", rows["hlgt_hlt.asc"], "hlgt_code", hlgt, "hlgt.asc", problems)
    _refer("hlgt_hlt.asc", rows["hlgt_hlt.asc"], "hlt_code", hlt, "hlt.asc", problems)
    _refer("soc_hlgt.asc", rows["soc_hlgt.asc"], "soc_code", soc, "soc.asc", problems)
    _refer("soc_hlgt.asc", rows["soc_hlgt.asc"], "hlgt_code", hlgt, "hlgt.asc", problems)
    for column, known, target in (
        ("pt_code", pt, "pt.asc"),
        ("hlt_code", hlt, "hlt.asc"),
        ("hlgt_code", hlgt, "hlgt.asc"),
        ("soc_code", soc, "soc.asc"),
        ("pt_soc_code", soc, "soc.asc"),
    ):
        _refer("mdhier.asc", rows["mdhier.asc"], column, known, target, problems)

    # The primary SOC of each PT: its mdhier rows flagged Y, naming one SOC, the one pt.asc names.
    primary_soc: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for row in rows["mdhier.asc"]:
        if row["primary_soc_fg"] != "Y":
            continue
        code = row["pt_code"]
        if code in primary_soc and primary_soc[code] != row["soc_code"]:
            problems.add(
                "mdhier.asc",
                row.line,
                "primary_soc_fg",
                f"PT {code} has a second primary SOC {row['soc_code']} "
                f"(line {first_line[code]} names {primary_soc[code]}).",
            )
            continue
        primary_soc.setdefault(code, row["soc_code"])
        first_line.setdefault(code, row.line)
    for (code,), row in pt.items():
        if code not in primary_soc:
            problems.add(
                "pt.asc", row.line, "pt_code", f"PT {code} has no primary SOC in mdhier.asc (primary_soc_fg Y)."
            )
        elif primary_soc[code] != row["pt_soc_code"]:
            problems.add(
                "pt.asc",
                row.line,
                "pt_soc_code",
                f"names SOC {row['pt_soc_code']}, but mdhier.asc line {first_line[code]} gives PT {code} "
                f"the primary SOC {primary_soc[code]}.",
            )
    problems.raise_if_any()
    return Release(rows=rows, files=files)


def _find(directory: Path, name: str) -> Path | None:
    """Return the file ``name`` in ``directory`` (any letter case: some media ship LLT.ASC), or None."""
    exact = directory / name
    if exact.is_file():
        return exact
    for path in directory.iterdir():
        if path.name.lower() == name and path.is_file():
            return path
    return None


# Table, its columns after version_id, and the file columns that fill them.
_TARGETS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("soc", "meddra_soc", ("code", "name", "abbrev"), ("soc_code", "soc_name", "soc_abbrev")),
    ("hlgt", "meddra_hlgt", ("code", "name"), ("hlgt_code", "hlgt_name")),
    ("hlt", "meddra_hlt", ("code", "name"), ("hlt_code", "hlt_name")),
    ("pt", "meddra_pt", ("code", "name", "primary_soc_code"), ("pt_code", "pt_name", "pt_soc_code")),
    ("llt", "meddra_llt", ("code", "name", "pt_code", "currency"), ("llt_code", "llt_name", "pt_code", "llt_currency")),
    ("hlt_pt", "meddra_hlt_pt", ("hlt_code", "pt_code"), ("hlt_code", "pt_code")),
    ("hlgt_hlt", "meddra_hlgt_hlt", ("hlgt_code", "hlt_code"), ("hlgt_code", "hlt_code")),
    ("soc_hlgt", "meddra_soc_hlgt", ("soc_code", "hlgt_code"), ("soc_code", "hlgt_code")),
    (
        "mdhier",
        "meddra_mdhier",
        (
            "pt_code",
            "hlt_code",
            "hlgt_code",
            "soc_code",
            "pt_name",
            "hlt_name",
            "hlgt_name",
            "soc_name",
            "soc_abbrev",
            "pt_soc_code",
            "primary_soc_fg",
        ),
        (
            "pt_code",
            "hlt_code",
            "hlgt_code",
            "soc_code",
            "pt_name",
            "hlt_name",
            "hlgt_name",
            "soc_name",
            "soc_abbrev",
            "pt_soc_code",
            "primary_soc_fg",
        ),
    ),
)


def _already_loaded(version: str) -> ReleaseRefused:
    stored = MeddraVersion.objects.filter(version=version).first()
    when = f" on {timezone.localtime(stored.loaded_at):%Y-%m-%d %H:%M}" if stored is not None else ""
    return ReleaseRefused(
        [Problem("--version", 0, "-", f"MedDRA {version} is already loaded{when}; a loaded version is never changed.")]
    )


def load_release(*, directory: Path, version: str, user=None) -> Summary:
    """Return what was loaded after loading the release in ``directory`` as MedDRA ``version``.

    Raises ReleaseRefused (nothing written) when the version is malformed or already loaded, or
    when any file is missing or malformed.
    """
    started = time.perf_counter()
    major, minor = parse_version(version)
    version = f"{major}.{minor}"  # "27.01" is 27.1
    if MeddraVersion.objects.filter(version=version).exists():
        raise _already_loaded(version)
    release = read_release(Path(directory))
    counts = {label: len(release.rows[f"{label}.asc"]) for label, *_ in _TARGETS}
    try:
        with transaction.atomic():
            stored = MeddraVersion.objects.create(
                version=version,
                major=major,
                minor=minor,
                loaded_at=timezone.now(),
                loaded_by=user,
                source=str(Path(directory).resolve()),
                files=release.files,
                counts=counts,
            )
            with connection.cursor() as cursor:
                for label, table, columns, source in _TARGETS:
                    with cursor.copy(f"COPY {table} (version_id, {', '.join(columns)}) FROM STDIN") as copy:
                        for row in release.rows[f"{label}.asc"]:
                            copy.write_row((stored.pk, *(row[c] for c in source)))
                # The loaded tables grew at once: give the planner their sizes before anyone codes against them.
                for _label, table, _columns, _source in _TARGETS:
                    cursor.execute(f"ANALYZE {table}")
    except IntegrityError as exc:
        if MeddraVersion.objects.filter(version=version).exists():  # a concurrent load of the same version won
            raise _already_loaded(version) from exc
        raise
    return Summary(version=version, counts=counts, seconds=time.perf_counter() - started, files=release.files)
