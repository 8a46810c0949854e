"""Return staged rows: the import's temporary tables, and the COPY that fills them a chunk at a time.

Every row read from the folder goes into a temporary table of its file (with its line),
checked or not: later files refer to it, the checks across rows run on these tables in
SQL, and intake.importer.write reaches the registry's tables from them. Python holds
one chunk at a time, so memory does not grow with the folder.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from events.choices import SERIOUS_CRITERIA
from intake.importer.read import CLINICS, EVENTS, FOLLOW_UPS, PATIENTS, PROCEDURES

FLAGS = tuple(SERIOUS_CRITERIA.values())

# file -> (staging table, its columns with types); "line" is the row's physical line in the file.
# A column a file may leave out is staged all the same (with the row's default): write.py then
# inserts that default and leaves the stored value alone.
TABLES = {
    CLINICS: (
        "import_clinic",
        "line int, code text, name text, country text, city text, gmp_certified boolean, accreditation_body text,"
        " accreditation_expires_on date",
    ),
    PATIENTS: (
        "import_patient",
        # death_first: the death date written with the row; death_date: the one it ends with (see write.py).
        "line int, registry_id text, clinic_code text, sex text, birth_year int, enrolled_on date,"
        " withdrawn_on date, death_first date, death_date date, refused text[], death_cause text",
    ),
    PROCEDURES: (
        "import_procedure",
        "line int, external_id text, patient_key text, clinic_code text, performed_on date, site text,"
        " laterality text, cell_source text, cell_type text, cell_dose_millions numeric, carrier text, guidance text,"
        " processing text, product_lot text, target text, volume_ml numeric",
    ),
    FOLLOW_UPS: (
        "import_visit",
        # from_file false: an open stored visit rescheduled because its procedure moved.
        "line int, procedure_key text, visit text, due_on date, window_start date, window_end date,"
        " completed_on date, from_file boolean",
    ),
    EVENTS: (
        "import_event",
        "line int, external_id text, procedure_key text, category text, term text, onset_on date, grade int,"
        f" serious boolean, {', '.join(f + ' boolean' for f in FLAGS)}, outcome text, resolved_on date,"
        " causality_procedure text",
    ),
}
# The look-ups of later files by key (references) and write.py's joins need these indexes,
# built once a file is staged (cheaper than keeping them up to date through the COPY).
_INDEXES = {
    CLINICS: ["code"],
    PATIENTS: ["registry_id"],
    PROCEDURES: ["external_id"],
    FOLLOW_UPS: ["procedure_key, visit"],
    EVENTS: ["external_id"],
}


def table(name: str) -> str:
    """Return the staging table of file ``name``."""
    return TABLES[name][0]


def _values(name: str, r) -> tuple:
    if name == CLINICS:
        return (r.line, r.code, r.name, r.country, r.city, r.gmp_certified, r.accreditation_body,
                r.accreditation_expires_on)  # fmt: skip
    if name == PATIENTS:
        refused = sorted(r.refused)
        return (r.line, r.registry_id, r.clinic_id, r.sex, r.birth_year, r.enrolled_on, r.withdrawn_on,
                r.death_date, r.death_date, refused, r.death_cause)  # fmt: skip
    if name == PROCEDURES:
        return (r.line, r.external_id, r.patient_key, r.clinic_id, r.performed_on, r.site, r.laterality,
                r.cell_source, r.cell_type, r.cell_dose_millions, r.carrier, r.guidance, r.processing, r.product_lot,
                r.target, r.volume_ml)  # fmt: skip
    if name == FOLLOW_UPS:
        return (r.line, r.procedure_key, r.visit, r.due_on, r.window_start, r.window_end, r.completed_on, True)
    return (r.line, r.external_id, r.procedure_key, r.category, r.term, r.onset_on, r.grade, r.serious,
            *(getattr(r, f) for f in FLAGS), r.outcome, r.resolved_on, r.causality_procedure)  # fmt: skip


# file -> (registry table, key column = row attribute) of the records whose columns a file may leave out.
_STORED = {
    CLINICS: ("registry_clinic", "code"),
    PATIENTS: ("registry_patient", "registry_id"),
    PROCEDURES: ("registry_procedure", "external_id"),
}


def fill_left_out(cursor, name: str, rows: list, attrs: Collection[str]) -> None:
    """Give the rows of stored records the stored values of ``attrs`` (columns file ``name`` leaves out).

    A row then stands for the record as it will be after the import, so the rules read the
    stored processing or cause of death that an older file does not carry (one look-up by key
    per chunk, and none for a file that carries every column). write.py leaves these columns
    alone all the same; rows of new records keep the default.
    """
    if not attrs:
        return
    stored_table, key = _STORED[name]
    attrs = sorted(attrs)
    keys = [k for r in rows if (k := getattr(r, key)) is not None]
    if not keys:
        return
    cursor.execute(
        f"SELECT {key}, {', '.join(attrs)} FROM {stored_table} WHERE {key} = ANY(%s)",  # noqa: S608 - constants
        [keys],
    )
    stored = {k: values for k, *values in cursor.fetchall()}
    for r in rows:
        values = stored.get(getattr(r, key))
        if values is not None:
            for attr, value in zip(attrs, values, strict=True):
                setattr(r, attr, value)


def create_tables(cursor) -> None:
    """Create the empty staging tables (dropped at commit) and set the transaction up for the import."""
    # pghistory attaches its context by prefixing statements run through Django's cursor;
    # COPY bypasses that wrapper. This ordinary statement sets the transaction-local context
    # first, so any trigger fired later sees it (every INSERT/UPDATE of write.py carries it
    # again anyway). What it sets matters as much: every pgtrigger trigger first asks
    # _pgtrigger_should_ignore(), which raises and catches an error when pgtrigger.ignore is
    # unset; per row, over a million rows, that was most of the import's time and grew as the
    # transaction went on. An empty list ignores no trigger: all of them still fire.
    cursor.execute("SET LOCAL pgtrigger.ignore = '{}'")
    cursor.execute("SET LOCAL work_mem = '64MB'")  # the checks' and upserts' hash joins over staged rows
    for staging, columns in TABLES.values():
        # Dropped first: inside an enclosing transaction (a test) the previous import's tables live on.
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{staging}")
        cursor.execute(f"CREATE TEMP TABLE {staging} ({columns}) ON COMMIT DROP")
    # Procedures of the folder: the stored ones whose date moves (filled by fill_moved), and all
    # that get the full schedule (write.py).
    for staging, columns in (
        ("import_moved", "line int, external_id text, performed_on date, procedure_id bigint"),
        ("import_schedule", "external_id text"),
    ):
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{staging}")
        cursor.execute(f"CREATE TEMP TABLE {staging} ({columns}) ON COMMIT DROP")


def fill_moved(cursor) -> None:
    """Stage the stored procedures whose date the folder changes (usually none, or a few)."""
    cursor.execute(
        """INSERT INTO import_moved (line, external_id, performed_on, procedure_id)
           SELECT s.line, s.external_id, s.performed_on, pr.id
           FROM import_procedure s JOIN registry_procedure pr ON pr.external_id = s.external_id
           WHERE s.performed_on <> pr.performed_on"""
    )
    # The planner cannot guess how few rows "<>" keeps; with the count it joins them by index.
    cursor.execute("ANALYZE import_moved")


def copy_rows(cursor, name: str, rows: Iterable) -> None:
    """COPY ``rows`` (row objects of file ``name``) into its staging table."""
    with cursor.copy(f"COPY {table(name)} FROM STDIN") as copy:
        for r in rows:
            copy.write_row(_values(name, r))


def index(cursor, name: str) -> None:
    """Index file ``name``'s staging table and give the planner its row counts (no autovacuum on temp tables)."""
    staging = table(name)
    for i, key in enumerate(_INDEXES[name]):
        cursor.execute(f"CREATE INDEX {staging}_{i} ON {staging} ({key})")
    cursor.execute(f"ANALYZE {staging}")
