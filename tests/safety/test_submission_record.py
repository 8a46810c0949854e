"""Recording a submission closes a due report; a late one is kept late; only those who may, may."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction

from core.dates import today
from safety import services
from safety.models import DueReport, Submission
from tests.safety.conftest import make_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def due(clinic_a):
    """Return clinic A's open ICH E2A report: clock 2026-01-30, due 2026-02-14."""
    return make_case(clinic_a).due_reports.get()


def record(actor, due, on=dt.date(2026, 2, 10), reference="ES-AEMPS-2026-001"):
    return services.submission_record(actor=actor, due_report=due, submitted_on=on, reference_number=reference)


def test_a_submission_by_the_due_date_closes_the_report_on_time(alice, due):
    submission = record(alice, due)
    due.refresh_from_db()
    assert (due.status, submission.late, submission.submitted_by, submission.reference_number) == (
        "submitted",
        False,
        alice,
        "ES-AEMPS-2026-001",
    )


def test_a_submission_on_the_due_date_is_on_time(dora, due):
    assert record(dora, due, on=dt.date(2026, 2, 14)).late is False


def test_a_late_submission_is_kept_late(alice, due):
    submission = record(alice, due, on=dt.date(2026, 2, 15))
    assert Submission.objects.get(pk=submission.pk).late is True
    with pytest.raises(DatabaseError), transaction.atomic():
        Submission.objects.filter(pk=submission.pk).update(late=False)  # append-only
    assert Submission.objects.get(pk=submission.pk).late is True


@pytest.mark.parametrize(
    ("on", "field"),
    [(today() + dt.timedelta(days=1), "submitted_on"), (dt.date(2026, 1, 29), "submitted_on")],
    ids=["in the future", "before the clock started"],
)
def test_it_refuses_an_impossible_date(alice, due, on, field):
    with pytest.raises(ValidationError) as caught:
        record(alice, due, on=on)
    assert field in caught.value.message_dict
    assert (DueReport.objects.get(pk=due.pk).status, Submission.objects.count()) == ("open", 0)


@pytest.mark.parametrize("reference", ["", "ES\u202e-1", "  "])
def test_it_refuses_a_missing_or_unsafe_reference_number(alice, due, reference):
    with pytest.raises(ValidationError) as caught:
        record(alice, due, reference=reference)
    assert "reference_number" in caught.value.message_dict
    assert Submission.objects.count() == 0


def test_a_report_is_submitted_once(alice, bob, due):
    record(alice, due)
    with pytest.raises(ValidationError):
        record(bob, due, reference="ES-2")
    assert Submission.objects.get().reference_number == "ES-AEMPS-2026-001"


@pytest.mark.parametrize("persona", ["alice", "dora", "root", "sam"])
def test_the_clinic_staff_the_registry_administrator_and_the_safety_reviewer_may_record(request, due, persona):
    record(request.getfixturevalue(persona), due)
    assert DueReport.objects.get(pk=due.pk).status == "submitted"


def test_a_clinician_of_another_clinic_may_not_record_and_nothing_changes(charlie, due):
    with pytest.raises(PermissionDenied):
        record(charlie, due)
    assert (DueReport.objects.get(pk=due.pk).status, Submission.objects.count()) == ("open", 0)


def test_a_withdrawal_needs_a_reason_and_a_reviewer_or_administrator(alice, sam, due):
    with pytest.raises(PermissionDenied):
        services.due_report_withdraw(actor=alice, due_report=due, reason="Not reportable.")
    with pytest.raises(ValidationError):
        services.due_report_withdraw(actor=sam, due_report=due, reason="  ")
    assert DueReport.objects.get(pk=due.pk).status == "open"
    services.due_report_withdraw(actor=sam, due_report=due, reason="Reviewer: not related after culture results.")
    due.refresh_from_db()
    assert (due.status, due.withdrawn_reason) == ("withdrawn", "Reviewer: not related after culture results.")
