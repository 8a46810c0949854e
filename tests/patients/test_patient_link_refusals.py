"""An invalid, an expired and a revoked token answer the same 404 page (same status, same body), and
none of them writes anything."""

from __future__ import annotations

import datetime as dt

import pytest

from core.dates import today
from patients import services
from patients.models import PatientLink, PatientReport, SubmissionLog
from patients.tokens import new_token
from tests.patients.conftest import diary_post, procedure_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def refused_tokens(alice, bob, clinic_a_phone, link_x):
    expired, expired_token = services.patient_link_issue(actor=alice, procedure=procedure_of(clinic_a_phone))
    PatientLink.objects.filter(pk=expired.pk).update(expires_on=today() - dt.timedelta(days=1))
    revoked, revoked_token = services.patient_link_issue(actor=alice, procedure=procedure_of(clinic_a_phone))
    services.patient_link_revoke(actor=bob, link=revoked, reason="Handout lost")
    return {"invalid": new_token(), "expired": expired_token, "revoked": revoked_token}


@pytest.mark.parametrize("path", ["", "diary/", "diary/saved/", "problem/"])
def test_invalid_expired_and_revoked_look_alike(client, refused_tokens, path):
    answers = {kind: client.get(f"/p/{token}/{path}") for kind, token in refused_tokens.items()}
    assert {r.status_code for r in answers.values()} == {404}
    assert len({r.content for r in answers.values()}) == 1
    assert "This link is not valid" in answers["invalid"].content.decode()


def test_an_expiring_link_answers_on_its_last_day(client, link_x):
    link, token = link_x
    PatientLink.objects.filter(pk=link.pk).update(expires_on=today())
    assert client.get(f"/p/{token}/").status_code == 200


def test_refused_tokens_write_nothing(client, refused_tokens):
    for token in refused_tokens.values():
        assert client.post(f"/p/{token}/diary/", diary_post(temperature_c="39.0")).status_code == 404
        assert (
            client.post(f"/p/{token}/problem/", {"what": "x", "since_on": today(), "severity": "mild"}).status_code
            == 404
        )
    assert not PatientReport.objects.exists() and not SubmissionLog.objects.exists()


def test_an_overlong_or_odd_token_is_the_same_404(client, refused_tokens):
    base = client.get(f"/p/{refused_tokens['invalid']}/").content
    for token in ("x" * 500, "abc", "%C3%A9t%C3%A9"):
        response = client.get(f"/p/{token}/")
        assert response.status_code == 404 and response.content == base
