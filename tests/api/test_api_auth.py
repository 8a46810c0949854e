"""Authentication, brute-force lockout and fair-use throttling."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
TOKEN_URL = "/api/v1/auth/token/"


def test_everything_requires_authentication(world):
    anonymous = APIClient()
    for url in ("/api/v1/adverse-events/", "/api/v1/patients/", "/api/fhir/AdverseEvent?patient=x", "/api/schema/"):
        assert anonymous.get(url).status_code in (401, 403), url


def test_a_token_opens_the_api_for_an_integration(alice, world):
    response = APIClient().post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    client = APIClient(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    rows = client.get("/api/v1/adverse-events/").json()["results"]
    assert [r["event_id"] for r in rows] == [world["a"].external_id]


def test_repeated_failures_lock_the_token_endpoint_even_for_the_right_password(alice, settings):
    client = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert client.post(TOKEN_URL, {"username": "alice", "password": "wrong"}, format="json").status_code in (
            400,
            403,
            429,
        )
    locked = client.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert locked.status_code in (403, 429)
    assert "token" not in locked.json()


def test_repeated_failures_lock_the_admin_login(client, alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code in (403, 429)
    assert "_auth_user_id" not in client.session


def test_a_user_over_the_fair_use_rate_is_throttled(api_alice, world, monkeypatch):
    cache.clear()
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    codes = [api_alice.get("/api/v1/clinics/").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]
    cache.clear()
