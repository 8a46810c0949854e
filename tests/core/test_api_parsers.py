"""The API's body parsers (core.parsers): lone surrogates, NULs and deep nesting answer 400, never 500.

The write operations and their choice fields are read from the OpenAPI schema, so a new endpoint or
a new choice field is covered without editing this file.
"""

from __future__ import annotations

import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from events.models import AdverseEvent
from registry.models import FollowUpVisit, Patient, Procedure
from reports.models import IncidenceRun
from tests.factories import AdverseEventFactory, ProcedureFactory, issue_api_token

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch")
SEEDED = {
    "patients": Patient,
    "procedures": Procedure,
    "adverse-events": AdverseEvent,
    "follow-up-visits": FollowUpVisit,
}


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema: dict, node: dict) -> dict:
    while True:
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        elif "allOf" in node or "oneOf" in node:
            node = (node.get("allOf") or node.get("oneOf"))[0]
        else:
            return node


def _json_body_schema(schema: dict, operation: dict) -> dict | None:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return _resolve(schema, content["schema"]) if content else None


def write_operations() -> list[tuple[str, str, dict | None]]:
    """Return (path, method, JSON body schema or None) of every write operation of the API."""
    schema = _schema()
    return [
        (path, method, _json_body_schema(schema, operation))
        for path, operations in sorted(schema["paths"].items())
        for method, operation in sorted(operations.items())
        if method in WRITE_METHODS
    ]


def choice_fields() -> list[tuple[str, str, str]]:
    """Return (path, method, field) for every choice field (or list of choices) a write body takes."""
    schema = _schema()
    found = []
    for path, method, body in write_operations():
        for name, prop in (body or {}).get("properties", {}).items():
            prop = _resolve(schema, prop)
            if "enum" in prop or "enum" in _resolve(schema, prop.get("items", {})):
                found.append((path, method, name))
    return found


@pytest.fixture
def world(clinic_a, alice):
    """Return alice's adverse event (with its procedure, patient and follow-up visits)."""
    return {"a": AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a))}


@pytest.fixture
def token_client(alice) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(alice)}")
    return client


def _send(client: APIClient, world, path: str, method: str, raw_body: str):
    """Send ``raw_body`` as JSON to ``path``, aimed at one of alice's rows with its current ETag."""
    headers = {}
    if "{id}" in path:
        kind = path.split("/")[3]
        row = SEEDED[kind].objects.filter(pk__in=_alice_rows(world)[kind]).order_by("pk").first()
        path = path.replace("{id}", str(row.pk))
        headers["HTTP_IF_MATCH"] = f'"{row.version}"'
    return getattr(client, method)(path, data=raw_body, content_type="application/json", **headers)


def _alice_rows(world) -> dict[str, list[int]]:
    event = world["a"]
    return {
        "patients": [event.procedure.patient_id],
        "procedures": [event.procedure_id],
        "adverse-events": [event.pk],
        "follow-up-visits": list(event.procedure.visits.values_list("pk", flat=True)),
    }


def _counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in (Patient, Procedure, AdverseEvent, FollowUpVisit, IncidenceRun)}


def test_the_schema_lists_the_twenty_choice_fields_of_the_review():
    # The review counted 20 choice fields answering 500; discovery must see at least those.
    assert len({field for _path, _method, field in choice_fields()}) >= 20


@pytest.mark.parametrize(("path", "method", "field"), choice_fields())
def test_a_lone_surrogate_in_a_choice_field_answers_400_naming_the_field(token_client, world, path, method, field):
    before = _counts()
    versions = {kind: list(SEEDED[kind].objects.order_by("pk").values_list("version", flat=True)) for kind in SEEDED}
    response = _send(token_client, world, path, method, json.dumps({field: "\ud800"}))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "client_error"
    assert [(e["code"], e["attr"]) for e in body["errors"]] == [("parse_error", field)]
    assert body["errors"][0]["detail"].startswith(f"{field}: Text may not contain a lone surrogate (U+D800)")
    assert _counts() == before
    assert versions == {
        kind: list(SEEDED[kind].objects.order_by("pk").values_list("version", flat=True)) for kind in SEEDED
    }


