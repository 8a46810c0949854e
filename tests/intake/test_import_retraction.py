"""manage.py import_registry and retraction: a retracted record, and what it holds, is frozen.

A row that leaves a retracted patient, procedure, visit or event as stored passes and is not
written; a row that would change one, or add to or change what it holds, is refused.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from events.models import AdverseEvent
from events.services import adverse_event_retract
from registry.choices import VISIT_SCHEDULE
from registry.models import FollowUpVisit, Patient, Procedure
from registry.services import patient_retract, procedure_retract, visit_retract
from tests.intake.test_import_registry import GOOD, add_row, refused, run, set_cell

pytestmark = pytest.mark.django_db

FROZEN = "This {} is retracted and can no longer be edited."
UNDER = "The {} this record belongs to is retracted: nothing can be added to it or changed in it."


@pytest.fixture
def folder(tmp_path) -> Path:
    """Return a writable copy of the good folder, already imported once."""
    path = Path(shutil.copytree(GOOD, tmp_path / "import"))
    run(path)
    return path


def snapshot() -> dict[str, list[dict]]:
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Patient, Procedure, FollowUpVisit, AdverseEvent)
    }


def test_a_reimport_after_retracting_a_patient_passes_and_leaves_it_retracted_and_unchanged(folder, root):
    patient = patient_retract(actor=root, patient=Patient.objects.get(registry_id="P-AAAA000001"), reason="Twice")
    before = snapshot()

    output = run(folder)

    for line in (
        "patients.csv: 0 created, 0 updated, 3 unchanged",
        "procedures.csv: 0 created, 0 updated, 4 unchanged",
        "follow_ups.csv: 0 created, 0 updated, 5 unchanged",
        "adverse_events.csv: 0 created, 0 updated, 4 unchanged",
        "follow-up schedule: 0 visits created, 0 rescheduled",
    ):
        assert line in output
    assert snapshot() == before
    stored = Patient.objects.get(pk=patient.pk)
    assert stored.retracted_at == patient.retracted_at and stored.retraction_reason == "Twice"


@pytest.mark.parametrize(
    ("retract", "file", "line", "column", "value", "error"),
    [
        (
            lambda root: patient_retract(
                actor=root, patient=Patient.objects.get(registry_id="P-AAAA000001"), reason="Twice"
            ),
            "patients.csv",
            2,
            "birth_year",
            "1962",
            "patients.csv line 2, column registry_id: " + FROZEN.format("patient"),
        ),
        (
            lambda root: procedure_retract(
                actor=root, procedure=Procedure.objects.get(external_id="PR-1001"), reason="Twice"
            ),
            "procedures.csv",
            2,
            "cell_dose_millions",
            "26",
            "procedures.csv line 2, column procedure_id: " + FROZEN.format("procedure"),
        ),
        (
            lambda root: visit_retract(
                actor=root,
                visit=FollowUpVisit.objects.get(procedure__external_id="PR-1001", visit="month_1"),
                reason="Wrong visit",
            ),
            "follow_ups.csv",
            4,
            "completed_on",
            "2022-04-14",
            "follow_ups.csv line 4, column visit: " + FROZEN.format("follow up visit"),
        ),
        (
            lambda root: adverse_event_retract(
                actor=root, event=AdverseEvent.objects.get(external_id="AE-1"), reason="Twice"
            ),
            "adverse_events.csv",
            2,
            "grade",
            "2",
            "adverse_events.csv line 2, column event_id: " + FROZEN.format("adverse event"),
        ),
    ],
    ids=["patient", "procedure", "visit", "event"],
)
def test_a_changed_cell_of_a_retracted_record_is_refused_naming_line_and_column(
    folder, root, retract, file, line, column, value, error
):
    retract(root)
    before = snapshot()
    set_cell(folder, file, line, column, value)

    message = refused(folder)

    assert "nothing was changed: 1 error." in message
    assert error in message
    assert snapshot() == before


def test_moving_a_retracted_procedure_is_refused_and_reschedules_nothing(folder, root):
    procedure_retract(actor=root, procedure=Procedure.objects.get(external_id="PR-1002"), reason="Twice")
    before = snapshot()
    set_cell(folder, "procedures.csv", 3, "performed_on", "2022-08-30")

    assert "procedures.csv line 3, column procedure_id: " + FROZEN.format("procedure") in refused(folder)
    assert snapshot() == before


def test_a_changed_procedure_of_a_retracted_patient_is_refused(folder, root):
    patient_retract(actor=root, patient=Patient.objects.get(registry_id="P-AAAA000001"), reason="Twice")
    before = snapshot()
    set_cell(folder, "procedures.csv", 3, "guidance", "ultrasound")

    assert "procedures.csv line 3, column patient_registry_id: " + UNDER.format("patient") in refused(folder)
    assert snapshot() == before


def test_a_new_procedure_for_a_retracted_patient_is_refused(folder, root):
    patient_retract(actor=root, patient=Patient.objects.get(registry_id="P-AAAA000001"), reason="Twice")
    before = snapshot()
    line = add_row(
        folder,
        "procedures.csv",
        procedure_id="PR-1009",
        patient_registry_id="P-AAAA000001",
        performed_on="2022-10-01",
        site="knee",
        laterality="left",
        cell_source="autologous",
        cell_type="bmac",
    )

    message = refused(folder)

    assert f"procedures.csv line {line}, column patient_registry_id: " + UNDER.format("patient") in message
    assert snapshot() == before
    assert not Procedure.objects.filter(external_id="PR-1009").exists()


def test_a_new_event_under_a_retracted_procedure_is_refused(folder, root):
    procedure_retract(actor=root, procedure=Procedure.objects.get(external_id="PR-1001"), reason="Twice")
    before = snapshot()
    line = add_row(
        folder,
        "adverse_events.csv",
        event_id="AE-9",
        procedure_id="PR-1001",
        category="infection",
        term="Late infection",
        onset_on="2022-04-01",
        grade="2",
        serious="false",
    )

    message = refused(folder)

    assert f"adverse_events.csv line {line}, column procedure_id: " + UNDER.format("procedure") in message
    assert snapshot() == before


def test_a_changed_event_or_visit_under_a_procedure_of_a_retracted_patient_is_refused(folder, root):
    patient_retract(actor=root, patient=Patient.objects.get(registry_id="P-AAAA000001"), reason="Twice")
    before = snapshot()
    set_cell(folder, "adverse_events.csv", 2, "grade", "2")
    set_cell(folder, "follow_ups.csv", 4, "completed_on", "2022-04-14")

    message = refused(folder)

    assert "follow_ups.csv line 4, column procedure_id: " + UNDER.format("patient") in message
    assert "adverse_events.csv line 2, column procedure_id: " + UNDER.format("patient") in message
    assert snapshot() == before


def test_moving_an_event_out_of_a_retracted_procedure_is_refused(folder, root):
    procedure_retract(actor=root, procedure=Procedure.objects.get(external_id="PR-1001"), reason="Twice")
    set_cell(folder, "adverse_events.csv", 2, "procedure_id", "PR-1002")
    set_cell(folder, "adverse_events.csv", 2, "onset_on", "2022-09-02")
    set_cell(folder, "adverse_events.csv", 2, "resolved_on", "2022-09-04")

    assert "adverse_events.csv line 2, column procedure_id: " + UNDER.format("procedure") in refused(folder)
    assert AdverseEvent.objects.get(external_id="AE-1").procedure.external_id == "PR-1001"


def test_moving_a_procedure_reschedules_its_open_visits_but_not_a_retracted_one(folder, root):
    retracted = visit_retract(
        actor=root, visit=FollowUpVisit.objects.get(procedure__external_id="PR-1002", visit="month_1"), reason="Twice"
    )
    set_cell(folder, "procedures.csv", 3, "performed_on", "2022-08-30")

    output = run(folder)

    assert "follow-up schedule: 0 visits created, 8 rescheduled" in output
    assert FollowUpVisit.objects.get(pk=retracted.pk).due_on == retracted.due_on
    month_3 = FollowUpVisit.objects.get(procedure__external_id="PR-1002", visit="month_3")
    assert month_3.due_on == dt.date(2022, 8, 30) + dt.timedelta(days=VISIT_SCHEDULE["month_3"][0])
