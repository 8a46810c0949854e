"""Issuing a patient link: clinic staff only, the token shown once and stored hashed, an expiry, the
language of the clinic's country, and the printable handout with its QR code."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core.exceptions import PermissionDenied

from core.dates import today
from patients import services
from patients.models import PatientLink
from tests.patients.conftest import PHONE_A, procedure_of

pytestmark = pytest.mark.django_db


def test_the_token_is_random_and_only_its_sha256_is_stored(alice, procedure_x):
    link, token = services.patient_link_issue(actor=alice, procedure=procedure_x)
    _other, token2 = services.patient_link_issue(actor=alice, procedure=procedure_x)
    assert len(token) >= 40 and token != token2
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not PatientLink.objects.filter(token_hash=token).exists()
    assert link.issued_by == alice


def test_it_expires_sixty_days_after_the_later_of_the_procedure_and_the_issue(alice, clinic_a, settings):
    past, _ = services.patient_link_issue(actor=alice, procedure=procedure_of(clinic_a, days_ago=10))
    assert past.expires_on == today() + dt.timedelta(days=60)
    same_day, _ = services.patient_link_issue(actor=alice, procedure=procedure_of(clinic_a, days_ago=0))
    assert same_day.expires_on == today() + dt.timedelta(days=60)
    settings.PATIENT_LINK_DAYS = 14
    short, _ = services.patient_link_issue(actor=alice, procedure=procedure_of(clinic_a))
    assert short.expires_on == today() + dt.timedelta(days=14)


def test_the_clinics_country_picks_the_language(link_x, link_y):
    assert link_x[0].language == "es"  # clinic A: Spain
    assert link_y[0].language == "en"  # clinic B: Germany


@pytest.mark.parametrize(
    ("country", "language"), [("MX", "es"), ("AR", "es"), ("CO", "es"), ("US", "en"), ("DE", "en")]
)
def test_spanish_speaking_countries_default_to_spanish(procedure_x, country, language):
    procedure_x.clinic.country = country
    assert services.default_language(procedure_x) == language


def test_another_clinics_clinician_and_a_registry_admin_cannot_issue(charlie, root, sam, procedure_x):
    for user in (charlie, root, sam):
        with pytest.raises(PermissionDenied):
            services.patient_link_issue(actor=user, procedure=procedure_x)
    assert not PatientLink.objects.exists()


def test_the_admin_issues_a_link_once_on_a_handout_with_qr_phone_and_warning_signs(client, alice, procedure_x):
    client.force_login(alice)
    response = client.post("/admin/patients/patientlink/add/", {"procedure": procedure_x.pk})
    assert response.status_code == 200
    html = response.content.decode()
    link = PatientLink.objects.get()
    svg = html.split("<svg", 1)[1].split("</svg>")[0]
    assert 'role="img"' in svg and "<path" in svg
    assert "href" not in svg and "src=" not in html  # drawn inline: the page fetches nothing for it
    token = html.split("/p/", 1)[1].split("/", 1)[0]
    assert hashlib.sha256(token.encode()).hexdigest() == link.token_hash
    assert PHONE_A in html and "38,0 °C" in html  # the Spanish handout of a Spanish clinic
    assert "no-store" in response["Cache-Control"]
    # Shown once: the link's own page never shows the token again.
    assert token not in client.get(f"/admin/patients/patientlink/{link.pk}/change/").content.decode()


def test_the_admin_refuses_a_procedure_of_another_clinic(client, charlie, procedure_x):
    client.force_login(charlie)
    response = client.post("/admin/patients/patientlink/add/", {"procedure": procedure_x.pk})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not PatientLink.objects.exists()


def test_the_procedure_picker_autocompletes_only_the_users_procedures(client, alice, procedure_x, procedure_y):
    client.force_login(alice)
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "patients", "model_name": "patientlink", "field_name": "procedure", "term": ""},
    )
    assert response.status_code == 200
    ids = {int(r["id"]) for r in response.json()["results"]}
    assert procedure_x.pk in ids and procedure_y.pk not in ids
