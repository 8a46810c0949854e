"""Re-evaluation of a case on every change: follow-ups and reviews start new clocks, downgrades keep history."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from events import services as event_services
from events.hooks import case_changed
from events.models import AdverseEvent
from safety import services
from safety.models import CaseRuleState, DueReport
from safety.services import case_evaluate
from tests.safety.conftest import AWARE, ICH_7, ICH_15, due_codes, make_case, make_procedure, rule

pytestmark = pytest.mark.django_db

NON_SERIOUS = {"serious": False, "serious_hospitalisation": False, "grade": 2, "action_taken": "medication"}
SERIOUS = {"serious": True, "serious_hospitalisation": True, "grade": 3, "action_taken": "hospitalisation"}


def follow_up(actor, event, received_on, changes, narrative="Seen again at the clinic."):
    return event_services.follow_up_report_create(
        actor=actor, event=event, received_on=received_on, narrative=narrative, changes=changes
    )


def test_a_follow_up_that_makes_the_case_serious_starts_a_clock_from_its_own_awareness_date(alice, clinic_a):
    event = make_case(clinic_a, **NON_SERIOUS)
    assert due_codes(event) == []
    report = follow_up(alice, event, dt.date(2026, 3, 10), SERIOUS)
    due = DueReport.objects.get(event=event)
    assert (due.rule.code, due.clock_start, due.due_on, due.started_by, due.follow_up) == (
        ICH_15,
        dt.date(2026, 3, 10),
        dt.date(2026, 3, 25),
        "follow_up",
        report,
    )
    assert due.started_by_label == "Follow-up 1"


def test_a_follow_up_making_the_case_unexpected_starts_a_clock(alice, clinic_a):
    event = make_case(clinic_a, expectedness="expected")
    follow_up(alice, event, dt.date(2026, 2, 20), {"expectedness": "unexpected"})
    assert event.due_reports.get().clock_start == dt.date(2026, 2, 20)


def test_a_downgrade_keeps_the_open_due_report_and_its_history(alice, clinic_a):
    event = make_case(clinic_a)
    due = event.due_reports.get()
    follow_up(alice, event, dt.date(2026, 2, 5), {**NON_SERIOUS, "outcome": "recovered", "resolved_on": "2026-02-04"})
    due.refresh_from_db()
    assert (due.status, due.clock_start, DueReport.objects.filter(event=event).count()) == ("open", AWARE, 1)


def test_a_case_upgraded_again_after_its_report_was_submitted_owes_a_new_report(alice, clinic_a):
    event = make_case(clinic_a)
    first = event.due_reports.get()
    services.submission_record(
        actor=alice, due_report=first, submitted_on=dt.date(2026, 2, 10), reference_number="ES-1"
    )
    follow_up(alice, event, dt.date(2026, 2, 15), NON_SERIOUS)
    follow_up(alice, event, dt.date(2026, 3, 1), SERIOUS)
    second = DueReport.objects.filter(event=event).latest("id")
    assert second != first and (second.status, second.clock_start, second.started_by) == (
        "open",
        dt.date(2026, 3, 1),
        "follow_up",
    )


def test_a_follow_up_reporting_death_makes_the_7_day_report_due_beside_the_15_day_one(alice, clinic_a):
    event = make_case(clinic_a)
    patient = event.procedure.patient
    patient.death_date, patient.death_cause = dt.date(2026, 2, 18), "Sepsis"
    patient.save()
    follow_up(
        alice,
        event,
        dt.date(2026, 2, 19),
        {"outcome": "fatal", "grade": 5, "serious_death": True, "serious_hospitalisation": False},
    )
    assert due_codes(event) == [ICH_15, ICH_7]
    seven = DueReport.objects.get(event=event, rule__code=ICH_7)
    assert (seven.clock_start, seven.due_on) == (dt.date(2026, 2, 19), dt.date(2026, 2, 26))


def test_a_review_that_finds_the_case_unexpected_starts_a_clock_on_the_review_date(sam, clinic_a):
    event = make_case(clinic_a, expectedness="expected")
    review = event_services.medical_review_record(
        actor=sam,
        event=event,
        serious=True,
        serious_hospitalisation=True,
        causality_procedure="probable",
        causality_product="possible",
        expectedness="unexpected",
    )
    due = event.due_reports.get()
    assert (due.started_by, due.review, due.clock_start) == ("review", review, timezone.localdate(review.reviewed_at))


def test_a_reviewer_who_finds_the_case_expected_does_not_stop_the_sites_clock(sam, clinic_a):
    event = make_case(clinic_a)
    event_services.medical_review_record(
        actor=sam,
        event=event,
        serious=False,
        causality_procedure="unlikely",
        causality_product="unlikely",
        expectedness="expected",
    )
    due = event.due_reports.get()
    assert (due.status, due.due_on) == ("open", AWARE + dt.timedelta(days=15))
    assert CaseRuleState.objects.get(event=event, rule=rule(ICH_15)).met is False


def test_the_site_and_the_reviewer_combine_seriousness_and_causality(sam, clinic_a):
    # The site: non-serious, unrelated; the reviewer: serious and possibly related. The stronger view counts.
    event = make_case(clinic_a, **NON_SERIOUS, causality_procedure="unlikely", causality_product="")
    assert due_codes(event) == []
    event_services.medical_review_record(
        actor=sam,
        event=event,
        serious=True,
        serious_medically_important=True,
        causality_procedure="possible",
        causality_product="unlikely",
        expectedness="unexpected",
    )
    assert due_codes(event) == [ICH_15]


def test_a_retracted_case_has_its_open_due_reports_withdrawn_and_kept(alice, clinic_a):
    event = make_case(clinic_a)
    event_services.adverse_event_retract(actor=alice, event=event, reason="Entered for the wrong patient.")
    due = event.due_reports.get()
    assert (due.status, due.withdrawn_reason) == (
        "withdrawn",
        "The adverse event was retracted: Entered for the wrong patient.",
    )


def test_a_restored_case_owes_its_report_again_from_awareness(alice, root, clinic_a):
    event = make_case(clinic_a)
    event_services.adverse_event_retract(actor=alice, event=event, reason="Wrong patient, it seemed.")
    event_services.adverse_event_restore(actor=root, event=AdverseEvent.objects.get(pk=event.pk))
    assert list(DueReport.objects.filter(event=event).order_by("id").values_list("status", "clock_start")) == [
        ("withdrawn", AWARE),
        ("open", AWARE),
    ]


def test_repeated_evaluations_make_no_second_open_report(clinic_a):
    event = make_case(clinic_a)
    for reason in ("changed", "created", "changed"):
        case_changed.send(sender=type(event), event=event, actor=None, reason=reason, follow_up=None, review=None)
    assert case_evaluate(event=event) == []
    assert due_codes(event) == [ICH_15]


def test_the_database_refuses_a_second_open_report_for_the_same_case_and_rule(clinic_a):
    due = make_case(clinic_a).due_reports.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        DueReport.objects.create(
            event=due.event,
            rule=due.rule,
            clock_start=due.clock_start,
            due_on=due.due_on,
            started_by="initial",
            recipient=due.recipient,
            form=due.form,
        )


def test_a_due_report_is_never_deleted(clinic_a):
    due = make_case(clinic_a).due_reports.get()
    with pytest.raises(DatabaseError), transaction.atomic():
        DueReport.objects.filter(pk=due.pk).delete()
    assert DueReport.objects.filter(pk=due.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_of_one_case_make_one_due_report(clinic_a):
    event = make_case(clinic_a, **NON_SERIOUS)
    # The case turns serious behind the services' back, so four evaluations race to find it newly met.
    AdverseEvent.objects.filter(pk=event.pk).update(serious=True, serious_hospitalisation=True, grade=3)
    barrier, made, errors = threading.Barrier(4), [], []

    def evaluate():
        try:
            barrier.wait()
            made.append(len(case_evaluate(event=event, reason="changed")))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and sorted(made) == [0, 0, 0, 1]
    assert due_codes(event) == [ICH_15]


def test_a_fatal_case_gets_the_7_day_clock_without_the_death_criterion_ticked(clinic_a):
    # Grade 5 alone makes an event fatal (events.rules); the rules read it as a death all the same.
    procedure = make_procedure(clinic_a)
    patient = procedure.patient
    patient.death_date, patient.death_cause = dt.date(2026, 1, 28), "Septic shock"
    patient.save()
    event = make_case(
        clinic_a, procedure=procedure, outcome="fatal", grade=5, serious=True, serious_hospitalisation=True
    )
    assert not event.serious_death
    assert due_codes(event) == [ICH_7]
    assert event.due_reports.get().due_on == AWARE + dt.timedelta(days=7)


def test_a_corrected_awareness_date_moves_the_initial_reports_clock(alice, clinic_a):
    event = make_case(clinic_a)
    due = event.due_reports.get()
    assert (due.clock_start, due.due_on) == (AWARE, dt.date(2026, 2, 14))
    event = AdverseEvent.objects.get(pk=event.pk)
    event.aware_on = dt.date(2026, 1, 27)
    event_services.adverse_event_save(actor=alice, event=event)
    due.refresh_from_db()
    assert (due.clock_start, due.due_on, due.status) == (dt.date(2026, 1, 27), dt.date(2026, 2, 11), "open")
    assert DueReport.objects.filter(event=event).count() == 1


def test_rules_cannot_supersede_each_other_in_a_circle():
    laxer = rule(ICH_15)
    laxer.supersedes = rule(ICH_7)  # the 7-day rule already supersedes the 15-day one
    with pytest.raises(ValidationError) as caught:
        laxer.full_clean()
    assert "supersedes" in caught.value.message_dict
