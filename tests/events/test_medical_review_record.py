"""Medical reviews (events.services.medical_review_record): safety reviewers' own assessment, kept beside the site's."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from events.hooks import case_changed
from events.models import AdverseEvent, MedicalReview, ReferenceSafetyInformation
from events.selectors import expected_by_rsi, latest_review, reviews_for_user
from events.services import medical_review_record, reference_safety_information_save
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

REVIEW = {
    "serious": True,
    "serious_hospitalisation": True,
    "causality_procedure": "probable",
    "causality_product": "possible",
    "expectedness": "unexpected",
    "comment": "Septic arthritis after injection: unexpected, related to the procedure.",
}


@pytest.fixture
def event(alice, clinic_a):
    return AdverseEventFactory(
        procedure=ProcedureFactory(patient__clinic=clinic_a),
        category="infection",
        term="Septic arthritis",
        causality_procedure="unlikely",
        causality_product="unlikely",
        expectedness="expected",
    )


def test_the_safety_reviewer_records_a_review_and_the_site_assessment_stays(sam, event):
    review = medical_review_record(actor=sam, event=event, **REVIEW)
    stored = AdverseEvent.objects.get(pk=event.pk)
    assert (stored.serious, stored.causality_procedure, stored.expectedness) == (False, "unlikely", "expected")
    assert stored.version == event.version
    assert (review.reviewer, review.serious, review.causality_procedure) == (sam, True, "probable")
    assert review.expectedness_basis is None


def test_a_later_review_is_the_current_one_and_the_earlier_is_kept(sam, root, event):
    first = medical_review_record(actor=sam, event=event, **REVIEW)
    second = medical_review_record(actor=root, event=event, **{**REVIEW, "causality_procedure": "certain"})
    assert latest_review(event) == second
    assert list(reviews_for_user(sam).filter(event=event).order_by("id")) == [first, second]


@pytest.mark.parametrize("persona", ["alice", "dora", "charlie"])
def test_clinic_staff_may_not_record_a_review(request, persona, event):
    with pytest.raises(PermissionDenied):
        medical_review_record(actor=request.getfixturevalue(persona), event=event, **REVIEW)
    assert not MedicalReview.objects.exists()


def test_a_serious_review_needs_a_criterion(sam, event):
    with pytest.raises(ValidationError) as info:
        medical_review_record(actor=sam, event=event, **{**REVIEW, "serious_hospitalisation": False})
    assert "serious" in info.value.message_dict
    assert not MedicalReview.objects.exists()


def test_an_expected_event_is_expected_by_the_patient_guide_entry(sam, alice, clinic_a):
    swelling = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))  # injection-site reaction
    basis = expected_by_rsi(swelling)
    assert basis is not None and basis.source == "Patient guide"
    review = medical_review_record(
        actor=sam,
        event=swelling,
        serious=False,
        causality_procedure="certain",
        causality_product="possible",
        expectedness="expected",
    )
    assert review.expectedness_basis == basis


def test_a_preferred_term_entry_for_the_cell_type_beats_a_category_entry(meddra_27_1, root, alice, clinic_a):
    procedure = ProcedureFactory(patient__clinic=clinic_a, cell_type="bmac")
    # LLT 94000001 of the synthetic release has the preferred term 93000001.
    event = AdverseEventFactory(procedure=procedure, category="infection", term="Septic", meddra_code="94000001")
    assert event.meddra_pt_code == "93000001"
    assert expected_by_rsi(event) is None
    by_category = reference_safety_information_save(
        actor=root, entry=ReferenceSafetyInformation(category="infection", term="Infection", source="Test")
    )
    assert expected_by_rsi(event) == by_category
    for_bmac = reference_safety_information_save(
        actor=root,
        entry=ReferenceSafetyInformation(cell_type="bmac", meddra_pt_code="93000001", term="Arthritis", source="T"),
    )
    reference_safety_information_save(
        actor=root,
        entry=ReferenceSafetyInformation(cell_type="adipose_svf", meddra_pt_code="93000001", term="Other", source="T"),
    )
    assert expected_by_rsi(event) == for_bmac
    for_bmac.retired_on = for_bmac.added_on
    reference_safety_information_save(actor=root, entry=for_bmac)
    assert expected_by_rsi(event) == by_category


def test_only_registry_administrators_maintain_the_reference_safety_information(sam, alice):
    for actor in (sam, alice):
        with pytest.raises(PermissionDenied):
            reference_safety_information_save(
                actor=actor, entry=ReferenceSafetyInformation(category="infection", term="Infection")
            )


def test_a_retracted_event_takes_no_review(sam, alice, event):
    from events.services import adverse_event_retract

    adverse_event_retract(actor=alice, event=event, reason="Duplicate")
    with pytest.raises(ValidationError):
        medical_review_record(actor=sam, event=event, **REVIEW)


def test_the_review_is_announced_in_its_transaction(sam, event):
    sent = []

    def receiver(sender, *, reason, review, **kwargs):
        sent.append((reason, review, MedicalReview.objects.filter(pk=review.pk).exists()))

    case_changed.connect(receiver, dispatch_uid="test_review_announced")
    try:
        review = medical_review_record(actor=sam, event=event, **REVIEW)
    finally:
        case_changed.disconnect(dispatch_uid="test_review_announced")
    assert sent == [("review", review, True)]


def test_a_receiver_that_fails_rolls_the_review_back(sam, event):
    def receiver(sender, **kwargs):
        raise RuntimeError("clock failed")

    case_changed.connect(receiver, dispatch_uid="test_review_rollback")
    try:
        with pytest.raises(RuntimeError):
            medical_review_record(actor=sam, event=event, **REVIEW)
    finally:
        case_changed.disconnect(dispatch_uid="test_review_rollback")
    assert not MedicalReview.objects.exists()
    assert event.onset_on <= dt.date.today()
