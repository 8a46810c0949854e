"""Revoking a link: with a reason, by the clinic's staff; the token then answers the 404 page."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from patients import services

pytestmark = pytest.mark.django_db


def test_a_revoked_link_records_who_when_and_why_and_stops_answering(client, bob, link_x):
    link, token = link_x
    assert client.get(f"/p/{token}/").status_code == 200
    services.patient_link_revoke(actor=bob, link=link, reason="Handout lost")
    link.refresh_from_db()
    assert link.revoked_by == bob and link.revoked_at and link.revoke_reason == "Handout lost"
    assert client.get(f"/p/{token}/").status_code == 404


def test_revoking_needs_a_reason_and_the_clinics_staff(charlie, bob, link_x):
    link, _ = link_x
    with pytest.raises(ValidationError):
        services.patient_link_revoke(actor=bob, link=link, reason="  ")
    with pytest.raises(PermissionDenied):
        services.patient_link_revoke(actor=charlie, link=link, reason="not mine")
    link.refresh_from_db()
    assert link.revoked_at is None


def test_the_admin_revokes_with_a_reason_and_another_clinic_gets_404(client, alice, charlie, link_x):
    link, _ = link_x
    client.force_login(charlie)
    assert client.post(f"/admin/patients/patientlink/{link.pk}/revoke/", {"reason": "x"}).status_code == 404
    client.force_login(alice)
    response = client.post(f"/admin/patients/patientlink/{link.pk}/revoke/", {"reason": "Wrong procedure"})
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.revoke_reason == "Wrong procedure" and link.revoked_by == alice
