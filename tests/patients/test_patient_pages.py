"""The patient's pages: the clinic, its phone and the procedure's date and site, nothing identifying the
patient; Spanish for a Spanish clinic with a switch to English; a token of procedure X never shows or
accepts anything of procedure Y."""

from __future__ import annotations

import pytest

from patients import services
from patients.models import PatientReport
from tests.patients.conftest import PHONE_A, diary_post

pytestmark = pytest.mark.django_db


def test_the_home_page_shows_the_clinic_and_procedure_and_nothing_identifying(client, link_x, procedure_x):
    _, token = link_x
    response = client.get(f"/p/{token}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Clinic A Madrid" in html and PHONE_A in html and 'href="tel:+34910000111"' in html
    assert procedure_x.patient.registry_id not in html and procedure_x.external_id not in html
    assert "1961" not in html  # the birth year
    assert "no-store" in response["Cache-Control"]
    assert "<script" not in html


def test_a_spanish_clinics_pages_are_in_spanish_with_a_switch_to_english(client, link_x):
    _, token = link_x
    html = client.get(f"/p/{token}/").content.decode()
    assert '<html lang="es">' in html and "Su inyección" in html and "rodilla" in html
    assert 'href="?lang=en"' in html
    english = client.get(f"/p/{token}/?lang=en")
    assert '<html lang="en">' in english.content.decode() and "Your injection" in english.content.decode()
    # The choice sticks (a cookie) on the next page.
    assert '<html lang="en">' in client.get(f"/p/{token}/diary/").content.decode()


def test_a_german_clinics_pages_default_to_english(client, link_y):
    _, token = link_y
    html = client.get(f"/p/{token}/").content.decode()
    assert '<html lang="en">' in html and "Clinic B Berlin" in html


def test_a_token_of_x_never_shows_or_accepts_anything_of_y(client, link_x, link_y, procedure_x, procedure_y):
    (lx, tx), (ly, ty) = link_x, link_y
    problem_y = services.patient_problem_report(
        link=ly, data={"what": "Sore back", "since_on": procedure_y.performed_on, "severity": "mild"}
    )
    assert client.get(f"/p/{ty}/problem/{problem_y.pk}/").status_code == 200
    # X's token, Y's report id: the 404 page, and nothing of Y on X's pages.
    assert client.get(f"/p/{tx}/problem/{problem_y.pk}/").status_code == 404
    home_x = client.get(f"/p/{tx}/").content.decode()
    assert "Clinic B Berlin" not in home_x and "Sore back" not in home_x
    # Whatever a POST through X's token says, it lands on X's procedure only.
    client.post(f"/p/{tx}/diary/", diary_post(procedure=str(procedure_y.pk), day="1", link=str(ly.pk)))
    assert set(PatientReport.objects.filter(link=lx).values_list("procedure_id", flat=True)) == {procedure_x.pk}
    assert PatientReport.objects.filter(procedure=procedure_y).count() == 1
