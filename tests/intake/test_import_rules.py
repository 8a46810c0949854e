"""The refusals of issue 9 through the CSV import: the row and column named, the admin's message, nothing written."""

from __future__ import annotations

import pytest

from events import rules as event_rules
from events.models import AdverseEvent
from registry import rules
from registry.models import FollowUpVisit, Patient, Procedure
from tests.intake.test_import_registry import folder, refused, run, set_cell  # noqa: F401 - folder is a fixture

pytestmark = pytest.mark.django_db

# The good folder: P-AAAA000001 (enrolled 2022-03-01; PR-1001 on 2022-03-10 and PR-1002 on 2022-09-01, AE-1
# recovered), P-AAAA000002 (withdrawn 2023-06-30; PR-1003 on 2022-05-02), P-AAAA000003 (PR-2001 on 2021-10-01,
# AE-3 from 2021-10-03, the year_1 visit completed 2022-10-20).
CASES = [
    (
        "onset after death",
        [("patients.csv", 4, "death_date", "2021-10-02")],
        "adverse_events.csv line 4, column onset_on: " + event_rules.ONSET_AFTER_DEATH.text(date="2021-10-02"),
    ),
    (
        "visit completed after death",
        [("patients.csv", 4, "death_date", "2021-10-02")],
        "follow_ups.csv line 6, column completed_on: " + rules.COMPLETED_AFTER_DEATH.text(date="2021-10-02"),
    ),
    (
        "fatal outcome without a death date",
        [
            ("adverse_events.csv", 4, "grade", "5"),
            ("adverse_events.csv", 4, "serious", "true"),
            ("adverse_events.csv", 4, "serious_criteria", "death"),
            ("adverse_events.csv", 4, "outcome", "fatal"),
        ],
        "adverse_events.csv line 4, column outcome: " + event_rules.FATAL_NEEDS_DEATH_DATE.message,
    ),
    (
        "death date without a fatal event or a cause",
        [("patients.csv", 2, "death_date", "2023-01-01")],
        "patients.csv line 2, column death_date: " + rules.DEATH_NEEDS_CAUSE.message,
    ),
    (
        "death before enrolment",
        [("patients.csv", 2, "death_date", "2022-02-01")],
        "patients.csv line 2, column death_date: " + rules.DEATH_BEFORE_ENROLLED.message,
    ),
    (
        "procedure after withdrawal",
        [("patients.csv", 3, "withdrawn_on", "2022-05-01")],
        "procedures.csv line 4, column performed_on: " + rules.PROCEDURE_AFTER_WITHDRAWAL.text(date="2022-05-01"),
    ),
    (
        "withdrawal before a procedure",
        [("patients.csv", 3, "withdrawn_on", "2022-05-01")],
        "patients.csv line 3, column withdrawn_on: " + rules.WITHDRAWN_BEFORE_PROCEDURE.text(date="2022-05-02"),
    ),
    (
        "recovered without a resolution date",
        [("adverse_events.csv", 2, "resolved_on", "")],
        "adverse_events.csv line 2, column resolved_on: " + event_rules.RECOVERED_NEEDS_RESOLUTION.message,
    ),
    (
        "a resolution date but not recovered",
        [("adverse_events.csv", 2, "outcome", "not_recovered")],
        "adverse_events.csv line 2, column outcome: " + event_rules.NOT_RECOVERED_UNRESOLVED.message,
    ),
]


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (Patient, Procedure, FollowUpVisit, AdverseEvent)}


@pytest.mark.parametrize(("what", "cells", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_import_refuses_it_naming_row_and_column_and_writes_nothing(folder, what, cells, expected):  # noqa: F811
    for file, line, column, value in cells:
        set_cell(folder, file, line, column, value)

    report = refused(folder)

    assert expected in report.splitlines(), report
    assert set(counts().values()) == {0}


def test_a_death_date_explained_by_a_fatal_event_in_the_same_folder_is_imported(folder):  # noqa: F811
    set_cell(folder, "patients.csv", 4, "death_date", "2022-12-01")
    for column, value in (("grade", "5"), ("serious", "true"), ("serious_criteria", "death"), ("outcome", "fatal")):
        set_cell(folder, "adverse_events.csv", 4, column, value)

    run(folder)

    assert Patient.objects.get(registry_id="P-AAAA000003").death_date.isoformat() == "2022-12-01"
    assert AdverseEvent.objects.get(external_id="AE-3").outcome == "fatal"
