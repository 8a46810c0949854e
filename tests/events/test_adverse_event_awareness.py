"""The awareness date (issue 10): defaults to the day of recording, never before onset, never in the future;
and every write of a case is announced with events.hooks.case_changed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from core.dates import today
from events.hooks import case_changed
from events.models import AdverseEvent
from events.services import adverse_event_restore, adverse_event_retract, adverse_event_save
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db


def test_awareness_defaults_to_the_day_the_event_is_recorded(alice, clinic_a):
    event = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    assert event.aware_on == today()
    assert (event.case_status, event.reporter_type, event.communicable_disease) == ("open", "clinician", False)


@pytest.mark.parametrize(
    ("aware_on", "message"),
    [
        (dt.date(2023, 1, 15), "The awareness date cannot be before the onset date."),
        (today() + dt.timedelta(days=1), "The awareness date cannot be in the future."),
    ],
)
def test_awareness_is_never_before_onset_nor_in_the_future(alice, clinic_a, aware_on, message):
    procedure = ProcedureFactory(patient__clinic=clinic_a, performed_on=dt.date(2023, 1, 10))
    with pytest.raises(ValidationError) as info:
        AdverseEventFactory(procedure=procedure, onset_on=dt.date(2023, 1, 16), aware_on=aware_on)
    assert info.value.message_dict == {"aware_on": [message]}
    assert not AdverseEvent.objects.exists()


def test_every_write_of_a_case_is_announced_with_its_reason(alice, root, clinic_a):
    sent = []

    def receiver(sender, *, event, actor, reason, follow_up, review, **kwargs):
        sent.append((reason, actor, follow_up, review))

    case_changed.connect(receiver, dispatch_uid="test_every_write_announced")
    try:
        event = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
        event.grade = 2
        adverse_event_save(actor=alice, event=event)
        adverse_event_retract(actor=alice, event=event, reason="Duplicate")
        adverse_event_restore(actor=root, event=event)
    finally:
        case_changed.disconnect(dispatch_uid="test_every_write_announced")
    assert sent == [
        ("created", None, None, None),
        ("changed", alice, None, None),
        ("retracted", alice, None, None),
        ("restored", root, None, None),
    ]