def test_a_lone_surrogate_in_the_issue_reproduction_answers_400_and_creates_no_patient(token_client, clinic_a):
    body = '{"sex":"\\ud800","birth_year":1970,"enrolled_on":"2024-01-01"}'
    response = token_client.post("/api/v1/patients/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "sex"
    assert not Patient.objects.exists()


def test_a_nul_in_a_related_id_answers_400_naming_the_field(token_client, clinic_a):
    body = json.dumps({"clinic": "A-MAD\x00", "sex": "F", "birth_year": 1970, "enrolled_on": "2024-01-01"})
    response = token_client.post("/api/v1/patients/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "clinic"
    assert response.json()["errors"][0]["code"] == "parse_error"
    assert not Patient.objects.exists()


def test_a_nul_in_a_nested_value_or_a_key_is_named_by_its_path(root):
    client = APIClient()
    client.force_authenticate(root)
    body = json.dumps({"cutoff_on": "2024-01-01", "strata": ["site", "cell\x00type"]})
    response = client.post("/api/v1/reports/incidence-runs/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "strata.1"
    response = client.post(
        "/api/v1/reports/incidence-runs/", data=json.dumps({"cut\ud800off": 1}), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "cut\ufffdoff"  # the bad character is never echoed
    assert not IncidenceRun.objects.exists()


def test_the_unauthenticated_token_login_refuses_a_nul_in_the_username_without_looking_it_up(db):
    body = json.dumps({"username": "root\x00", "password": "x"})
    response = APIClient().post("/api/v1/auth/token/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {
                "code": "parse_error",
                "detail": "username: Text may not contain a NUL character (U+0000).",
                "attr": "username",
            }
        ],
    }


@pytest.mark.parametrize(("path", "method", "body"), write_operations())
def test_deeply_nested_json_answers_400_on_every_write_endpoint(token_client, world, path, method, body):
    before = _counts()
    response = _send(token_client, world, path, method, "[" * 100_000 + "]" * 100_000)
    if body is None:
        # An operation that takes no body never parses one.
        assert response.status_code < 500
    else:
        assert response.status_code == 400, response.content
        assert response.json()["type"] == "client_error"
        assert response.json()["errors"][0]["code"] == "parse_error"
        assert "deeper than" in response.json()["errors"][0]["detail"]
    assert _counts() == before


def test_deeply_nested_json_answers_400_to_the_anonymous_token_login(db):
    body = '{"username": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = APIClient().post("/api/v1/auth/token/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parse_error"


def test_a_nul_in_a_key_nobody_reads_is_refused_too(token_client, clinic_a):
    body = json.dumps({"sex": "F", "birth_year": 1970, "enrolled_on": "2024-01-01", "no\x00te": "x"})
    response = token_client.post("/api/v1/patients/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "no\ufffdte"
    assert not Patient.objects.exists()


def test_nesting_below_the_limit_reaches_the_fields_validation(token_client, clinic_a):
    body = json.dumps({"sex": [[["F"]]], "birth_year": 1970, "enrolled_on": "2024-01-01"})
    response = token_client.post("/api/v1/patients/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["errors"][0]["attr"] == "sex"
    assert not Patient.objects.exists()


def test_a_nul_in_a_form_encoded_or_multipart_api_body_answers_400_naming_the_field(token_client, world):
    event = world["a"]
    for content_type, body in (
        ("application/x-www-form-urlencoded", "reason=dup%00licate"),
        (
            "multipart/form-data; boundary=XyZ",
            '--XyZ\r\nContent-Disposition: form-data; name="reason"\r\n\r\ndup\x00licate\r\n--XyZ--\r\n',
        ),
    ):
        response = token_client.post(
            f"/api/v1/adverse-events/{event.pk}/retract/", data=body, content_type=content_type
        )
        assert response.status_code == 400, (content_type, response.content)
        assert response.json()["errors"][0]["attr"] == "reason"
        event.refresh_from_db()
        assert event.retracted_at is None
