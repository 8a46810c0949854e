"""Every rule rejects bad input with a field-level message and leaves the database unchanged.

Each case is tried twice: through the service (what the admin, API and import use),
expecting a ValidationError naming the field; and as a direct SQL UPDATE that skips
Python altogether, expecting the database itself to refuse (illegal states are unstorable).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from core.integrity import save_or_field_error
from core.rules import CATALOGUE
from events.models import AdverseEvent
from events.services import adverse_event_save
from registry.models import Clinic, FollowUpVisit, Patient, Procedure
from registry.services import clinic_save, patient_save, procedure_save, visit_save
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

FUTURE = dt.date.today() + dt.timedelta(days=3)


def snapshot():
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Clinic, Patient, Procedure, FollowUpVisit, AdverseEvent)
    }


@pytest.fixture
def ae(db):
    return AdverseEventFactory(
        procedure=ProcedureFactory(performed_on=dt.date(2023, 3, 1), patient__enrolled_on=dt.date(2023, 2, 1)),
        onset_on=dt.date(2023, 3, 4),
    )


# (description, object path from the event, changes, field named in the error, message fragment)
CASES = [
    ("grade above 5", "", {"grade": 6}, "grade", "1, 2, 3, 4 or 5"),
    ("grade 0", "", {"grade": 0}, "grade", ""),
    ("onset before the procedure", "", {"onset_on": dt.date(2023, 2, 27)}, "onset_on", "before the procedure"),
    ("onset in the future", "", {"onset_on": FUTURE}, "onset_on", "future"),
    ("resolution before onset", "", {"resolved_on": dt.date(2023, 3, 2)}, "resolved_on", "before the onset"),
    ("serious without criterion", "", {"serious": True}, "serious", "at least one"),
    ("criterion without serious", "", {"serious_hospitalisation": True}, "serious", "must be marked serious"),
    ("fatal at grade 2", "", {"outcome": "fatal", "grade": 2}, "outcome", "grade 5"),
    (
        "grade 5 not fatal",
        "",
        {"grade": 5, "serious": True, "serious_death": True, "outcome": "recovered"},
        "grade",
        "fatal",
    ),
    ("recovered without resolution", "", {"resolved_on": None}, "resolved_on", "resolution date"),
    ("resolution but not recovered", "", {"outcome": "not_recovered"}, "outcome", "not recovered"),
    ("unknown category", "", {"category": "alien_abduction"}, "category", "not a valid choice"),
    ("unknown outcome", "", {"outcome": "better"}, "outcome", "not a valid choice"),
    ("birth year implausible", "procedure.patient", {"birth_year": 1850}, "birth_year", "1900"),
    ("birth year after enrolment", "procedure.patient", {"birth_year": 2024}, "birth_year", "enrolment"),
    ("withdrawn before enrolled", "procedure.patient", {"withdrawn_on": dt.date(2022, 1, 1)}, "withdrawn_on", ""),
    ("death before procedure", "procedure.patient", {"death_date": dt.date(2023, 2, 15)}, "death_date", "procedure"),
    (
        "death before enrolment",
        "procedure.patient",
        {"death_date": dt.date(2023, 1, 20), "death_cause": "unknown"},
        "death_date",
        "enrolment",
    ),
    ("unknown sex", "procedure.patient", {"sex": "Q"}, "sex", "not a valid choice"),
    ("procedure in the future", "procedure", {"performed_on": FUTURE}, "performed_on", "future"),
    ("dose zero", "procedure", {"cell_dose_millions": 0}, "cell_dose_millions", "greater than zero"),
    (
        "umbilical cord cells autologous",
        "procedure",
        {"cell_type": "umbilical_cord_msc", "cell_source": "autologous"},
        "cell_source",
        "donor",
    ),
    (
        "expanded cells minimally manipulated",
        "procedure",
        {"cell_type": "bm_msc_expanded", "processing": "minimally_manipulated"},
        "processing",
        "culture",
    ),
    ("unknown site", "procedure", {"site": "nose"}, "site", "not a valid choice"),
    ("country not ISO", "procedure.clinic", {"country": "es"}, "country", "ISO 3166"),
]

SAVERS = {
    AdverseEvent: lambda obj: adverse_event_save(actor=None, event=obj),
    Patient: lambda obj: patient_save(actor=None, patient=obj),
    Procedure: lambda obj: procedure_save(actor=None, procedure=obj),
    Clinic: lambda obj: clinic_save(actor=None, clinic=obj),
    FollowUpVisit: lambda obj: visit_save(actor=None, visit=obj),
}


def resolve(ae, path):
    obj = ae
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part)
    return type(obj).objects.get(pk=obj.pk)


@pytest.mark.parametrize(("what", "path", "changes", "field", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_the_service_rejects_it_with_a_field_message_and_changes_nothing(ae, what, path, changes, field, fragment):
    obj = resolve(ae, path)
    before = snapshot()
    for name, value in changes.items():
        setattr(obj, name, value)
    with pytest.raises(ValidationError) as info:
        SAVERS[type(obj)](obj)
    assert field in info.value.message_dict, info.value.message_dict
    assert fragment.lower() in " ".join(info.value.message_dict[field]).lower()
    assert snapshot() == before


DB_CASES = [c for c in CASES if c[0] not in {"onset in the future", "procedure in the future"}]


@pytest.mark.parametrize(("what", "path", "changes", "field", "fragment"), DB_CASES, ids=[c[0] for c in DB_CASES])
def test_the_database_refuses_it_even_without_python(ae, what, path, changes, field, fragment):
    obj = resolve(ae, path)
    before = snapshot()
    with pytest.raises(IntegrityError), transaction.atomic():
        type(obj).objects.filter(pk=obj.pk).update(**changes)
    assert snapshot() == before


def test_the_database_refuses_a_procedure_at_another_clinic_than_its_patient(ae, clinic_b):
    with pytest.raises(IntegrityError, match="clinic"), transaction.atomic():
        Procedure.objects.filter(pk=ae.procedure_id).update(clinic=clinic_b)


def test_the_service_refuses_a_procedure_at_another_clinic_than_its_patient(ae, clinic_b):
    procedure = Procedure.objects.get(pk=ae.procedure_id)
    procedure.clinic = clinic_b
    with pytest.raises(ValidationError) as info:
        procedure_save(actor=None, procedure=procedure)
    assert "clinic" in info.value.message_dict


def test_a_visit_cannot_be_completed_before_the_procedure(ae):
    visit = ae.procedure.visits.get(visit="day_2")
    visit.completed_on = dt.date(2023, 2, 1)
    with pytest.raises(ValidationError) as info:
        visit_save(actor=None, visit=visit)
    assert "before the procedure" in info.value.message_dict["completed_on"][0]
    with pytest.raises(IntegrityError), transaction.atomic():
        FollowUpVisit.objects.filter(pk=visit.pk).update(completed_on=dt.date(2023, 2, 1))
    assert FollowUpVisit.objects.get(pk=visit.pk).completed_on is None


def test_an_adverse_event_is_never_hard_deleted(ae):
    with (
        pytest.raises(Exception, match=r"ae_never_hard_deleted|Cannot delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM events_adverseevent WHERE id = %s", [ae.pk])
    assert AdverseEvent.objects.filter(pk=ae.pk).exists()


def test_an_onset_before_enrolment_is_refused_when_entered_interactively(db):
    procedure = ProcedureFactory(performed_on=dt.date(2022, 5, 1), patient__enrolled_on=dt.date(2023, 1, 1))
    event = AdverseEvent(
        procedure=procedure,
        category="infection",
        term="Septic arthritis",
        onset_on=dt.date(2022, 5, 4),
        grade=3,
        serious=True,
        serious_hospitalisation=True,
        outcome="recovered",
        resolved_on=dt.date(2022, 5, 20),
    )
    with pytest.raises(ValidationError) as info:
        adverse_event_save(actor=None, event=event)
    assert "enrolment" in info.value.message_dict["onset_on"][0]
    assert not AdverseEvent.objects.exists()


def test_a_valid_serious_fatal_event_is_accepted_once_the_death_date_is_recorded(ae):
    patient = Patient.objects.get(pk=ae.procedure.patient_id)
    patient.death_date, patient.death_cause = dt.date(2023, 3, 20), "Sepsis, see adverse event"
    patient_save(actor=None, patient=patient)
    ae = AdverseEvent.objects.get(pk=ae.pk)
    ae.grade, ae.serious, ae.serious_death, ae.outcome = 5, True, True, "fatal"
    adverse_event_save(actor=None, event=ae)
    assert AdverseEvent.objects.get(pk=ae.pk).outcome == "fatal"


def test_a_patient_with_procedures_cannot_move_to_another_clinic(ae, clinic_b):
    patient = Patient.objects.get(pk=ae.procedure.patient_id)
    patient.clinic = clinic_b
    with pytest.raises(ValidationError) as info:
        patient_save(actor=None, patient=patient)
    assert "cannot move" in info.value.message_dict["clinic"][0]
    with pytest.raises(IntegrityError, match="cannot move"), transaction.atomic():
        Patient.objects.filter(pk=patient.pk).update(clinic=clinic_b)
    assert Patient.objects.get(pk=patient.pk).clinic_id == ae.procedure.clinic_id


def test_a_procedure_cannot_move_after_its_events(ae):
    procedure = Procedure.objects.get(pk=ae.procedure_id)
    procedure.performed_on = dt.date(2023, 3, 10)
    with pytest.raises(ValidationError) as info:
        procedure_save(actor=None, procedure=procedure)
    assert "onset" in info.value.message_dict["performed_on"][0]
    with pytest.raises(IntegrityError, match="cannot be after the onset"), transaction.atomic():
        Procedure.objects.filter(pk=procedure.pk).update(performed_on=dt.date(2023, 3, 10))


# --- the database's backstops speak the rule catalogue (core.rules) -----------------------------


@pytest.fixture
def dead_patient(ae):
    patient = Patient.objects.get(pk=ae.procedure.patient_id)
    patient.death_date, patient.death_cause = dt.date(2023, 4, 1), "Stroke"
    return patient_save(actor=None, patient=patient)


@pytest.mark.parametrize(
    ("model", "changes", "code"),
    [
        (AdverseEvent, {"onset_on": dt.date(2023, 4, 10)}, "ae_onset_not_after_death"),
        (AdverseEvent, {"outcome": "recovered", "resolved_on": None}, "ae_recovered_needs_resolution"),
        (Patient, {"death_date": dt.date(2023, 3, 2)}, "patient_death_not_before_events"),
        (Patient, {"withdrawn_on": dt.date(2023, 2, 15)}, "patient_withdrawal_not_before_procedures"),
        (Procedure, {"performed_on": dt.date(2023, 4, 2)}, "procedure_not_after_death"),
    ],
)
def test_a_raw_update_is_refused_under_the_rules_code(ae, dead_patient, model, changes, code):
    pk = {AdverseEvent: ae.pk, Patient: dead_patient.pk, Procedure: ae.procedure_id}[model]
    before = snapshot()
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        model.objects.filter(pk=pk).update(**changes)
    assert info.value.__cause__.diag.constraint_name == code
    assert snapshot() == before


def test_a_write_that_races_past_the_checks_gets_the_catalogues_field_and_message(ae, dead_patient):
    # As if the death date had been committed between adverse_event_check() and the save.
    event = AdverseEvent.objects.get(pk=ae.pk)
    event.onset_on = dt.date(2023, 4, 10)
    with pytest.raises(ValidationError) as info:
        save_or_field_error(event)
    assert info.value.message_dict == {"onset_on": [CATALOGUE["ae_onset_not_after_death"].message]}
    assert AdverseEvent.objects.get(pk=ae.pk).onset_on == dt.date(2023, 3, 4)


# Rules that cannot or should not be backed by the database: "today" moves, imports load historical
# onsets, and a check at commit would make a death's two entry steps impossible one at a time.
PYTHON_ONLY = {
    "date_not_in_future",
    "ae_onset_not_in_future",
    "ae_resolved_not_in_future",
    "ae_onset_not_before_enrolment",
    "patient_death_needs_fatal_event_or_cause",
    "ae_outcome_keeps_death_explained",
    "retracted_row_frozen",
    "retracted_parent_frozen",
    "contact_attempt_not_before_procedure",
    # Backed per table by "<prefix>_retraction_has_reason" (core.rules.rule_of_constraint).
    "retraction_has_reason",
    # Issue 10: "not in the future" moves with the clock (Python only, as for onsets); which fields a
    # follow-up may change is the service's list (events.choices.FOLLOW_UP_FIELDS).
    "ae_aware_not_in_future",
    "followup_received_not_in_future",
    "followup_changes_known_fields",
}


def test_every_catalogued_rule_is_backed_by_a_constraint_or_a_trigger_of_its_name():
    # Every model of the project: rules of reports (outcome definitions) and events (MedDRA) count too.
    models = apps.get_models()
    constraints = {c.name for model in models for c in model._meta.constraints}
    triggers = " ".join(
        getattr(t, "func", None) or "" for model in models for t in getattr(model._meta, "triggers", ())
    )
    missing = [
        code
        for code in CATALOGUE
        if code not in PYTHON_ONLY and code not in constraints and f"CONSTRAINT = '{code}'" not in triggers
    ]
    assert not missing
