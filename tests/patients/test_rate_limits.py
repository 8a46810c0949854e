"""Rate limits: per token and per client address, on every request to a patient page (POSTs and token
lookups, unknown tokens included): 429 after the limit."""

from __future__ import annotations

import pytest

from patients.models import PatientReport
from patients.tokens import new_token
from tests.patients.conftest import diary_post

pytestmark = pytest.mark.django_db


def test_a_token_gets_429_after_its_limit_from_any_address(client, link_x, settings):
    settings.PATIENT_RATE_PER_TOKEN = "3/h"
    _, token = link_x
    statuses = [client.get(f"/p/{token}/", REMOTE_ADDR=f"198.51.100.{i}").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.post(f"/p/{token}/diary/", diary_post(), REMOTE_ADDR="198.51.100.99")
    assert response.status_code == 429 and response["Retry-After"] == "3600"
    assert not PatientReport.objects.exists()


def test_an_address_gets_429_after_its_limit_whatever_the_token(client, link_x, settings):
    settings.PATIENT_RATE_PER_ADDRESS = "5/h"
    _, token = link_x
    guesses = [client.get(f"/p/{new_token()}/").status_code for _ in range(4)]
    assert guesses == [404] * 4
    assert client.get(f"/p/{token}/").status_code == 200
    assert client.get(f"/p/{token}/").status_code == 429
    assert client.get(f"/p/{token}/", REMOTE_ADDR="192.0.2.7").status_code == 200  # another address
