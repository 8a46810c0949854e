"""The request guard (core.middleware): undecodable input answers 400, an oversized body 413, never 500."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.models import Patient
from tests.conftest import PASSWORD
from tests.factories import AdverseEventFactory, ProcedureFactory, issue_api_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clinic_a, clinic_b, alice, root):
    """Return one adverse event at each clinic."""
    return {
        "a": AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), term="Swelling A"),
        "b": AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_b), term="Swelling B"),
    }


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/events/adverseevent/?category__exact=%00",
        "/admin/reports/incidencerun/?status__exact=%00",
        "/admin/autocomplete/?app_label=events&model_name=adverseevent&field_name=procedure&term=%00",
    ],
)
def test_the_reviews_nul_urls_answer_400_naming_the_parameter(client, root, world, url):
    login(client, root)
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    assert url.rsplit("&", 1)[-1].split("?")[-1].split("=")[0] in response.content.decode()


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("q=%ED%A0%80", "not valid UTF-8"),  # a lone surrogate, UTF-8 encoded
        ("q=caf%E9", "not valid UTF-8"),  # latin-1, not UTF-8
        ("q%00=1", "NUL"),
        ("q=a+b&o=%00", "NUL"),
    ],
)
def test_undecodable_query_strings_answer_400_before_any_view(client, alice, world, query, needle):
    login(client, alice)
    response = client.get(f"/admin/registry/patient/?{query}")
    assert response.status_code == 400
    assert needle in response.content.decode()


def test_a_nul_in_the_path_answers_400_and_a_stray_byte_stays_visible(client, alice, world):
    login(client, alice)
    response = client.get("/admin/registry/patient/%00/change/")
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    # Django percent-encodes a byte that is not UTF-8 again: the id "%FF" names no patient.
    response = client.get("/admin/registry/patient/%FF/change/", follow=True)
    assert response.status_code == 200
    assert "Perhaps it was deleted?" in response.content.decode()


def test_clean_unicode_passes_the_guard(client, alice, world):
    login(client, alice)
    response = client.get("/admin/registry/patient/", {"q": "Müller 東京 😀"})
    assert response.status_code == 200


def test_a_nul_in_an_api_query_parameter_answers_400_in_the_standard_error_body(client, alice, world):
    token = issue_api_token(alice)
    for url in (
        "/api/v1/adverse-events/?category=%00",
        "/api/v1/exports/adverse-events.csv?term=%00",
        "/api/fhir/AdverseEvent?patient=%00",
    ):
        response = client.get(url, HTTP_AUTHORIZATION=f"Token {token}")
        assert response.status_code == 400, url
        error = response.json()["errors"][0]
        assert response.json()["type"] == "client_error"
        assert error["code"] == "parse_error"
        assert error["attr"] == url.split("?")[1].split("=")[0]
        assert "NUL" in error["detail"]


def test_a_nul_in_a_header_answers_400(client, alice, world):
    token = issue_api_token(alice)
    response = client.post(
        "/api/v1/patients/",
        {"sex": "F", "birth_year": 1970, "enrolled_on": "2024-01-01"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_IDEMPOTENCY_KEY="key\x00",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "Idempotency-Key"
    assert Patient.objects.count() == 2


def test_a_nul_in_an_admin_form_post_answers_400_and_changes_nothing(client, alice, world):
    login(client, alice)
    patient = world["a"].procedure.patient
    url = reverse("admin:registry_patient_change", args=[patient.pk])
    for body, content_type in (
        ("birth_year=1970%00&sex=F", "application/x-www-form-urlencoded"),
        (
            '--B\r\nContent-Disposition: form-data; name="birth_year"\r\n\r\n19\x0070\r\n--B--\r\n',
            "multipart/form-data; boundary=B",
        ),
    ):
        response = client.post(url, data=body, content_type=content_type)
        assert response.status_code == 400, content_type
        assert "birth_year" in response.content.decode()
    refreshed = Patient.objects.get(pk=patient.pk)
    assert (refreshed.birth_year, refreshed.version) == (patient.birth_year, patient.version)


def test_a_body_over_the_limit_answers_413_on_the_api_and_the_admin(client, alice, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    token = issue_api_token(alice)
    body = '{"sex": "F", "pad": "' + "x" * 20_000 + '"}'
    response = client.post(
        "/api/v1/patients/", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "request_too_large"
    login(client, alice)
    response = client.post(
        reverse("admin:registry_patient_add"),
        data="sex=F&pad=" + "x" * 20_000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert Patient.objects.count() == 2


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=", "multipart/form-data"])
def test_an_unreadable_multipart_admin_body_answers_400(client, alice, world, content_type):
    login(client, alice)
    response = client.post(reverse("admin:registry_patient_add"), data="--x\r\n\r\n", content_type=content_type)
    assert response.status_code == 400
    assert Patient.objects.count() == 2
