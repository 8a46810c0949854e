"""Follow-up reports (events.services.follow_up_report_create): numbered, applied to the event, audited."""

from __future__ import annotations

import datetime as dt
import threading

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from core.dates import today
from events.hooks import case_changed
from events.models import AdverseEvent, FollowUpReport
from events.services import adverse_event_retract, follow_up_report_create
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(alice, clinic_a):
    """Return an open, recovering, non-serious event of clinic A that the clinic learned of on its onset."""
    procedure = ProcedureFactory(patient__clinic=clinic_a, performed_on=dt.date(2024, 3, 1))
    return AdverseEventFactory(
        procedure=procedure,
        onset_on=dt.date(2024, 3, 3),
        aware_on=dt.date(2024, 3, 4),
        outcome="recovering",
        grade=2,
    )


@pytest.fixture
def announced():
    """Return the case_changed signals sent during the test, as (reason, follow_up) pairs."""
    sent = []

    def receiver(sender, *, event, actor, reason, follow_up, review, **kwargs):
        sent.append((reason, follow_up, actor))

    case_changed.connect(receiver, dispatch_uid="test_follow_up_announced")
    yield sent
    case_changed.disconnect(dispatch_uid="test_follow_up_announced")


def test_it_applies_the_changes_to_the_event_and_keeps_old_and_new(alice, event):
    report = follow_up_report_create(
        actor=alice,
        event=event,
        received_on=dt.date(2024, 3, 20),
        narrative="Seen in clinic: the swelling has gone.",
        changes={"outcome": "recovered", "resolved_on": dt.date(2024, 3, 18), "case_status": "closed"},
    )
    event.refresh_from_db()
    assert (event.outcome, event.resolved_on, event.case_status) == ("recovered", dt.date(2024, 3, 18), "closed")
    assert report.number == 1
    assert report.created_by == alice
    assert report.changes == {
        "outcome": ["recovering", "recovered"],
        "resolved_on": [None, "2024-03-18"],
        "case_status": ["open", "closed"],
    }


def test_a_change_to_the_current_value_is_not_recorded_as_a_change(alice, event):
    report = follow_up_report_create(
        actor=alice,
        event=event,
        received_on=dt.date(2024, 3, 20),
        narrative="Still recovering; grade unchanged.",
        changes={"grade": 2, "outcome": "recovering"},
    )
    assert report.changes == {}
    assert AdverseEvent.objects.get(pk=event.pk).version == event.version


def test_the_event_change_is_audited_with_who_and_the_follow_up_action(alice, event):
    follow_up_report_create(
        actor=alice,
        event=event,
        received_on=dt.date(2024, 3, 20),
        narrative="Admitted for drainage.",
        changes={"serious": True, "serious_hospitalisation": "true", "grade": "3"},
    )
    last = list(pghistory.models.Events.objects.tracks(event).order_by("pgh_created_at", "pgh_id"))[-1]
    assert last.pgh_label == "update"
    assert last.pgh_diff["grade"] == [2, 3]
    assert last.pgh_diff["serious_hospitalisation"] == [False, True]
    assert last.pgh_context["user"] == alice.pk
    assert last.pgh_context["action"] == "follow_up_report_create"
    report = FollowUpReport.objects.get(event=event)
    assert report.changes["serious"] == ["false", "true"]
    assert report.changes["grade"] == ["2", "3"]


def test_a_change_the_event_rules_refuse_stores_nothing(alice, event):
    with pytest.raises(ValidationError) as info:
        follow_up_report_create(
            actor=alice,
            event=event,
            received_on=dt.date(2024, 3, 20),
            narrative="Recovered.",
            changes={"outcome": "recovered"},  # no resolution date
        )
    assert "resolved_on" in info.value.message_dict
    stored = AdverseEvent.objects.get(pk=event.pk)
    assert (stored.outcome, stored.version) == ("recovering", event.version)
    assert not FollowUpReport.objects.exists()


