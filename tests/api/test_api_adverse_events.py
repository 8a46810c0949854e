"""The adverse-event API: validated like the admin, scoped, optimistic, never deleting."""

from __future__ import annotations

import pytest

from events.models import AdverseEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/adverse-events/"


def new_event(procedure, **changes):
    body = {
        "procedure": procedure.external_id,
        "category": "infection",
        "term": "Septic arthritis",
        "onset_on": procedure.performed_on.isoformat(),
        "grade": 3,
        "serious": True,
        "serious_hospitalisation": True,
        "outcome": "recovering",
        "causality_procedure": "probable",
    }
    body.update(changes)
    return body


def errors_by_field(response):
    body = response.json()
    assert body["type"] == "validation_error"
    return {e["attr"]: e["detail"] for e in body["errors"]}


def test_it_creates_an_event_with_etag_and_location(api_alice, world):
    procedure = world["a"].procedure
    response = api_alice.post(URL, new_event(procedure, event_id="EXT-1"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["event_id"] == "EXT-1"
    assert body["procedure"] == procedure.external_id
    assert response["ETag"] == '"1"'
    assert response["Location"].endswith(f"{URL}{body['id']}/")
    assert AdverseEvent.objects.get(external_id="EXT-1").serious_hospitalisation


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"grade": 6}, "grade", "Allowed values: 1, 2, 3, 4, 5"),
        ({"category": "alien"}, "category", "Allowed values: injection_site_reaction"),
        ({"onset_on": "2020-01-01"}, "onset_on", "before the procedure"),
        ({"onset_on": "2999-01-01"}, "onset_on", "future"),
        ({"serious_hospitalisation": False}, "serious", "at least one"),
        ({"outcome": "fatal"}, "outcome", "grade 5"),
        ({"resolved_on": "2020-01-01"}, "resolved_on", "before the onset"),
        ({"onset_on": "not a date"}, "onset_on", "Date has wrong format"),
        ({"term": ""}, "term", "may not be blank"),
    ],
)
def test_it_rejects_bad_input_field_by_field_and_writes_nothing(api_alice, world, changes, field, fragment):
    count = AdverseEvent.objects.count()
    response = api_alice.post(URL, new_event(world["a"].procedure, **changes), format="json")
    assert response.status_code == 400
    errors = errors_by_field(response)
    assert field in errors, errors
    assert fragment in errors[field]
    assert AdverseEvent.objects.count() == count


def test_it_names_every_bad_field_at_once(api_alice, world):
    response = api_alice.post(URL, new_event(world["a"].procedure, grade=9, category="x", outcome="y"), format="json")
    assert set(errors_by_field(response)) == {"grade", "category", "outcome"}


def test_it_refuses_another_clinics_procedure_as_if_it_did_not_exist(api_alice, world):
    count = AdverseEvent.objects.count()
    foreign = api_alice.post(URL, new_event(world["b"].procedure), format="json")
    missing = api_alice.post(URL, {**new_event(world["b"].procedure), "procedure": "PR-NOPE"}, format="json")
    assert foreign.status_code == missing.status_code == 400
    assert errors_by_field(foreign) == errors_by_field(missing)
    assert AdverseEvent.objects.count() == count


def test_an_update_needs_if_match_and_the_current_version(api_alice, world):
    ae = world["a"]
    url = f"{URL}{ae.pk}/"
    assert api_alice.patch(url, {"grade": 2}, format="json").status_code == 428
    assert api_alice.patch(url, {"grade": 2}, format="json", HTTP_IF_MATCH="*").status_code == 428
    ok = api_alice.patch(url, {"grade": 2}, format="json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200
    assert ok["ETag"] == '"2"'
    stale = api_alice.patch(url, {"grade": 1}, format="json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert stale.json()["errors"][0]["code"] == "stale_version"
    assert AdverseEvent.objects.get(pk=ae.pk).grade == 2


def test_a_full_update_validates_like_a_create(api_alice, world):
    ae = world["a"]
    body = new_event(ae.procedure, onset_on="2020-01-01")
    response = api_alice.put(f"{URL}{ae.pk}/", body, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 400
    assert "onset_on" in errors_by_field(response)
    assert AdverseEvent.objects.get(pk=ae.pk).version == 1


def test_another_clinics_event_answers_404_on_read_and_write(api_charlie, world):
    ae = world["a"]
    before = AdverseEvent.objects.values().get(pk=ae.pk)
    assert api_charlie.get(f"{URL}{ae.pk}/").status_code == 404
    assert api_charlie.patch(f"{URL}{ae.pk}/", {"grade": 4}, format="json", HTTP_IF_MATCH='"1"').status_code == 404
    assert api_charlie.post(f"{URL}{ae.pk}/retract/", {"reason": "x"}, format="json").status_code == 404
    assert AdverseEvent.objects.values().get(pk=ae.pk) == before


def test_delete_is_refused_and_retraction_needs_a_reason(api_alice, world):
    ae = world["a"]
    response = api_alice.delete(f"{URL}{ae.pk}/")
    assert response.status_code == 405
    assert "retract" in response.json()["errors"][0]["detail"]
    no_reason = api_alice.post(f"{URL}{ae.pk}/retract/", {}, format="json")
    assert no_reason.status_code == 400
    assert "reason" in errors_by_field(no_reason)
    done = api_alice.post(f"{URL}{ae.pk}/retract/", {"reason": "Duplicate"}, format="json")
    assert done.status_code == 200
    assert done.json()["retracted"] is True
    again = api_alice.post(f"{URL}{ae.pk}/retract/", {"reason": "Duplicate"}, format="json")
    assert again.status_code == 400
    assert AdverseEvent.objects.filter(pk=ae.pk).exists()


def test_filters_apply_within_the_users_clinics(api_alice, world):
    procedure = world["a"].procedure
    api_alice.post(URL, new_event(procedure, event_id="SER-1"), format="json")
    ids = lambda r: {row["event_id"] for row in r.json()["results"]}  # noqa: E731
    assert ids(api_alice.get(URL, {"serious": "true"})) == {"SER-1"}
    assert ids(api_alice.get(URL, {"category": "infection", "grade_min": 3})) == {"SER-1"}
    assert ids(api_alice.get(URL, {"site": "knee", "cell_type": "bmac"})) == {"SER-1", world["a"].external_id}
    assert ids(api_alice.get(URL, {"clinic": world["b"].procedure.clinic.code})) == set()
    assert api_alice.get(URL, {"category": "alien"}).status_code == 400


def test_the_browsable_form_offers_only_her_procedures(api_alice, world):
    response = api_alice.get(URL, HTTP_ACCEPT="text/html")
    body = response.content.decode()
    assert world["a"].procedure.external_id in body
    assert world["b"].procedure.external_id not in body


def test_the_list_is_paginated_by_a_stable_cursor(api_alice, world):
    procedure = world["a"].procedure
    for i in range(5):
        api_alice.post(URL, new_event(procedure, event_id=f"PAGE-{i}"), format="json")
    seen, url = [], URL + "?page_size=2"
    while url:
        page = api_alice.get(url).json()
        seen += [row["event_id"] for row in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 6
