"""The import format's optional columns (docs/import-format.md): old files import as before, new ones set the fields."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from registry.models import Clinic, Patient, Procedure

pytestmark = pytest.mark.django_db

GOOD = Path(__file__).parent / "import_fixtures" / "good"
NEW_PROCEDURE_COLUMNS = ("processing", "product_lot", "target", "volume_ml")


@pytest.fixture
def folder(tmp_path) -> Path:
    """Return a writable copy of the good folder (written in the format's first version)."""
    return Path(shutil.copytree(GOOD, tmp_path / "import"))


def run(path: Path) -> str:
    out = io.StringIO()
    call_command("import_registry", str(path), stdout=out)
    return out.getvalue()


def refused(path: Path) -> str:
    with pytest.raises(CommandError) as caught:
        run(path)
    return str(caught.value)


def add_columns(path: Path, file: str, **columns: dict[int, str]) -> None:
    """Append columns to ``file``; each maps a physical line (header = 1) to its cell, other cells empty."""
    with (path / file).open(newline="") as fh:
        rows = list(csv.reader(fh))
    for name, cells in columns.items():
        rows[0].append(name)
        for line, row in enumerate(rows[1:], start=2):
            row.append(cells.get(line, ""))
    with (path / file).open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def procedure_extras(external_id: str) -> tuple:
    return tuple(Procedure.objects.values_list(*NEW_PROCEDURE_COLUMNS).get(external_id=external_id))


def test_the_fixtures_are_written_in_the_formats_first_version():
    with (GOOD / "procedures.csv").open() as fh:
        header = fh.readline().strip().split(",")
    assert not set(NEW_PROCEDURE_COLUMNS) & set(header)


def test_a_folder_with_the_old_headers_imports_as_before(folder):
    output = run(folder)

    for line in (
        "clinics.csv: 2 created, 0 updated, 0 unchanged",
        "patients.csv: 3 created, 0 updated, 0 unchanged",
        "procedures.csv: 4 created, 0 updated, 0 unchanged",
        "follow-up schedule: 40 visits created, 0 rescheduled",
    ):
        assert line in output
    knee = Procedure.objects.get(external_id="PR-1001")
    assert (knee.cell_dose_millions, knee.carrier, knee.guidance) == (Decimal("25.50"), "saline", "ultrasound")
    assert {procedure_extras(p.external_id) for p in Procedure.objects.all()} == {("", "", "", None)}
    assert set(Clinic.objects.values_list("accreditation_body", "accreditation_expires_on")) == {("", None)}
    assert set(Patient.objects.values_list("death_cause", flat=True)) == {""}


def test_old_headers_keep_what_was_entered_in_the_registry(folder):
    run(folder)
    Procedure.objects.filter(external_id="PR-1001").update(
        processing="minimally_manipulated", product_lot="LOT-7", target="intra_articular", volume_ml=Decimal("4.00")
    )
    Clinic.objects.filter(code="ES-MAD-01").update(
        accreditation_body="ONT", accreditation_expires_on=dt.date(2027, 1, 31)
    )
    Patient.objects.filter(registry_id="P-AAAA000001").update(death_cause="unrelated: stroke")

    output = run(folder)

    assert "clinics.csv: 0 created, 0 updated, 2 unchanged" in output
    assert "patients.csv: 0 created, 0 updated, 3 unchanged" in output
    assert "procedures.csv: 0 created, 0 updated, 4 unchanged" in output
    assert procedure_extras("PR-1001") == ("minimally_manipulated", "LOT-7", "intra_articular", Decimal("4.00"))
    clinic = Clinic.objects.get(code="ES-MAD-01")
    assert (clinic.accreditation_body, clinic.accreditation_expires_on) == ("ONT", dt.date(2027, 1, 31))
    assert Patient.objects.get(registry_id="P-AAAA000001").death_cause == "unrelated: stroke"


def test_the_new_columns_set_the_fields(folder):
    add_columns(
        folder,
        "procedures.csv",
        processing={2: "minimally_manipulated", 5: "culture_expanded"},
        product_lot={2: "LOT-2022-001"},
        target={2: "intra_articular", 4: "disc"},
        volume_ml={2: "4.5", 5: "12"},
    )
    add_columns(folder, "clinics.csv", accreditation_body={2: "ONT, Madrid"}, accreditation_expires={2: "2027-01-31"})
    add_columns(folder, "patients.csv", death_cause={3: "unrelated: stroke"})

    output = run(folder)

    assert "procedures.csv: 4 created, 0 updated, 0 unchanged" in output
    assert procedure_extras("PR-1001") == ("minimally_manipulated", "LOT-2022-001", "intra_articular", Decimal("4.50"))
    assert procedure_extras("PR-1002") == ("", "", "", None)
    assert procedure_extras("PR-1003") == ("", "", "disc", None)
    assert procedure_extras("PR-2001") == ("culture_expanded", "", "", Decimal("12.00"))
    madrid = Clinic.objects.get(code="ES-MAD-01")
    assert (madrid.accreditation_body, madrid.accreditation_expires_on) == ("ONT, Madrid", dt.date(2027, 1, 31))
    berlin = Clinic.objects.get(code="DE-BER-02")
    assert (berlin.accreditation_body, berlin.accreditation_expires_on) == ("", None)
    assert Patient.objects.get(registry_id="P-AAAA000002").death_cause == "unrelated: stroke"


def test_a_file_that_carries_a_new_column_is_authoritative_for_it(folder):
    run(folder)
    Procedure.objects.filter(external_id="PR-1002").update(product_lot="LOT-OLD", volume_ml=Decimal("3.00"))
    add_columns(folder, "procedures.csv", product_lot={2: "LOT-NEW"}, volume_ml={3: "3"})

    output = run(folder)

    # PR-1001 gains a lot; PR-1002's lot is cleared by its empty cell; its volume is the same.
    assert "procedures.csv: 0 created, 2 updated, 2 unchanged" in output
    assert procedure_extras("PR-1001") == ("", "LOT-NEW", "", None)
    assert procedure_extras("PR-1002") == ("", "", "", Decimal("3.00"))


@pytest.mark.parametrize(
    ("file", "line", "column", "value", "message"),
    [
        ("procedures.csv", 2, "processing", "expanded", "Unknown code 'expanded'; allowed: minimally_manipulated"),
        ("procedures.csv", 3, "target", "knee", "Unknown code 'knee'; allowed: intra_articular, disc, facet"),
        ("procedures.csv", 4, "volume_ml", "4,5", "Not a decimal number (e.g. 12.5): '4,5'."),
        ("procedures.csv", 4, "volume_ml", "1.255", "Ensure that there are no more than 2 decimal places."),
        ("procedures.csv", 5, "volume_ml", "0", "Volume must be greater than zero."),
        ("procedures.csv", 2, "product_lot", "L" * 65, "At most 64 characters, got 65."),
        ("procedures.csv", 3, "product_lot", "LOT\u200b7", "U+200B"),
        ("clinics.csv", 2, "accreditation_expires", "31/01/2027", "Not a date in the form YYYY-MM-DD: '31/01/2027'."),
        ("clinics.csv", 3, "accreditation_body", "B" * 121, "At most 120 characters, got 121."),
        ("patients.csv", 2, "death_cause", "stroke\u202e", "U+202E"),
    ],
)
def test_a_bad_value_in_a_new_column_names_file_line_and_column(folder, file, line, column, value, message):
    add_columns(folder, file, **{column: {line: value}})

    report = refused(folder)

    assert f"{file} line {line}, column {column}: " in report
    assert message in report.split(f"{file} line {line}, column {column}: ", 1)[1].splitlines()[0]
    assert Procedure.objects.count() == 0


def test_expanded_cells_need_expanded_processing_in_the_file_too(folder):
    # PR-2001 is bm_msc_expanded.
    add_columns(folder, "procedures.csv", processing={5: "minimally_manipulated"})

    assert (
        "procedures.csv line 5, column processing: Culture-expanded cell types must have culture-expanded processing."
        in refused(folder)
    )


def test_an_unknown_column_is_still_refused_and_the_message_lists_the_optional_ones(folder):
    add_columns(folder, "procedures.csv", lot={2: "LOT-1"})

    report = refused(folder)

    assert "procedures.csv line 1, column lot: Unknown column; the columns are procedure_id," in report
    assert "(and optionally processing, product_lot, target, volume_ml)." in report
    assert Procedure.objects.count() == 0


def test_a_new_column_named_twice_is_refused(folder):
    add_columns(folder, "clinics.csv", accreditation_body={2: "ONT"})
    with (folder / "clinics.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows[0].append("accreditation_body")
    for row in rows[1:]:
        row.append("")
    with (folder / "clinics.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)

    assert "clinics.csv line 1, column accreditation_body: The column appears more than once." in refused(folder)


def test_a_stored_procedure_is_checked_with_the_processing_the_file_gives_it(folder):
    run(folder)
    Procedure.objects.filter(external_id="PR-1001").update(processing="minimally_manipulated")
    with (folder / "procedures.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows[1][rows[0].index("cell_type")] = "bm_msc_expanded"
    with (folder / "procedures.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    add_columns(folder, "procedures.csv", processing={2: "culture_expanded"})

    assert "procedures.csv: 0 created, 1 updated, 3 unchanged" in run(folder)
    assert procedure_extras("PR-1001")[0] == "culture_expanded"


def test_an_older_file_is_checked_with_the_stored_processing(folder):
    run(folder)
    Procedure.objects.filter(external_id="PR-1001").update(processing="minimally_manipulated")
    with (folder / "procedures.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows[1][rows[0].index("cell_type")] = "bm_msc_expanded"
    with (folder / "procedures.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)

    assert (
        "procedures.csv line 2, column processing: Culture-expanded cell types must have culture-expanded processing."
        in refused(folder)
    )


def test_an_older_patients_file_is_checked_with_the_stored_cause_of_death(folder):
    run(folder)
    Patient.objects.filter(registry_id="P-AAAA000003").update(
        death_date=dt.date(2023, 1, 1), death_cause="unrelated: stroke"
    )
    with (folder / "patients.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows[3][rows[0].index("death_date")] = "2023-01-01"
    with (folder / "patients.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)

    assert "patients.csv: 0 created, 0 updated, 3 unchanged" in run(folder)
    assert Patient.objects.get(registry_id="P-AAAA000003").death_cause == "unrelated: stroke"