def test_a_field_a_follow_up_may_not_change_is_an_error_on_changes(alice, event):
    with pytest.raises(ValidationError) as info:
        follow_up_report_create(
            actor=alice,
            event=event,
            received_on=dt.date(2024, 3, 20),
            narrative="Wrong onset.",
            changes={"onset_on": "2024-03-01", "term": "Other"},
        )
    assert "onset_on, term" in info.value.message_dict["changes"][0]
    assert not FollowUpReport.objects.exists()


def test_an_unparsable_value_is_an_error_on_its_field(alice, event):
    with pytest.raises(ValidationError) as info:
        follow_up_report_create(
            actor=alice,
            event=event,
            received_on=dt.date(2024, 3, 20),
            narrative="Resolved.",
            changes={"resolved_on": "the 18th", "grade": [3]},
        )
    assert set(info.value.message_dict) == {"resolved_on", "grade"}
    assert not FollowUpReport.objects.exists()


@pytest.mark.parametrize(
    ("received_on", "message"),
    [
        (dt.date(2024, 3, 3), "before the clinic became aware"),
        (today() + dt.timedelta(days=1), "cannot be in the future"),
    ],
)
def test_it_refuses_a_received_date_before_awareness_or_in_the_future(alice, event, received_on, message):
    with pytest.raises(ValidationError) as info:
        follow_up_report_create(actor=alice, event=event, received_on=received_on, narrative="News.", changes={})
    assert message in info.value.message_dict["received_on"][0]
    assert not FollowUpReport.objects.exists()


def test_it_needs_a_narrative_even_when_it_changes_something(alice, event):
    with pytest.raises(ValidationError) as info:
        follow_up_report_create(
            actor=alice, event=event, received_on=dt.date(2024, 3, 20), narrative="  ", changes={"grade": 1}
        )
    assert "narrative" in info.value.message_dict
    assert AdverseEvent.objects.get(pk=event.pk).grade == 2


def test_a_follow_up_without_changes_is_kept_for_its_narrative(bob, event):
    report = follow_up_report_create(
        actor=bob, event=event, received_on=dt.date(2024, 3, 10), narrative="Phoned: no news.", changes={}
    )
    assert (report.number, report.changes, report.created_by) == (1, {}, bob)


def test_follow_ups_are_numbered_one_after_another(alice, event):
    numbers = [
        follow_up_report_create(
            actor=alice, event=event, received_on=dt.date(2024, 3, 10), narrative=f"Call {n}", changes={}
        ).number
        for n in range(3)
    ]
    assert numbers == [1, 2, 3]


def test_a_clinician_of_another_clinic_and_the_safety_reviewer_may_not_add_one(charlie, sam, event):
    for actor in (charlie, sam):
        with pytest.raises(PermissionDenied):
            follow_up_report_create(
                actor=actor, event=event, received_on=dt.date(2024, 3, 10), narrative="News.", changes={"grade": 1}
            )
    assert not FollowUpReport.objects.exists()
    assert AdverseEvent.objects.get(pk=event.pk).grade == 2


def test_a_retracted_event_takes_no_follow_up(alice, event):
    adverse_event_retract(actor=alice, event=event, reason="Duplicate")
    with pytest.raises(ValidationError):
        follow_up_report_create(actor=alice, event=event, received_on=dt.date(2024, 3, 10), narrative="News.")
    assert not FollowUpReport.objects.exists()


def test_it_announces_the_follow_up_once(alice, event, announced):
    report = follow_up_report_create(
        actor=alice, event=event, received_on=dt.date(2024, 3, 10), narrative="Worse.", changes={"grade": 3}
    )
    assert announced == [("follow_up", report, alice)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_follow_ups_get_unique_numbers(alice, event):
    n = 4
    barrier = threading.Barrier(n)
    numbers, failures = [], []

    def add(index):
        try:
            barrier.wait()
            report = follow_up_report_create(
                actor=alice, event=event, received_on=dt.date(2024, 3, 10), narrative=f"Call {index}", changes={}
            )
            numbers.append(report.number)
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(numbers) == [1, 2, 3, 4]
    assert sorted(FollowUpReport.objects.filter(event=event).values_list("number", flat=True)) == [1, 2, 3, 4]
