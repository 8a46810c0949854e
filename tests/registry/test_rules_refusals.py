"""The states issue 9 found the registry still let through: refused on their field through the admin.

One scenario (alice's patient enrolled 2023-02-01, a procedure on 2023-03-01 with an event from
2023-03-04) and one table of refusals, shared by the API (tests/api/test_api_rules.py) and the
import (tests/intake/test_import_rules.py): the same rule gives the same message everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.urls import reverse

from events.models import AdverseEvent
from registry import services
from registry.models import FollowUpVisit, Patient, Procedure
from tests.conftest import PASSWORD
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

DEATH = dt.date(2023, 4, 1)


@dataclass
class Refusal:
    """A change the registry refuses: which row, its setup, the change, the field and a message fragment."""

    name: str
    target: str  # "patient", "procedure", "event" or "visit"
    change: dict
    field: str
    fragment: str
    patient_setup: dict = field(default_factory=dict)


REFUSALS = [
    Refusal(
        "onset after death",
        "event",
        {"onset_on": dt.date(2023, 4, 10), "resolved_on": dt.date(2023, 4, 12)},
        "onset_on",
        "after the patient's death date",
        {"death_date": DEATH, "death_cause": "Stroke"},
    ),
    Refusal(
        "visit completed after death",
        "visit",
        {"completed_on": dt.date(2023, 4, 10)},
        "completed_on",
        "completed after the patient's death date",
        {"death_date": DEATH, "death_cause": "Stroke"},
    ),
    Refusal(
        "fatal outcome without a death date",
        "event",
        {"grade": 5, "serious": True, "serious_death": True, "outcome": "fatal", "resolved_on": None},
        "outcome",
        "record the death date first",
    ),
    Refusal(
        "death date without a fatal event or a cause",
        "patient",
        {"death_date": DEATH},
        "death_date",
        "fatal adverse event of this patient or a recorded cause of death",
    ),
    Refusal("death before enrolment", "patient", {"death_date": dt.date(2023, 1, 20)}, "death_date", "enrolment"),
    Refusal(
        "procedure after withdrawal",
        "procedure",
        {"performed_on": dt.date(2023, 3, 25)},
        "performed_on",
        "after the patient's withdrawal date",
        {"withdrawn_on": dt.date(2023, 3, 20)},
    ),
    Refusal(
        "withdrawal before a procedure",
        "patient",
        {"withdrawn_on": dt.date(2023, 2, 15)},
        "withdrawn_on",
        "before a procedure of this patient",
    ),
    Refusal("recovered without a resolution date", "event", {"resolved_on": None}, "resolved_on", "resolution date"),
    Refusal("a resolution date but not recovered", "event", {"outcome": "not_recovered"}, "outcome", "not recovered"),
]
IDS = [r.name for r in REFUSALS]


def scenario(clinic) -> AdverseEvent:
    """Return the scenario's adverse event (its procedure and patient hang from it)."""
    procedure = ProcedureFactory(
        patient__clinic=clinic, patient__enrolled_on=dt.date(2023, 2, 1), performed_on=dt.date(2023, 3, 1)
    )
    return AdverseEventFactory(procedure=procedure, onset_on=dt.date(2023, 3, 4), resolved_on=dt.date(2023, 3, 6))


def prepare(clinic, refusal: Refusal):
    """Return the row ``refusal`` changes, after its patient setup."""
    event = scenario(clinic)
    patient = Patient.objects.get(pk=event.procedure.patient_id)
    if refusal.patient_setup:
        for name, value in refusal.patient_setup.items():
            setattr(patient, name, value)
        services.patient_save(actor=None, patient=patient)
    return {
        "patient": patient,
        "procedure": Procedure.objects.get(pk=event.procedure_id),
        "event": AdverseEvent.objects.get(pk=event.pk),
        "visit": FollowUpVisit.objects.get(procedure_id=event.procedure_id, visit="month_1"),
    }[refusal.target]


def snapshot():
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Patient, Procedure, FollowUpVisit, AdverseEvent)
    }


# --- the admin ---------------------------------------------------------------------------------


def _post_value(value):
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def form_data(response) -> dict:
    """Return the POST data of the change form as the page shows it (main form and inlines)."""
    data = {}

    def add(form):
        for name in form.fields:
            value = form[name].value()
            if value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else _post_value(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = str(value)
        for form in formset.forms:
            add(form)
    return data


def admin_post(client, obj, changes: dict):
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    page = client.get(url)
    assert page.status_code == 200
    data = form_data(page)
    for name, value in changes.items():
        if value is True:
            data[name] = "on"
        else:
            data[name] = _post_value(value)
    return client.post(url, data)


@pytest.mark.parametrize("refusal", REFUSALS, ids=IDS)
def test_the_admin_refuses_it_on_its_field_and_changes_nothing(client, alice, clinic_a, refusal):
    obj = prepare(clinic_a, refusal)
    before = snapshot()
    assert client.login(username="alice", password=PASSWORD)

    response = admin_post(client, obj, refusal.change)

    assert response.status_code == 200  # the form comes back
    errors = response.context["adminform"].form.errors
    assert refusal.field in errors, errors
    assert refusal.fragment.lower() in " ".join(errors[refusal.field]).lower()
    assert snapshot() == before


def test_the_admin_saves_the_same_form_when_nothing_breaks_a_rule(client, alice, clinic_a):
    event = scenario(clinic_a)
    assert client.login(username="alice", password=PASSWORD)

    response = admin_post(client, event, {"term": "Knee swelling"})

    assert response.status_code == 302
    assert AdverseEvent.objects.get(pk=event.pk).term == "Knee swelling"


def test_an_inline_event_on_the_procedure_page_is_refused_on_its_field(client, alice, clinic_a):
    event = scenario(clinic_a)
    before = snapshot()
    assert client.login(username="alice", password=PASSWORD)
    url = reverse("admin:registry_procedure_change", args=[event.procedure_id])
    data = form_data(client.get(url))
    prefix = next(k for k in data if k.endswith("-onset_on")).removesuffix("-onset_on")
    data[f"{prefix}-outcome"] = "not_recovered"

    response = client.post(url, data)

    assert response.status_code == 200
    inline_errors = [f.errors for i in response.context["inline_admin_formsets"] for f in i.formset.forms if f.errors]
    assert any("not recovered" in " ".join(e.get("outcome", [])) for e in inline_errors), inline_errors
    assert snapshot() == before


def test_the_admin_records_a_death_with_its_cause_and_then_the_fatal_event(client, alice, clinic_a):
    # The two-step entry the rules allow: the death date with its cause, then the fatal event.
    event = scenario(clinic_a)
    patient = event.procedure.patient
    assert client.login(username="alice", password=PASSWORD)

    response = admin_post(client, patient, {"death_date": DEATH, "death_cause": "Sepsis after knee infection"})

    assert response.status_code == 302, response.context["adminform"].form.errors
    patient.refresh_from_db()
    assert (patient.death_date, patient.death_cause) == (DEATH, "Sepsis after knee infection")
    fatal = {"grade": 5, "serious": True, "serious_death": True, "outcome": "fatal", "resolved_on": None}
    response = admin_post(client, AdverseEvent.objects.get(pk=event.pk), fatal)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert AdverseEvent.objects.get(pk=event.pk).outcome == "fatal"
