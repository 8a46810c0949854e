"""No lost or duplicated writes, with real concurrent requests against PostgreSQL.

Each thread has its own Django database connection, so the requests below really
race inside PostgreSQL (transactional tests: nothing is hidden in a shared transaction).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.models import IdempotencyRecord
from events.models import AdverseEvent
from tests.api.test_api_adverse_events import URL, new_event

# As many as the outside review raced (16-way); each thread holds its own database connection.
THREADS = 16


def race(user, fn, n=THREADS):
    """Return the responses of ``fn(client)`` run by ``n`` threads released at the same instant."""
    barrier = threading.Barrier(n)

    def one(_):
        client = APIClient()
        client.force_authenticate(user=user)
        try:
            barrier.wait()
            return fn(client)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.django_db
def test_a_retry_with_the_same_key_returns_the_first_response_and_creates_nothing(api_alice, world):
    body = new_event(world["a"].procedure)
    first = api_alice.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    again = api_alice.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["ETag"] == first["ETag"]
    assert again["Idempotent-Replayed"] == "true"
    assert AdverseEvent.objects.filter(term=body["term"]).count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_answers_422(api_alice, world):
    api_alice.post(URL, new_event(world["a"].procedure), format="json", HTTP_IDEMPOTENCY_KEY="key-2")
    other = api_alice.post(URL, new_event(world["a"].procedure, grade=4), format="json", HTTP_IDEMPOTENCY_KEY="key-2")
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert AdverseEvent.objects.filter(term="Septic arthritis").count() == 1


@pytest.mark.django_db
def test_a_rejected_request_does_not_burn_its_key(api_alice, world):
    bad = api_alice.post(URL, new_event(world["a"].procedure, grade=9), format="json", HTTP_IDEMPOTENCY_KEY="key-3")
    assert bad.status_code == 400
    good = api_alice.post(URL, new_event(world["a"].procedure), format="json", HTTP_IDEMPOTENCY_KEY="key-3")
    assert good.status_code == 201


@pytest.mark.django_db
def test_keys_belong_to_their_user(api_alice, api_root, world):
    body = new_event(world["a"].procedure)
    assert api_alice.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    assert api_root.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    assert AdverseEvent.objects.filter(term=body["term"]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_exactly_one_row(alice, world):
    body = new_event(world["a"].procedure, event_id="RACE-1")
    responses = race(alice, lambda c: c.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="race-key"))
    assert [r.status_code for r in responses] == [201] * THREADS
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.get("Idempotent-Replayed") == "true" for r in responses) == THREADS - 1
    assert AdverseEvent.objects.filter(external_id="RACE-1").count() == 1
    assert IdempotencyRecord.objects.filter(key="race-key").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_without_a_key_but_the_same_event_id_create_one_row(alice, world):
    body = new_event(world["a"].procedure, event_id="RACE-2")
    responses = race(alice, lambda c: c.post(URL, body, format="json"))
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert all(r.status_code in (201, 400) for r in responses)
    for loser in (r for r in responses if r.status_code == 400):
        assert {e["attr"] for e in loser.json()["errors"]} == {"event_id"}
    assert AdverseEvent.objects.filter(external_id="RACE-2").count() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_edits_from_one_version_have_exactly_one_winner(alice, world):
    ae = world["a"]
    url = f"{URL}{ae.pk}/"
    responses = race(
        alice,
        lambda c: c.patch(url, {"reporter": f"t{threading.get_ident()}"}, format="json", HTTP_IF_MATCH='"1"'),
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1, codes
    assert codes.count(412) == THREADS - 1, codes
    stored = AdverseEvent.objects.get(pk=ae.pk)
    winner = next(r for r in responses if r.status_code == 200).json()
    assert stored.version == 2
    assert stored.reporter == winner["reporter"]
