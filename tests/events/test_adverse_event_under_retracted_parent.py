"""Nothing is added to, or changed under, a retracted procedure or a procedure of a retracted patient.

The admin, the API and the import show one message for a retracted event (registry.rules.RETRACTED_FROZEN).
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from events.admin_inlines import AdverseEventForm
from events.models import AdverseEvent
from events.services import adverse_event_retract, adverse_event_save
from registry.services import patient_retract, procedure_retract
from tests.api.conftest import api_client_for
from tests.api.test_api_adverse_events import URL, new_event
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

UNDER_PROCEDURE = "The procedure this record belongs to is retracted: nothing can be added to it or changed in it."
UNDER_PATIENT = "The patient this record belongs to is retracted: nothing can be added to it or changed in it."
FROZEN = "This adverse event is retracted and can no longer be edited."


def _stored(event):
    return AdverseEvent.objects.values().get(pk=event.pk)


def test_a_new_event_under_a_retracted_procedure_is_refused(alice, clinic_a):
    procedure = procedure_retract(actor=alice, procedure=ProcedureFactory(patient__clinic=clinic_a), reason="Twice")

    with pytest.raises(ValidationError) as info:
        adverse_event_save(actor=alice, event=AdverseEventFactory.build(procedure=procedure))

    assert info.value.messages == [UNDER_PROCEDURE]
    assert not AdverseEvent.objects.exists()


def test_a_new_event_under_a_procedure_of_a_retracted_patient_is_refused(alice, clinic_a):
    procedure = ProcedureFactory(patient__clinic=clinic_a)
    patient_retract(actor=alice, patient=procedure.patient, reason="Entered twice")
    procedure.refresh_from_db()

    with pytest.raises(ValidationError) as info:
        adverse_event_save(actor=alice, event=AdverseEventFactory.build(procedure=procedure))

    assert info.value.messages == [UNDER_PATIENT]
    assert not AdverseEvent.objects.exists()


def test_a_changed_event_under_a_retracted_procedure_is_refused_and_stays_as_it_was(alice, clinic_a):
    event = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    procedure_retract(actor=alice, procedure=event.procedure, reason="Twice")
    before = _stored(event)
    event = AdverseEvent.objects.get(pk=event.pk)
    event.grade = 2

    with pytest.raises(ValidationError) as info:
        adverse_event_save(actor=alice, event=event)

    assert info.value.messages == [UNDER_PROCEDURE]
    assert _stored(event) == before


def test_an_event_cannot_be_moved_out_of_a_retracted_procedure(alice, clinic_a):
    event = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    other = ProcedureFactory(patient=event.procedure.patient)
    procedure_retract(actor=alice, procedure=event.procedure, reason="Twice")
    before = _stored(event)
    event = AdverseEvent.objects.get(pk=event.pk)
    event.procedure = other

    with pytest.raises(ValidationError) as info:
        adverse_event_save(actor=alice, event=event)

    assert info.value.messages == [UNDER_PROCEDURE]
    assert _stored(event) == before


def test_an_event_under_a_live_procedure_is_still_saved(alice, clinic_a):
    procedure = ProcedureFactory(patient__clinic=clinic_a)
    procedure_retract(actor=alice, procedure=ProcedureFactory(patient=procedure.patient), reason="Twice")

    saved = adverse_event_save(actor=alice, event=AdverseEventFactory.build(procedure=procedure))

    assert AdverseEvent.objects.get(pk=saved.pk).procedure == procedure


def test_the_api_answers_400_for_an_event_under_a_retracted_procedure_and_creates_nothing(alice, clinic_a):
    procedure = procedure_retract(actor=alice, procedure=ProcedureFactory(patient__clinic=clinic_a), reason="Twice")

    response = api_client_for(alice).post(URL, new_event(procedure, event_id="EXT-R1"), format="json")

    assert response.status_code == 400
    assert UNDER_PROCEDURE in str(response.json())
    assert not AdverseEvent.objects.exists()


def test_the_api_answers_400_for_an_event_under_a_procedure_of_a_retracted_patient(alice, clinic_a):
    procedure = ProcedureFactory(patient__clinic=clinic_a)
    patient_retract(actor=alice, patient=procedure.patient, reason="Entered twice")

    response = api_client_for(alice).post(URL, new_event(procedure, event_id="EXT-R2"), format="json")

    assert response.status_code == 400
    assert UNDER_PATIENT in str(response.json())
    assert not AdverseEvent.objects.exists()


def test_the_service_and_the_admin_form_refuse_a_retracted_event_with_the_one_message(alice, clinic_a):
    event = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    adverse_event_retract(actor=alice, event=event, reason="Wrong patient")
    event = AdverseEvent.objects.get(pk=event.pk)
    form = AdverseEventForm(instance=event, data={**AdverseEventForm(instance=event).initial, "grade": 2})

    assert not form.is_valid()
    assert form.non_field_errors() == [FROZEN]
    event.grade = 2
    with pytest.raises(ValidationError) as info:
        adverse_event_save(actor=alice, event=event)
    assert info.value.messages == [FROZEN]
