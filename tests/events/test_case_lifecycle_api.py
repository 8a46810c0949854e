"""The case's life in the API: the event's case fields, .../follow-ups/ and .../reviews/, row-level limits."""

from __future__ import annotations

import datetime as dt

import pytest

from events.models import AdverseEvent, FollowUpReport, MedicalReview
from events.services import follow_up_report_create, medical_review_record
from tests.api.conftest import api_client_for
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/adverse-events"


@pytest.fixture
def world(clinic_a, clinic_b, alice, charlie, sam, root):
    procedure = ProcedureFactory(patient__clinic=clinic_a, performed_on=dt.date(2024, 3, 1))
    a = AdverseEventFactory(
        procedure=procedure,
        category="infection",
        term="Septic arthritis A",
        onset_on=dt.date(2024, 3, 3),
        aware_on=dt.date(2024, 3, 4),
        grade=2,
        outcome="recovering",
        causality_procedure="unlikely",
    )
    b = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_b), term="Swelling B")
    return {"a": a, "b": b}


REVIEW = {
    "serious": True,
    "serious_hospitalisation": True,
    "causality_procedure": "probable",
    "causality_product": "possible",
    "expectedness": "unexpected",
    "comment": "Related.",
}


def test_the_event_carries_its_case_fields(alice, world):
    event = world["a"]
    api = api_client_for(alice)
    body = api.get(f"{BASE}/{event.pk}/").json()
    assert {k: body[k] for k in ("aware_on", "case_status", "narrative", "reporter_type", "communicable_disease")} == {
        "aware_on": "2024-03-04",
        "case_status": "open",
        "narrative": "",
        "reporter_type": "clinician",
        "communicable_disease": False,
    }
    response = api.patch(
        f"{BASE}/{event.pk}/",
        {"aware_on": "2024-03-02", "narrative": "Hot knee."},
        format="json",
        HTTP_IF_MATCH=f'"{event.version}"',
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "aware_on"
    response = api.patch(
        f"{BASE}/{event.pk}/",
        {"case_status": "closed", "reporter_type": "patient", "communicable_disease": True},
        format="json",
        HTTP_IF_MATCH=f'"{event.version}"',
    )
    assert response.status_code == 200, response.json()
    assert AdverseEvent.objects.get(pk=event.pk).communicable_disease is True


def test_a_clinician_posts_a_follow_up_and_reads_it_back(alice, world):
    event = world["a"]
    api = api_client_for(alice)
    response = api.post(
        f"{BASE}/{event.pk}/follow-ups/",
        {
            "received_on": "2024-03-20",
            "narrative": "Recovered after drainage.",
            "changes": {"outcome": "recovered", "resolved_on": "2024-03-18", "action_taken": "aspiration"},
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="fu-1",
        HTTP_IF_MATCH=f'"{event.version}"',
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == 1
    assert body["created_by"] == "alice"
    assert body["changes"] == {
        "outcome": ["recovering", "recovered"],
        "resolved_on": [None, "2024-03-18"],
        "action_taken": ["", "aspiration"],
    }
    event.refresh_from_db()
    assert (event.outcome, event.version) == ("recovered", 2)
    assert api.get(f"{BASE}/{event.pk}/")["ETag"] == '"2"'
    listed = api.get(f"{BASE}/{event.pk}/follow-ups/").json()
    assert [r["number"] for r in listed] == [1]
    # The same key and body replays the first answer and stores nothing new.
    replay = api.post(
        f"{BASE}/{event.pk}/follow-ups/",
        {
            "received_on": "2024-03-20",
            "narrative": "Recovered after drainage.",
            "changes": {"outcome": "recovered", "resolved_on": "2024-03-18", "action_taken": "aspiration"},
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="fu-1",
        HTTP_IF_MATCH=f'"{event.version - 1}"',
    )
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert FollowUpReport.objects.count() == 1


def test_a_follow_up_on_a_stale_event_is_refused_with_412(alice, world):
    event = world["a"]
    response = api_client_for(alice).post(
        f"{BASE}/{event.pk}/follow-ups/",
        {"received_on": "2024-03-20", "narrative": "News.", "changes": {"grade": 3}},
        format="json",
        HTTP_IF_MATCH=f'"{event.version + 5}"',
    )
    assert response.status_code == 412
    assert not FollowUpReport.objects.exists()


def test_a_bad_change_answers_under_changes_and_stores_nothing(alice, world):
    event = world["a"]
    api = api_client_for(alice)
    response = api.post(
        f"{BASE}/{event.pk}/follow-ups/",
        {"received_on": "2024-03-20", "narrative": "Recovered.", "changes": {"outcome": "recovered"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "changes.resolved_on"
    response = api.post(
        f"{BASE}/{event.pk}/follow-ups/",
        {"received_on": "2024-03-20", "narrative": "Moved.", "changes": {"onset_on": "2024-03-02"}},
        format="json",
    )
    assert response.status_code == 400
    assert "onset_on" in response.json()["errors"][0]["detail"]
    response = api.post(
        f"{BASE}/{event.pk}/follow-ups/", {"received_on": "2024-03-01", "narrative": "Early."}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "received_on"
    assert not FollowUpReport.objects.exists()
    assert AdverseEvent.objects.get(pk=event.pk).version == event.version


def test_the_reviewer_reviews_but_cannot_edit_nor_follow_up(sam, world):
    event = world["a"]
    api = api_client_for(sam)
    before = AdverseEvent.objects.values().get(pk=event.pk)
    assert api.get(f"{BASE}/{world['b'].pk}/").status_code == 200  # every clinic
    patch = api.patch(f"{BASE}/{event.pk}/", {"grade": 3}, format="json", HTTP_IF_MATCH=f'"{event.version}"')
    assert patch.status_code == 403
    follow_up = api.post(
        f"{BASE}/{event.pk}/follow-ups/", {"received_on": "2024-03-20", "narrative": "x", "changes": {"grade": 3}},
        format="json",
    )  # fmt: skip
    assert follow_up.status_code == 403
    response = api.post(f"{BASE}/{event.pk}/reviews/", REVIEW, format="json", HTTP_IDEMPOTENCY_KEY="rv-1")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["reviewer"], body["causality_procedure"], body["expectedness_basis"]) == ("sam", "probable", None)
    assert AdverseEvent.objects.values().get(pk=event.pk) == before  # the site's assessment is kept
    assert [r["id"] for r in api.get(f"{BASE}/{event.pk}/reviews/").json()] == [body["id"]]


def test_an_expected_review_names_its_basis(sam, alice, clinic_a):
    swelling = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    response = api_client_for(sam).post(
        f"{BASE}/{swelling.pk}/reviews/",
        {**REVIEW, "serious": False, "serious_hospitalisation": False, "expectedness": "expected"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["expectedness_basis"]["source"] == "Patient guide"


def test_clinic_staff_may_read_reviews_but_not_record_one(alice, sam, world):
    event = world["a"]
    medical_review_record(actor=sam, event=event, **REVIEW)
    api = api_client_for(alice)
    assert len(api.get(f"{BASE}/{event.pk}/reviews/").json()) == 1
    assert api.post(f"{BASE}/{event.pk}/reviews/", REVIEW, format="json").status_code == 403
    assert MedicalReview.objects.count() == 1


def test_a_review_breaking_its_rules_is_a_400(sam, world):
    response = api_client_for(sam).post(
        f"{BASE}/{world['a'].pk}/reviews/", {**REVIEW, "serious_hospitalisation": False}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "serious"
    assert not MedicalReview.objects.exists()


def test_charlie_gets_404_for_clinic_as_event_its_follow_ups_and_reviews(charlie, alice, sam, world):
    event = world["a"]
    follow_up_report_create(actor=alice, event=event, received_on=dt.date(2024, 3, 20), narrative="News.")
    medical_review_record(actor=sam, event=event, **REVIEW)
    api = api_client_for(charlie)
    assert api.get(f"{BASE}/{event.pk}/").status_code == 404
    assert api.get(f"{BASE}/{event.pk}/follow-ups/").status_code == 404
    assert api.get(f"{BASE}/{event.pk}/reviews/").status_code == 404
    response = api.post(
        f"{BASE}/{event.pk}/follow-ups/", {"received_on": "2024-03-21", "narrative": "x", "changes": {"grade": 3}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 404
    assert FollowUpReport.objects.count() == 1
    assert AdverseEvent.objects.get(pk=event.pk).grade == 2
    listed = api.get(f"{BASE}/").json()
    assert event.external_id not in str(listed)
