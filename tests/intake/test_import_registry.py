"""manage.py import_registry: the public CSV format, all-or-nothing checks, idempotency and audit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import override_settings
from pghistory.models import Events

import intake.importer
from core.text import unsafe_character_message, validate_safe_free_text
from events.models import AdverseEvent, AdverseEventEvent
from events.services import adverse_event_retract
from intake.importer import ImportRefused, stage
from intake.importer.errors import FILES
from intake.importer.read import PATIENTS, PatientRow
from intake.importer.write import write_staged
from registry.choices import VISIT_SCHEDULE, visit_window
from registry.models import (
    Clinic,
    FollowUpVisit,
    FollowUpVisitEvent,
    Patient,
    PatientEvent,
    Procedure,
    ProcedureEvent,
)
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

GOOD = Path(__file__).parent / "import_fixtures" / "good"
MODELS = (Clinic, Patient, Procedure, FollowUpVisit, AdverseEvent, PatientEvent, ProcedureEvent, AdverseEventEvent)


@pytest.fixture
def folder(tmp_path) -> Path:
    """Return a writable copy of the good folder."""
    return Path(shutil.copytree(GOOD, tmp_path / "import"))


def run(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_registry", str(path), *args, stdout=out)
    return out.getvalue()


def refused(path: Path, *args: str) -> str:
    with pytest.raises(CommandError) as caught:
        run(path, *args)
    return str(caught.value)


def set_cell(path: Path, file: str, line: int, column: str, value: str) -> None:
    """Set one cell; ``line`` is the physical line (header = 1) of a one-line row."""
    with (path / file).open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows[line - 1][rows[0].index(column)] = value
    with (path / file).open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def add_column(path: Path, file: str, column: str) -> None:
    """Add an empty optional column to every row of ``file``."""
    with (path / file).open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows = [[*rows[0], column], *([*row, ""] for row in rows[1:])]
    with (path / file).open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def add_row(path: Path, file: str, **values: str) -> int:
    """Append a row (missing columns empty) and return its line number."""
    with (path / file).open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows.append([values.get(column, "") for column in rows[0]])
    with (path / file).open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return len(rows)


def keep_only(path: Path, *files: str) -> None:
    for csv_file in path.iterdir():
        if csv_file.name not in files:
            csv_file.unlink()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


# --- a good folder -------------------------------------------------------------------------


def test_it_loads_a_good_folder_with_exact_counts(folder):
    output = run(folder)

    assert Clinic.objects.count() == 2
    assert Patient.objects.count() == 3
    assert Procedure.objects.count() == 4
    assert FollowUpVisit.objects.count() == 40
    assert FollowUpVisit.objects.filter(completed_on__isnull=False).count() == 5
    assert AdverseEvent.objects.count() == 4
    for line in (
        "clinics.csv: 2 created, 0 updated, 0 unchanged",
        "patients.csv: 3 created, 0 updated, 0 unchanged",
        "procedures.csv: 4 created, 0 updated, 0 unchanged",
        "follow_ups.csv: 5 created, 0 updated, 0 unchanged",
        "adverse_events.csv: 4 created, 0 updated, 0 unchanged",
        "follow-up schedule: 40 visits created, 0 rescheduled",
    ):
        assert line in output


def test_it_stores_vocabulary_codes_criteria_relatedness_and_external_ids(folder):
    run(folder)

    clinic = Clinic.objects.get(code="ES-MAD-01")
    assert (clinic.name, clinic.country, clinic.city, clinic.gmp_certified) == (
        "Clinica Rodilla Madrid",
        "ES",
        "Madrid",
        True,
    )
    assert Clinic.objects.get(code="DE-BER-02").gmp_certified is False
    patient = Patient.objects.get(registry_id="P-AAAA000002")
    assert (patient.sex, patient.birth_year, patient.enrolled_on, patient.withdrawn_on, patient.death_date) == (
        "M",
        1955,
        dt.date(2022, 4, 11),
        dt.date(2023, 6, 30),
        None,
    )
    spine = Procedure.objects.get(external_id="PR-1003")
    assert spine.patient == patient
    assert spine.clinic == clinic  # an empty clinic_code means the patient's clinic
    assert (spine.site, spine.laterality, spine.cell_source, spine.cell_type) == (
        "spine",
        "n/a",
        "allogeneic",
        "umbilical_cord_msc",
    )
    assert (spine.cell_dose_millions, spine.carrier, spine.guidance) == (
        Decimal("50.00"),
        "hyaluronic_acid",
        "fluoroscopy",
    )
    knee = Procedure.objects.get(external_id="PR-1001")
    assert knee.cell_dose_millions == Decimal("25.50")
    assert Procedure.objects.get(external_id="PR-1002").cell_dose_millions is None
    assert Procedure.objects.get(external_id="PR-2001").carrier == ""

    infection = AdverseEvent.objects.get(external_id="AE-2")
    assert infection.procedure == spine
    assert (infection.category, infection.term, infection.grade, infection.onset_on) == (
        "infection",
        "Discitis with fever",
        3,
        dt.date(2022, 5, 6),
    )
    assert infection.serious is True
    assert infection.serious_hospitalisation and infection.serious_medically_important
    others = ("serious_death", "serious_life_threatening", "serious_disability", "serious_congenital_anomaly")
    assert not any(getattr(infection, name) for name in others)
    assert (infection.outcome, infection.resolved_on, infection.causality_procedure) == (
        "recovered_with_sequelae",
        dt.date(2022, 6, 20),
        "probable",
    )
    calcification = AdverseEvent.objects.get(external_id="AE-3")
    assert calcification.term == "Calcification, hip capsule"
    assert (calcification.outcome, calcification.causality_procedure) == ("unknown", "possible")
    assert AdverseEvent.objects.get(external_id="AE-4").causality_procedure == ""


def test_every_procedure_gets_the_full_schedule_and_follow_ups_set_due_date_and_completion(folder):
    run(folder)

    knee = Procedure.objects.get(external_id="PR-1001")
    visits = {v.visit: v for v in knee.visits.all()}
    assert set(visits) == set(VISIT_SCHEDULE)
    # follow_ups.csv gave week_1 a due date: the window is recomputed around it.
    week_1 = visits["week_1"]
    assert (week_1.due_on, week_1.completed_on) == (dt.date(2022, 3, 18), dt.date(2022, 3, 18))
    assert (week_1.window_start, week_1.window_end) == visit_window("week_1", dt.date(2022, 3, 18))
    # An empty due_on keeps the schedule's due date.
    day_2 = visits["day_2"]
    assert (day_2.due_on, day_2.completed_on) == (dt.date(2022, 3, 12), dt.date(2022, 3, 12))
    for label, (days, _early, _late) in VISIT_SCHEDULE.items():
        if label in ("day_2", "week_1", "month_1"):
            continue
        visit = visits[label]
        due = knee.performed_on + dt.timedelta(days=days)
        assert (visit.due_on, visit.window_start, visit.window_end, visit.completed_on) == (
            due,
            *visit_window(label, due),
            None,
        )


def test_it_allows_historical_onsets_before_enrolment(folder):
    run(folder)

    # AE-3's onset predates its patient's enrolment: the admin refuses that, the import may not.
    calcification = AdverseEvent.objects.select_related("procedure__patient").get(external_id="AE-3")
    assert calcification.onset_on < calcification.procedure.patient.enrolled_on


def test_it_resolves_references_to_rows_already_in_the_database(folder, clinic_a):
    patient = PatientFactory(clinic=clinic_a, registry_id="P-STORED0001", enrolled_on=dt.date(2023, 1, 10))
    keep_only(folder, "procedures.csv")
    with (folder / "procedures.csv").open("w", newline="") as fh:
        fh.write(
            "procedure_id,patient_registry_id,clinic_code,performed_on,site,laterality,cell_source,cell_type,"
            "cell_dose_millions,carrier,guidance\n"
            "PR-9001,P-STORED0001,A-MAD,2023-02-01,shoulder,right,autologous,adipose_svf,12.5,saline,ultrasound\n"
        )

    output = run(folder)

    procedure = Procedure.objects.get(external_id="PR-9001")
    assert (procedure.patient, procedure.clinic) == (patient, clinic_a)
    assert procedure.visits.count() == 10
    assert "procedures.csv: 1 created, 0 updated, 0 unchanged" in output
    assert "clinics.csv" not in output


# --- all or nothing ------------------------------------------------------------------------


def test_one_bad_cell_changes_nothing_and_names_file_line_and_column(folder, clinic_a):
    before = counts()
    set_cell(folder, "procedures.csv", 4, "performed_on", "2022-13-01")

    message = refused(folder)

    assert "procedures.csv line 4, column performed_on: Not a date in the form YYYY-MM-DD: '2022-13-01'." in message
    assert "1 error." in message
    assert counts() == before


def test_it_reports_every_bad_row(folder):
    set_cell(folder, "clinics.csv", 3, "country", "Germany")
    set_cell(folder, "patients.csv", 2, "birth_year", "nineteen sixty")
    set_cell(folder, "patients.csv", 4, "enrolled_on", "")
    set_cell(folder, "procedures.csv", 2, "cell_dose_millions", "12.345")
    set_cell(folder, "follow_ups.csv", 3, "completed_on", "18/03/2022")
    set_cell(folder, "adverse_events.csv", 2, "grade", "7")
    set_cell(folder, "adverse_events.csv", 4, "serious", "maybe")

    message = refused(folder)

    expected = [
        "clinics.csv line 3, column country:",
        "patients.csv line 2, column birth_year: Not a whole number: 'nineteen sixty'.",
        "patients.csv line 4, column enrolled_on: A value is required.",
        "procedures.csv line 2, column cell_dose_millions:",
        "follow_ups.csv line 3, column completed_on: Not a date in the form YYYY-MM-DD: '18/03/2022'.",
        "adverse_events.csv line 2, column grade: CTCAE grade must be 1, 2, 3, 4 or 5.",
        "adverse_events.csv line 4, column serious: Not true or false: 'maybe'.",
    ]
    lines = message.splitlines()
    assert lines[0] == "Import refused, nothing was changed: 7 errors."
    for line, start in zip(lines[1:], expected, strict=True):
        assert line.startswith(start)
    assert Procedure.objects.count() == 0


def test_a_number_too_large_for_any_column_is_an_error_not_a_crash(folder):
    # Bad rows are staged too (other rows may name them): a value must fit its column's type.
    before = counts()
    set_cell(folder, "patients.csv", 3, "birth_year", "99999999999")
    set_cell(folder, "adverse_events.csv", 2, "grade", "-99999999999")

    message = refused(folder)

    assert "patients.csv line 3, column birth_year: Not a plausible number: '99999999999'." in message
    assert "adverse_events.csv line 2, column grade: Not a plausible number: '-99999999999'." in message
    assert counts() == before


def test_unknown_vocabulary_lists_the_allowed_codes(folder):
    set_cell(folder, "procedures.csv", 2, "site", "Knee")
    set_cell(folder, "adverse_events.csv", 3, "serious_criteria", "hospitalisation;hospitalization")
    set_cell(folder, "adverse_events.csv", 5, "relatedness", "related")

    message = refused(folder)

    assert (
        "procedures.csv line 2, column site: Unknown code 'Knee'; "
        "allowed: knee, hip, shoulder, spine, elbow, ankle, hand_wrist, other." in message
    )
    assert (
        "adverse_events.csv line 3, column serious_criteria: Unknown seriousness criterion 'hospitalization'; "
        "allowed: death, life_threatening, hospitalisation, disability, congenital_anomaly, medically_important."
        in message
    )
    assert (
        "column relatedness: Unknown code 'related'; allowed: certain, probable, possible, unlikely, unassessable."
        in (message)
    )


def test_it_rejects_unknown_references(folder):
    set_cell(folder, "patients.csv", 3, "clinic_code", "XX-NOPE")
    set_cell(folder, "procedures.csv", 5, "patient_registry_id", "P-NOBODY")
    set_cell(folder, "follow_ups.csv", 6, "procedure_id", "PR-NONE")
    set_cell(folder, "adverse_events.csv", 5, "procedure_id", "PR-GONE")

    message = refused(folder)

    assert "patients.csv line 3, column clinic_code: Unknown clinic 'XX-NOPE'." in message
    assert "procedures.csv line 5, column patient_registry_id: Unknown patient 'P-NOBODY'." in message
    assert "follow_ups.csv line 6, column procedure_id: Unknown procedure 'PR-NONE'." in message
    assert "adverse_events.csv line 5, column procedure_id: Unknown procedure 'PR-GONE'." in message


def test_it_rejects_duplicate_ids_within_a_file(folder):
    set_cell(folder, "procedures.csv", 3, "procedure_id", "PR-1001")
    add_row(folder, "follow_ups.csv", procedure_id="PR-1001", visit="day_2", completed_on="2022-03-13")

    message = refused(folder)

    assert "procedures.csv line 3, column procedure_id: Duplicate procedure_id 'PR-1001' (first on line 2)." in message
    assert "follow_ups.csv line 7, column procedure_id: Duplicate procedure_id/visit 'PR-1001/day_2'" in message


def test_it_rejects_a_procedure_whose_clinic_is_not_the_patients(folder):
    set_cell(folder, "procedures.csv", 2, "clinic_code", "DE-BER-02")

    message = refused(folder)

    assert "procedures.csv line 2, column clinic_code: The procedure's clinic must be the patient's clinic." in message


def test_it_rejects_a_death_date_before_one_of_the_patients_procedures(folder):
    set_cell(folder, "patients.csv", 2, "death_date", "2022-06-30")

    message = refused(folder)

    assert (
        "patients.csv line 2, column death_date: "
        "Death date cannot be before a procedure of this patient (performed on 2022-09-01)." in message
    )
    assert "procedures.csv line 3, column performed_on: Procedure date cannot be after the patient's death date" in (
        message
    )


def test_it_rejects_a_death_date_before_a_stored_procedure(folder):
    run(folder)
    keep_only(folder, "patients.csv")
    set_cell(folder, "patients.csv", 2, "death_date", "2022-06-30")

    message = refused(folder)

    assert "patients.csv line 2, column death_date: Death date cannot be before a procedure of this patient" in message
    assert Patient.objects.get(registry_id="P-AAAA000001").death_date is None


def test_it_rejects_onset_before_procedure(folder):
    set_cell(folder, "adverse_events.csv", 2, "onset_on", "2022-03-09")

    message = refused(folder)

    assert (
        "adverse_events.csv line 2, column onset_on: Onset date cannot be before the procedure date (2022-03-10)."
        in message
    )


def test_it_rejects_completion_before_procedure(folder):
    set_cell(folder, "follow_ups.csv", 5, "completed_on", "2022-08-31")

    message = refused(folder)

    assert (
        "follow_ups.csv line 5, column completed_on: A visit cannot be completed before the procedure date." in message
    )


def test_it_rejects_moving_a_procedure_after_its_stored_events_and_completed_visits(folder):
    run(folder)
    keep_only(folder, "procedures.csv")
    set_cell(folder, "procedures.csv", 2, "performed_on", "2022-03-20")

    message = refused(folder)

    assert (
        "procedures.csv line 2, column performed_on: Stored adverse event AE-1: "
        "Onset date cannot be before the procedure date (2022-03-20)." in message
    )
    assert "Stored follow-up visit day_2: A visit cannot be completed before the procedure date." in message


@pytest.mark.parametrize(
    ("file", "line", "column", "value", "message"),
    [
        ("patients.csv", 3, "withdrawn_on", "2022-01-01", "Withdrawal date cannot be before the enrolment date."),
        ("patients.csv", 2, "birth_year", "1850", "Birth year must be 1900 or later"),
        ("procedures.csv", 4, "cell_source", "autologous", "This cell type comes from a donor"),
        ("procedures.csv", 2, "cell_dose_millions", "0", "Cell dose must be greater than zero."),
        ("procedures.csv", 2, "performed_on", "2099-01-01", "Date cannot be in the future."),
        ("adverse_events.csv", 2, "serious", "true", "A serious event needs at least one seriousness criterion."),
        (
            "adverse_events.csv",
            3,
            "serious",
            "false",
            "An event meeting a seriousness criterion must be marked serious.",
        ),
        ("adverse_events.csv", 2, "grade", "5", "CTCAE grade 5 (death) requires the outcome 'fatal'."),
        ("adverse_events.csv", 2, "resolved_on", "2022-03-10", "Resolution date cannot be before the onset date."),
        ("clinics.csv", 2, "code", "ES MAD", "Code may contain only letters, digits"),
    ],
)
def test_it_applies_the_same_rules_as_the_admin(folder, file, line, column, value, message):
    set_cell(folder, file, line, column, value)

    assert f"{file} line {line}, column {column}: {message}" in refused(folder)
    assert Clinic.objects.count() == 0


def test_it_rejects_a_patient_clinic_change_that_strands_stored_procedures(folder):
    run(folder)
    keep_only(folder, "patients.csv")
    set_cell(folder, "patients.csv", 2, "clinic_code", "DE-BER-02")

    message = refused(folder)

    assert (
        "patients.csv line 2, column clinic_code: Stored procedure PR-1001: "
        "The procedure's clinic must be the patient's clinic." in message
    )


def test_a_retracted_event_cannot_be_changed_by_import(folder, root):
    run(folder)
    adverse_event_retract(actor=root, event=AdverseEvent.objects.get(external_id="AE-1"), reason="Entered twice")

    assert "adverse_events.csv: 0 created, 0 updated, 4 unchanged" in run(folder)
    set_cell(folder, "adverse_events.csv", 2, "grade", "2")
    message = "This adverse event is retracted and can no longer be edited."
    assert f"adverse_events.csv line 2, column event_id: {message}" in refused(folder)


def test_a_wrong_header_is_reported_before_any_row(folder):
    with (folder / "follow_ups.csv").open("w", newline="") as fh:
        fh.write("procedure_id,visit,due,completed_on\nPR-1001,day_2,,not-a-date\n")

    message = refused(folder)

    assert "follow_ups.csv line 1, column due: Unknown column" in message
    assert "follow_ups.csv line 1, column due_on: Missing column" in message
    assert "not-a-date" not in message


def test_error_lines_are_physical_lines_after_a_cell_spanning_lines(folder):
    with (folder / "adverse_events.csv").open("a", newline="") as fh:
        fh.write('AE-5,PR-1001,other,"Knee stiffness,\nreported by phone",2022-03-15,1,false,,,,\n')
        fh.write("AE-6,PR-1001,other,Swelling,2022-03-16,one,false,,,,\n")

    message = refused(folder)

    assert "adverse_events.csv line 8, column grade: Not a whole number: 'one'." in message


def test_a_row_with_the_wrong_number_of_values_is_reported(folder):
    with (folder / "clinics.csv").open("a", newline="") as fh:
        fh.write("FR-PAR-01,Clinique Paris,FR,Paris,true,extra\n")

    assert "clinics.csv line 4, column (row): The row has 6 values; the header has 5." in refused(folder)


def test_an_unknown_user_is_refused(folder):
    assert "No user named 'nobody'." in refused(folder, "--user", "nobody")
    assert Clinic.objects.count() == 0


def test_a_database_refusal_becomes_an_import_refusal(clinic_a):
    # The checks normally stop this before the database sees it; the triggers and
    # constraints remain the backstop, and their refusal must read as an import error.
    before = counts()
    patient = PatientRow(
        line=2, registry_id="P-BACKSTOP", clinic_id="A-MAD", sex="Q", birth_year=1970, enrolled_on=dt.date(2023, 1, 1)
    )

    with pytest.raises(ImportRefused) as caught, transaction.atomic(), connection.cursor() as cursor:
        stage.create_tables(cursor)
        stage.copy_rows(cursor, PATIENTS, [patient])
        write_staged(cursor, staged=dict.fromkeys(FILES, 0) | {PATIENTS: 1}, present=[PATIENTS])

    assert "(database): The database refused the import (patient_sex_valid)" in caught.value.report()
    assert counts() == before


# --- invisible characters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "line", "column", "value"),
    [
        ("clinics.csv", 2, "code", "ES-MAD-01\u200b"),  # zero-width space
        ("clinics.csv", 3, "country", "D\u200dE"),  # zero-width joiner
        ("patients.csv", 2, "registry_id", "P-\u202eAAAA000001"),  # right-to-left override
        ("patients.csv", 3, "clinic_code", "ES-MAD-01\u2066"),  # left-to-right isolate
        ("procedures.csv", 2, "procedure_id", "PR-\x011001"),  # a control character
        ("procedures.csv", 3, "patient_registry_id", "P-AAAA\x7f000001"),  # DEL
        ("procedures.csv", 4, "site", "spi\u00adne"),  # soft hyphen, in a vocabulary code
        ("follow_ups.csv", 2, "procedure_id", "PR-1001\ufeff"),  # byte-order mark inside a cell
        ("follow_ups.csv", 3, "visit", "day\x00_2"),  # NUL
        ("adverse_events.csv", 2, "event_id", "AE-\u0001-X"),  # the review's event id
        ("adverse_events.csv", 3, "procedure_id", "PR-\u20281003"),  # line separator
        ("adverse_events.csv", 4, "serious_criteria", "\u2067hospitalisation"),  # right-to-left isolate
    ],
)
def test_it_refuses_invisible_characters_in_ids_and_codes_naming_file_line_and_column(
    folder, file, line, column, value
):
    before = counts()
    set_cell(folder, file, line, column, value)

    message = refused(folder)

    # The models' own message (core.text), at the cell's place in the file.
    assert f"{file} line {line}, column {column}: {unsafe_character_message(value)}" in message.splitlines()
    assert counts() == before


@pytest.mark.parametrize(
    ("file", "line", "column", "stored"),
    [
        ("adverse_events.csv", 2, "term", lambda: AdverseEvent.objects.get(external_id="AE-1").term),
        ("clinics.csv", 2, "name", lambda: Clinic.objects.get(code="ES-MAD-01").name),
        ("clinics.csv", 3, "city", lambda: Clinic.objects.get(code="DE-BER-02").city),
    ],
)
def test_it_refuses_bidi_and_zero_width_characters_in_free_text_but_keeps_line_breaks(
    folder, file, line, column, stored
):
    before = counts()
    value = "Knee pain \u202eetis\u200b"
    set_cell(folder, file, line, column, value)

    message = refused(folder)

    with pytest.raises(ValidationError) as caught:
        validate_safe_free_text(value)  # the models' own validator gives the message
    assert f"{file} line {line}, column {column}: {caught.value.messages[0]}" in message.splitlines()
    assert counts() == before

    set_cell(folder, file, line, column, "Swelling,\nreported by phone")
    run(folder)
    assert stored() == "Swelling,\nreported by phone"


# --- the error cap -----------------------------------------------------------------------------


def _bad_follow_ups(path: Path, count: int) -> None:
    """Append ``count`` follow-up rows, each with an unknown visit code."""
    with (path / "follow_ups.csv").open("a", newline="") as fh:
        writer = csv.writer(fh)
        for i in range(count):
            writer.writerow(["PR-1001", f"day_{i + 10}", "", ""])


def test_the_error_list_stops_at_max_errors_and_counts_the_rest(folder):
    before = counts()
    _bad_follow_ups(folder, 40)  # lines 7 to 46
    set_cell(folder, "procedures.csv", 2, "site", "Knee")

    message = refused(folder, "--max-errors", "5")

    lines = message.splitlines()
    assert lines[0] == "Import refused, nothing was changed: 41 errors."
    assert lines[1].startswith("procedures.csv line 2, column site: Unknown code 'Knee'")
    assert [line.split(",")[0] for line in lines[2:6]] == [f"follow_ups.csv line {n}" for n in (7, 8, 9, 10)]
    assert lines[6] == "... and 36 more errors not shown (--max-errors or IMPORT_MAX_ERRORS shows more)."
    assert len(lines) == 7
    assert counts() == before


def test_an_error_found_late_about_an_early_line_still_comes_first(folder):
    # The death date is checked against all of the patient's procedures once every file is
    # read, after the follow-ups' errors were counted; the report still lists it first. The death
    # date also refuses the visit and the onset after it (issue 9): 10 + 2 + 2 errors.
    _bad_follow_ups(folder, 10)
    set_cell(folder, "patients.csv", 2, "death_date", "2022-06-30")

    lines = refused(folder, "--max-errors", "2").splitlines()

    assert lines[0] == "Import refused, nothing was changed: 14 errors."
    assert lines[1].startswith("patients.csv line 2, column death_date: Death date cannot be before a procedure")
    assert lines[2].startswith("procedures.csv line 3, column performed_on: Procedure date cannot be after")
    assert lines[3] == "... and 12 more errors not shown (--max-errors or IMPORT_MAX_ERRORS shows more)."


@override_settings(IMPORT_MAX_ERRORS=3)
def test_the_cap_defaults_to_the_import_max_errors_setting(folder):
    _bad_follow_ups(folder, 4)

    lines = refused(folder).splitlines()

    assert len(lines) == 1 + 3 + 1
    assert lines[-1] == "... and 1 more error not shown (--max-errors or IMPORT_MAX_ERRORS shows more)."


def test_errors_under_the_cap_are_all_listed_without_a_remainder_line(folder):
    _bad_follow_ups(folder, 3)

    lines = refused(folder, "--max-errors", "3").splitlines()

    assert lines[0] == "Import refused, nothing was changed: 3 errors."
    assert len(lines) == 4
    assert not any(line.startswith("...") for line in lines)


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_max_errors_must_be_a_positive_whole_number(folder, value):
    with pytest.raises(CommandError, match="--max-errors: must be a whole number of 1 or more"):
        run(folder, "--max-errors", value)
    assert Clinic.objects.count() == 0


# --- chunks --------------------------------------------------------------------------------


def test_rows_are_checked_alike_across_chunk_boundaries(folder, monkeypatch):
    # One row per chunk: every duplicate, reference and rule meets its counterpart in another chunk.
    monkeypatch.setattr(intake.importer, "CHUNK_ROWS", 1)
    set_cell(folder, "procedures.csv", 4, "procedure_id", "PR-1001")
    add_row(folder, "follow_ups.csv", procedure_id="PR-1001", visit="day_2", completed_on="2022-03-13")
    set_cell(folder, "adverse_events.csv", 3, "procedure_id", "PR-2001")
    set_cell(folder, "adverse_events.csv", 3, "onset_on", "2021-09-30")

    message = refused(folder)

    assert "procedures.csv line 4, column procedure_id: Duplicate procedure_id 'PR-1001' (first on line 2)." in message
    assert "follow_ups.csv line 7, column procedure_id: Duplicate procedure_id/visit 'PR-1001/day_2'" in message
    assert (
        "adverse_events.csv line 3, column onset_on: Onset date cannot be before the procedure date (2021-10-01)."
        in message
    )


def test_a_good_folder_loads_the_same_one_row_at_a_time(folder, monkeypatch):
    monkeypatch.setattr(intake.importer, "CHUNK_ROWS", 1)

    output = run(folder)

    assert "follow_ups.csv: 5 created, 0 updated, 0 unchanged" in output
    assert "follow-up schedule: 40 visits created, 0 rescheduled" in output
    assert FollowUpVisit.objects.filter(completed_on__isnull=False).count() == 5
    assert Procedure.objects.get(external_id="PR-1003").clinic.code == "ES-MAD-01"


# --- idempotency ---------------------------------------------------------------------------


def test_a_second_import_creates_no_duplicates_and_reports_unchanged(folder):
    run(folder)
    before = counts()

    output = run(folder)

    assert counts() == before
    for name, rows in (
        ("clinics.csv", 2),
        ("patients.csv", 3),
        ("procedures.csv", 4),
        ("follow_ups.csv", 5),
        ("adverse_events.csv", 4),
    ):
        assert f"{name}: 0 created, 0 updated, {rows} unchanged" in output
    assert "follow-up schedule: 0 visits created, 0 rescheduled" in output


def test_a_changed_cell_is_updated_and_audited(folder, root):
    run(folder)
    set_cell(folder, "adverse_events.csv", 2, "grade", "2")
    set_cell(folder, "follow_ups.csv", 4, "completed_on", "2022-04-14")

    output = run(folder, "--user", "root")

    assert "adverse_events.csv: 0 created, 1 updated, 3 unchanged" in output
    assert "follow_ups.csv: 0 created, 1 updated, 4 unchanged" in output
    assert "procedures.csv: 0 created, 0 updated, 4 unchanged" in output
    event = AdverseEvent.objects.get(external_id="AE-1")
    assert event.grade == 2
    update = Events.objects.tracks(event).get(pgh_label="update")
    assert update.pgh_diff["grade"] == [1, 2]
    assert update.pgh_context["user"] == root.pk
    assert update.pgh_context["action"] == "import_registry"
    assert update.pgh_created_at is not None
    assert AdverseEventEvent.objects.filter(pgh_obj=event).count() == 2  # insert, then one update
    visit = FollowUpVisit.objects.get(procedure__external_id="PR-1001", visit="month_1")
    assert visit.completed_on == dt.date(2022, 4, 14)


def test_a_folder_with_only_follow_ups_updates_stored_visits(folder):
    run(folder)
    keep_only(folder, "follow_ups.csv")
    add_row(folder, "follow_ups.csv", procedure_id="PR-1003", visit="month_1", completed_on="2022-06-02")

    output = run(folder)

    assert output.splitlines()[0] == "follow_ups.csv: 0 created, 1 updated, 5 unchanged"
    visit = FollowUpVisit.objects.get(procedure__external_id="PR-1003", visit="month_1")
    assert visit.completed_on == dt.date(2022, 6, 2)
    assert FollowUpVisit.objects.count() == 40


def test_moving_a_procedure_earlier_reschedules_its_open_visits(folder):
    run(folder)
    set_cell(folder, "procedures.csv", 3, "performed_on", "2022-08-30")

    output = run(folder)

    assert "procedures.csv: 0 created, 1 updated, 3 unchanged" in output
    assert "follow-up schedule: 0 visits created, 9 rescheduled" in output
    procedure = Procedure.objects.get(external_id="PR-1002")
    month_1 = procedure.visits.get(visit="month_1")
    assert month_1.due_on == dt.date(2022, 9, 29)
    assert procedure.visits.get(visit="day_2").completed_on == dt.date(2022, 9, 3)


def test_a_death_date_that_fits_only_after_its_procedure_moves_is_written(folder):
    run(folder)
    set_cell(folder, "procedures.csv", 3, "performed_on", "2022-05-01")
    set_cell(folder, "follow_ups.csv", 5, "completed_on", "2022-05-03")
    set_cell(folder, "adverse_events.csv", 5, "onset_on", "2022-05-02")
    set_cell(folder, "patients.csv", 2, "death_date", "2022-06-30")
    add_column(folder, "patients.csv", "death_cause")  # a death needs a fatal event or a recorded cause
    set_cell(folder, "patients.csv", 2, "death_cause", "unknown")

    output = run(folder)

    assert "patients.csv: 0 created, 1 updated, 2 unchanged" in output
    assert Patient.objects.get(registry_id="P-AAAA000001").death_date == dt.date(2022, 6, 30)


# --- audit ---------------------------------------------------------------------------------


def test_the_audit_trail_records_who_ran_the_import_and_from_where(folder, root):
    run(folder, "--user", "root")

    procedure = Procedure.objects.get(external_id="PR-1001")
    inserted = ProcedureEvent.objects.select_related("pgh_context").get(pgh_obj=procedure, pgh_label="insert")
    assert inserted.pgh_context.metadata == {
        "user": root.pk,
        "action": "import_registry",
        "source": str(folder.resolve()),
    }
    assert inserted.performed_on == procedure.performed_on
    contexts = {
        e.pgh_context_id for model in (PatientEvent, ProcedureEvent, AdverseEventEvent) for e in model.objects.all()
    }
    assert contexts == {inserted.pgh_context_id}
    assert FollowUpVisitEvent.objects.filter(pgh_context_id=inserted.pgh_context_id).count() == 40
