"""Adverse events are retracted with a reason, never deleted, and frozen afterwards."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from events.models import AdverseEvent
from events.services import adverse_event_retract, adverse_event_save
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db


def test_it_retracts_with_a_reason_and_keeps_the_row(alice, clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    adverse_event_retract(actor=alice, event=ae, reason="Duplicate of AE-1")
    ae.refresh_from_db()
    assert ae.retracted_at is not None
    assert ae.retracted_by == alice
    assert ae.retraction_reason == "Duplicate of AE-1"
    assert AdverseEvent.objects.count() == 1
    assert AdverseEvent.objects.active().count() == 0


def test_it_rejects_a_retraction_without_a_reason(alice, clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    with pytest.raises(ValidationError) as info:
        adverse_event_retract(actor=alice, event=ae, reason="   ")
    assert "retraction_reason" in info.value.message_dict
    assert AdverseEvent.objects.get(pk=ae.pk).retracted_at is None


def test_it_refuses_to_edit_a_retracted_event(alice, clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    adverse_event_retract(actor=alice, event=ae, reason="Wrong patient")
    ae.refresh_from_db()
    ae.grade = 3
    with pytest.raises(ValidationError):
        adverse_event_save(actor=alice, event=ae)
    assert AdverseEvent.objects.get(pk=ae.pk).grade == 1


def test_a_clinician_of_another_clinic_cannot_retract(charlie, clinic_a):
    ae = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    with pytest.raises(PermissionDenied):
        adverse_event_retract(actor=charlie, event=ae, reason="Malicious")
    assert AdverseEvent.objects.get(pk=ae.pk).retracted_at is None
