"""Draft."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
import schemathesis
from django.core import signals
from django.db import close_old_connections
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from config.wsgi import application

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20250101,
        "generation": {"mode": "all", "max-examples": 25, "deterministic": True, "database": "none",
                       "with-security-parameters": False},
        "phases": {"stateful": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)
CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection]
COUNT = {"cases": 0}


@pytest.fixture
def token(world, alice, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": None, "anon": None, "login": None})
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield Token.objects.create(user=alice).key
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api(case, token):
    COUNT["cases"] += 1
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
