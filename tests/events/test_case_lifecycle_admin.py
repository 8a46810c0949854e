"""The case's life in the admin: the timeline, "Add follow-up" (clinic staff), "Record medical review" (safety
reviewers and registry administrators), the reviewer's read-only pages and the reference safety information."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from events.models import AdverseEvent, FollowUpReport, MedicalReview, ReferenceSafetyInformation
from events.services import follow_up_report_create, medical_review_record
from registry.models import FollowUpVisit, Patient, Procedure
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clinic_a, clinic_b, alice, charlie, sam, root):
    """Return an open infection at clinic A (recovering, site: unlikely related) and an event at clinic B."""
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
        causality_product="unlikely",
        expectedness="unexpected",
    )
    b = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_b), term="Swelling B")
    return {"a": a, "b": b}


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def follow_up_url(event) -> str:
    return reverse("admin:events_adverseevent_add_follow_up", args=[event.pk])


def review_url(event) -> str:
    return reverse("admin:events_adverseevent_record_review", args=[event.pk])


def follow_up_form(event, **values) -> dict:
    """Return the follow-up form as the page fills it (the event's current values), with ``values`` over it."""
    data = {
        "received_on": "2024-03-20",
        "narrative": "Seen in clinic.",
        "outcome": event.outcome,
        "resolved_on": event.resolved_on.isoformat() if event.resolved_on else "",
        "grade": event.grade,
        "causality_procedure": event.causality_procedure,
        "causality_product": event.causality_product,
        "expectedness": event.expectedness,
        "action_taken": event.action_taken,
        "case_status": event.case_status,
        "expected_version": event.version,
    }
    data.update({name: "on" for name in ("serious", "communicable_disease") if getattr(event, name)})
    return {**data, **values}


REVIEW_FORM = {
    "serious": "on",
    "serious_hospitalisation": "on",
    "causality_procedure": "probable",
    "causality_product": "possible",
    "expectedness": "unexpected",
    "comment": "Related to the injection.",
}


def test_the_clinician_adds_a_follow_up_that_changes_the_event(client, alice, world):
    event = world["a"]
    client.force_login(alice)
    page = client.get(change_url(event)).content.decode()
    assert follow_up_url(event) in page
    assert review_url(event) not in page
    response = client.post(
        follow_up_url(event),
        follow_up_form(event, outcome="recovered", resolved_on="2024-03-18", case_status="closed"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    event.refresh_from_db()
    assert (event.outcome, event.resolved_on, event.case_status) == ("recovered", dt.date(2024, 3, 18), "closed")
    report = FollowUpReport.objects.get(event=event)
    assert set(report.changes) == {"outcome", "resolved_on", "case_status"}
    page = client.get(change_url(event)).content.decode()
    assert "Case timeline" in page and "Initial report" in page
    assert "Follow-up 1: received 2024-03-20" in page
    assert "Outcome: Recovering / resolving → Recovered / resolved" in page
    assert "Resolution date: not set → 2024-03-18" in page


def test_a_follow_up_the_rules_refuse_shows_the_field_error_and_stores_nothing(client, alice, world):
    event = world["a"]
    client.force_login(alice)
    response = client.post(follow_up_url(event), follow_up_form(event, outcome="recovered", received_on="2024-03-01"))
    assert response.status_code == 200
    form = response.context["form"]
    assert "received_on" in form.errors
    response = client.post(follow_up_url(event), follow_up_form(event, outcome="recovered"))
    assert response.status_code == 200
    assert response.context["form"].errors["resolved_on"] == ["A recovered outcome needs the resolution date."]
    assert not FollowUpReport.objects.exists()
    assert AdverseEvent.objects.get(pk=event.pk).outcome == "recovering"


def test_a_follow_up_form_opened_before_another_edit_records_nothing_and_shows_the_new_values(
    client, alice, bob, world
):
    event = world["a"]
    stale = follow_up_form(event, narrative="Phoned the patient.")  # filled in while grade was 2
    follow_up_report_create(
        actor=bob, event=event, received_on=dt.date(2024, 3, 10), narrative="Worse.", changes={"grade": 3}
    )
    client.force_login(alice)
    response = client.post(follow_up_url(event), stale)
    assert response.status_code == 200
    form = response.context["form"]
    assert "Someone else changed this event" in form.non_field_errors()[0]
    assert form["grade"].value() == "3" and form["narrative"].value() == "Phoned the patient."
    assert FollowUpReport.objects.count() == 1
    assert AdverseEvent.objects.get(pk=event.pk).grade == 3
    resent = client.post(follow_up_url(event), {**stale, **{k: v for k, v in form.data.items()}})
    assert resent.status_code == 302
    assert AdverseEvent.objects.get(pk=event.pk).grade == 3
    assert FollowUpReport.objects.get(number=2).changes == {}


def test_the_safety_reviewer_records_a_review_and_the_disagreement_is_shown_in_words(client, sam, world):
    event = world["a"]
    client.force_login(sam)
    page = client.get(change_url(event)).content.decode()
    assert review_url(event) in page
    assert follow_up_url(event) not in page
    form_page = client.get(review_url(event))
    assert form_page.status_code == 200
    assert form_page.context["form"].initial["expectedness"] == "unexpected"  # no entry expects an infection
    response = client.post(review_url(event), REVIEW_FORM)
    assert response.status_code == 302, response.content.decode()[:3000]
    review = MedicalReview.objects.get(event=event)
    assert (review.reviewer, review.causality_procedure) == (sam, "probable")
    stored = AdverseEvent.objects.get(pk=event.pk)
    assert (stored.serious, stored.causality_procedure, stored.version) == (False, "unlikely", event.version)
    page = client.get(change_url(event)).content.decode()
    assert "Medical review by sam" in page
    assert "Differs from the site" in page  # seriousness and both causalities
    assert "Agrees with the site" in page  # expectedness


def test_the_review_form_prefills_expected_with_the_matching_entry(client, sam, clinic_a, world):
    swelling = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))
    client.force_login(sam)
    response = client.get(review_url(swelling))
    assert response.context["form"].initial["expectedness"] == "expected"
    assert response.context["basis"].source == "Patient guide"
    assert "Expected per the reference safety information" in response.content.decode()


def test_a_review_with_a_broken_rule_shows_the_field_error(client, sam, world):
    client.force_login(sam)
    response = client.post(review_url(world["a"]), {**REVIEW_FORM, "serious_hospitalisation": ""})
    assert response.status_code == 200
    assert "serious" in response.context["form"].errors
    assert not MedicalReview.objects.exists()


def test_clinic_staff_may_not_record_a_review_nor_the_reviewer_add_a_follow_up(client, alice, sam, world):
    event = world["a"]
    client.force_login(alice)
    assert client.get(review_url(event)).status_code == 403
    assert client.post(review_url(event), REVIEW_FORM).status_code == 403
    client.force_login(sam)
    assert client.get(follow_up_url(event)).status_code == 403
    assert client.post(follow_up_url(event), follow_up_form(event, grade=3)).status_code == 403
    assert not MedicalReview.objects.exists() and not FollowUpReport.objects.exists()
    assert AdverseEvent.objects.get(pk=event.pk).grade == 2


def test_the_reviewer_reads_every_clinic_but_cannot_edit(client, sam, world):
    client.force_login(sam)
    listing = client.get(reverse("admin:events_adverseevent_changelist")).content.decode()
    assert "Septic arthritis A" in listing and "Swelling B" in listing
    event = world["a"]
    before = AdverseEvent.objects.values().get(pk=event.pk)
    page = client.get(change_url(event))
    assert page.status_code == 200
    assert 'name="grade"' not in page.content.decode()  # read-only: no inputs
    response = client.post(change_url(event), {"term": "Edited", "grade": 3, "expected_version": event.version})
    assert response.status_code == 403
    assert AdverseEvent.objects.values().get(pk=event.pk) == before


@pytest.mark.parametrize("model", [Patient, Procedure, FollowUpVisit])
def test_the_reviewer_reads_patients_procedures_and_visits_read_only(client, sam, world, model):
    clinic_b = world["b"].procedure.clinic
    path = "procedure__clinic" if model is FollowUpVisit else "clinic"
    row = model.objects.filter(**{path: clinic_b}).first()
    client.force_login(sam)
    page = client.get(change_url(row))
    assert page.status_code == 200
    assert "Save and continue editing" not in page.content.decode()
    before = model.objects.values().get(pk=row.pk)
    assert client.post(change_url(row), {"notes": "edited"}).status_code == 403
    assert model.objects.values().get(pk=row.pk) == before


def test_charlie_sees_nothing_of_clinic_as_case(client, charlie, alice, sam, world):
    event = world["a"]
    follow_up_report_create(
        actor=alice, event=event, received_on=dt.date(2024, 3, 20), narrative="Secret course.", changes={"grade": 3}
    )
    medical_review_record(
        actor=sam, event=event, serious=False, causality_procedure="possible", causality_product="unlikely",
        expectedness="unexpected", comment="Reviewer's secret note.",
    )  # fmt: skip
    client.force_login(charlie)
    listing = client.get(reverse("admin:events_adverseevent_changelist")).content.decode()
    assert "Septic arthritis A" not in listing and "Swelling B" in listing
    response = client.get(change_url(event), follow=True)
    body = response.content.decode()
    assert response.redirect_chain or response.status_code == 404
    assert "Secret course" not in body and "secret note" not in body
    assert client.get(follow_up_url(event)).status_code == 404
    assert client.post(follow_up_url(event), follow_up_form(event, grade=1)).status_code == 404
    assert client.get(review_url(event)).status_code == 404
    assert FollowUpReport.objects.count() == 1
    assert AdverseEvent.objects.get(pk=event.pk).grade == 3


def test_the_event_form_takes_the_case_fields(client, alice, world):
    event = world["a"]
    client.force_login(alice)
    data = {
        "external_id": event.external_id,
        "procedure": event.procedure_id,
        "category": event.category,
        "term": event.term,
        "onset_on": "2024-03-03",
        "aware_on": "2024-03-05",
        "case_status": "open",
        "reporter_type": "patient",
        "communicable_disease": "on",
        "narrative": "Swollen hot knee on day 2.",
        "grade": 2,
        "outcome": "recovering",
        "causality_procedure": "unlikely",
        "causality_product": "unlikely",
        "expectedness": "unexpected",
        "expected_version": event.version,
    }
    response = client.post(change_url(event), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    event.refresh_from_db()
    assert (event.aware_on, event.reporter_type, event.communicable_disease) == (dt.date(2024, 3, 5), "patient", True)
    assert event.narrative == "Swollen hot knee on day 2."
    response = client.post(change_url(event), {**data, "aware_on": "2024-03-01", "expected_version": event.version})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["aware_on"] == [
        "The awareness date cannot be before the onset date."
    ]


def test_registry_administrators_maintain_the_reference_safety_information_and_reviewers_read_it(client, root, sam):
    add_url = reverse("admin:events_referencesafetyinformation_add")
    client.force_login(sam)
    listing = client.get(reverse("admin:events_referencesafetyinformation_changelist"))
    assert listing.status_code == 200 and "Pain at the injection site" in listing.content.decode()
    assert client.get(add_url).status_code == 403
    client.force_login(root)
    response = client.post(
        add_url,
        {"cell_type": "adipose_svf", "category": "ectopic_tissue", "term": "Small fat nodule", "source": "Label",
         "added_on": "2024-01-01"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = ReferenceSafetyInformation.objects.get(term="Small fat nodule")
    delete_url = reverse("admin:events_referencesafetyinformation_delete", args=[entry.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert ReferenceSafetyInformation.objects.filter(pk=entry.pk).exists()


def test_the_reviewer_lists_follow_ups_and_reviews_read_only(client, alice, sam, charlie, world):
    event = world["a"]
    follow_up_report_create(
        actor=alice, event=event, received_on=dt.date(2024, 3, 20), narrative="Worse.", changes={"grade": 3}
    )
    review = medical_review_record(
        actor=sam, event=event, serious=False, causality_procedure="possible", causality_product="unlikely",
        expectedness="unexpected",
    )  # fmt: skip
    client.force_login(sam)
    follow_ups = client.get(reverse("admin:events_followupreport_changelist")).content.decode()
    assert event.external_id in follow_ups and "CTCAE grade: 2 - Moderate → 3 - Severe" in follow_ups
    reviews = client.get(reverse("admin:events_medicalreview_changelist"))
    assert reviews.status_code == 200 and event.external_id in reviews.content.decode()
    assert client.get(reverse("admin:events_medicalreview_add")).status_code == 403
    assert client.post(change_url(review), {"comment": "changed"}).status_code == 403
    client.force_login(charlie)  # clinic staff read follow-ups and reviews on the event page only
    assert client.get(reverse("admin:events_medicalreview_changelist")).status_code == 403
