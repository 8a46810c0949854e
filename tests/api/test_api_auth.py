"""Authentication: expiring hashed tokens (knox) with a second factor for staff, token listing and
revocation, brute-force lockout, and throttles that a forged X-Forwarded-For cannot dodge."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle

from tests.conftest import PASSWORD, confirmed_device, totp_code
from tests.factories import UserFactory, issue_api_token

pytestmark = pytest.mark.django_db
TOKEN_URL = "/api/v1/auth/token/"
TOKENS_URL = "/api/v1/auth/tokens/"


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # The login throttle counts per client address in the cache, across tests of this process.
    cache.clear()
    yield
    cache.clear()


def token_login(user, code: str | None = "auto", client: APIClient | None = None, **extra):
    """Return the token endpoint's response for user's password and, by default, a valid TOTP code."""
    body = {"username": user.username, "password": PASSWORD}
    if code == "auto":
        body["otp_token"] = totp_code(confirmed_device(user))
    elif code is not None:
        body["otp_token"] = code
    return (client or APIClient()).post(TOKEN_URL, body, format="json", **extra)


def with_token(token: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {token}")


def error_of(response) -> tuple[str, str]:
    (error,) = response.json()["errors"]
    return error["attr"], error["code"]


def test_everything_requires_authentication(world):
    anonymous = APIClient()
    for url in ("/api/v1/adverse-events/", "/api/v1/patients/", "/api/fhir/AdverseEvent?patient=x", "/api/schema/"):
        assert anonymous.get(url).status_code in (401, 403), url
    assert anonymous.get(TOKENS_URL).status_code == 401


def test_a_token_opens_the_api_for_an_integration(alice, world):
    response = token_login(alice)
    assert response.status_code == 200, response.content
    rows = with_token(response.json()["token"]).get("/api/v1/adverse-events/").json()["results"]
    assert [r["event_id"] for r in rows] == [world["a"].external_id]


def test_a_token_expires_after_the_configured_lifetime_and_is_stored_only_hashed(alice, settings):
    before = timezone.now()
    body = token_login(alice).json()
    expiry = dt.datetime.fromisoformat(body["expiry"])
    lifetime = settings.REST_KNOX["TOKEN_TTL"]
    assert lifetime == dt.timedelta(hours=10)
    assert before + lifetime <= expiry <= timezone.now() + lifetime
    (row,) = AuthToken.objects.filter(user=alice).values()
    assert body["token"] not in {str(value) for value in row.values()}
    assert row["digest"] != body["token"] and len(row["digest"]) == 128
    assert body["token"].startswith(row["token_key"])


def test_an_expired_token_is_refused_and_deleted(alice):
    _instance, token = AuthToken.objects.create(user=alice, expiry=dt.timedelta(seconds=-1))
    assert with_token(token).get("/api/v1/clinics/").status_code == 401
    assert not AuthToken.objects.filter(user=alice).exists()


def test_an_unknown_or_old_style_clear_text_token_is_refused(alice):
    # rest_framework.authtoken's 40-hex keys are no longer read from anywhere.
    assert with_token("9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b").get("/api/v1/clinics/").status_code == 401
    assert with_token("not-a-token").get("/api/v1/clinics/").status_code == 401


def test_every_login_issues_a_new_token_and_both_work(alice):
    first = token_login(alice).json()["token"]
    second = token_login(alice).json()["token"]
    assert first != second
    assert AuthToken.objects.filter(user=alice).count() == 2
    assert with_token(first).get("/api/v1/clinics/").status_code == 200
    assert with_token(second).get("/api/v1/clinics/").status_code == 200


def test_a_staff_login_without_a_code_is_refused_on_the_field_and_counts_as_a_failed_login(alice):
    response = token_login(alice, code=None)
    assert response.status_code == 400
    assert error_of(response) == ("otp_token", "otp_required")
    assert not AuthToken.objects.exists()
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 1


def test_a_wrong_code_is_refused_and_repeated_wrong_codes_lock_the_account(alice, settings):
    response = token_login(alice, code="000000" if totp_code(confirmed_device(alice)) != "000000" else "111111")
    assert response.status_code == 400
    assert error_of(response) == ("otp_token", "otp_invalid")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        token_login(alice, code="12345x")
    locked = token_login(alice)
    assert locked.status_code == 429
    assert error_of(locked) == (None, "locked_out")
    assert not AuthToken.objects.exists()


def test_a_code_right_after_a_wrong_one_waits_for_the_devices_throttle(alice):
    wrong = "000000" if totp_code(confirmed_device(alice)) != "000000" else "111111"
    assert error_of(token_login(alice, code=wrong)) == ("otp_token", "otp_invalid")
    response = token_login(alice)
    assert response.status_code == 400
    assert error_of(response) == ("otp_token", "otp_throttled")
    assert not AuthToken.objects.exists()


def test_a_staff_user_without_an_authenticator_is_told_to_enrol(alice):
    TOTPDevice.objects.filter(user=alice).delete()
    response = token_login(alice, code="123456")
    assert response.status_code == 400
    assert error_of(response) == ("otp_token", "otp_not_enrolled")
    assert not AuthToken.objects.exists()


def test_a_user_without_staff_access_or_authenticator_needs_no_code(db):
    integration = UserFactory(username="integration-bot")
    response = token_login(integration, code=None)
    assert response.status_code == 200, response.content


def test_demo_users_skip_the_code_only_when_debug_is_on(db, settings):
    from intake.demo import DEMO_PASSWORD

    demo = UserFactory(username="clinician_madrid", is_staff=True, password=DEMO_PASSWORD)
    body = {"username": demo.username, "password": DEMO_PASSWORD}
    settings.OTP_EXEMPT_DEMO_USERS = True
    settings.DEBUG = False
    refused = APIClient().post(TOKEN_URL, body, format="json")
    assert refused.status_code == 400 and error_of(refused) == ("otp_token", "otp_not_enrolled")
    settings.DEBUG = True
    assert APIClient().post(TOKEN_URL, body, format="json").status_code == 200
    settings.OTP_EXEMPT_DEMO_USERS = False
    assert APIClient().post(TOKEN_URL, body, format="json").status_code == 400


def test_a_user_lists_their_own_tokens_without_the_secrets(alice, bob):
    mine = token_login(alice).json()["token"]
    other = issue_api_token(alice)
    bobs = issue_api_token(bob)
    response = with_token(mine).get(TOKENS_URL)
    assert response.status_code == 200
    rows = response.json()
    assert sorted(r["id"] for r in rows) == sorted([mine[:15], other[:15]])
    assert [r["current"] for r in rows if r["id"] == mine[:15]] == [True]
    assert set(rows[0]) == {"id", "created", "expiry", "current"}
    assert mine not in response.content.decode() and bobs[:15] not in response.content.decode()


def test_a_user_revokes_one_token_but_not_someone_elses(alice, bob):
    keep, drop = issue_api_token(alice), issue_api_token(alice)
    bobs = issue_api_token(bob)
    assert with_token(keep).delete(f"{TOKENS_URL}{drop[:15]}/").status_code == 204
    assert with_token(drop).get("/api/v1/clinics/").status_code == 401
    assert with_token(keep).get("/api/v1/clinics/").status_code == 200
    # Another user's token answers as if it did not exist, and stays.
    assert with_token(keep).delete(f"{TOKENS_URL}{bobs[:15]}/").status_code == 404
    assert with_token(bobs).get("/api/v1/clinics/").status_code == 200


def test_logout_revokes_the_token_in_use_and_logoutall_every_token(alice):
    first, second, third = (issue_api_token(alice) for _ in range(3))
    assert with_token(first).post("/api/v1/auth/logout/").status_code == 204
    assert with_token(first).get("/api/v1/clinics/").status_code == 401
    assert with_token(second).get("/api/v1/clinics/").status_code == 200
    response = with_token(second).post("/api/v1/auth/logoutall/")
    assert response.status_code == 200 and response.json() == {"revoked": 2}
    assert with_token(third).get("/api/v1/clinics/").status_code == 401
    assert not AuthToken.objects.filter(user=alice).exists()


def test_set_password_and_save_revokes_every_token_of_the_user_only(alice, bob):
    token, bobs = issue_api_token(alice), issue_api_token(bob)
    alice.set_password("a-brand-new-passphrase-42")
    alice.save()
    assert with_token(token).get("/api/v1/clinics/").status_code == 401
    assert not AuthToken.objects.filter(user=alice).exists()
    assert with_token(bobs).get("/api/v1/clinics/").status_code == 200


def test_saving_the_same_password_or_a_login_keeps_the_tokens(alice):
    token = issue_api_token(alice)
    alice.set_password(PASSWORD)
    alice.save()
    alice.last_login = timezone.now()
    alice.save(update_fields=["last_login"])
    alice.first_name = "Alice"
    alice.save()
    assert with_token(token).get("/api/v1/clinics/").status_code == 200


def test_deactivating_a_user_revokes_their_tokens_for_good(alice):
    token = issue_api_token(alice)
    alice.is_active = False
    alice.save()
    assert not AuthToken.objects.filter(user=alice).exists()
    alice.is_active = True
    alice.save()
    assert with_token(token).get("/api/v1/clinics/").status_code == 401


def test_a_password_set_in_the_admin_revokes_the_users_tokens(client, alice):
    superuser = UserFactory(username="superuser", is_staff=True, is_superuser=True)
    token = issue_api_token(alice)
    client.force_login(superuser)
    response = client.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"password1": "a-brand-new-passphrase-42", "password2": "a-brand-new-passphrase-42", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    alice.refresh_from_db()
    assert alice.check_password("a-brand-new-passphrase-42")
    assert with_token(token).get("/api/v1/clinics/").status_code == 401


def test_changing_ones_own_password_in_the_admin_revokes_ones_tokens(client, alice):
    token = issue_api_token(alice)
    client.force_login(alice)
    response = client.post(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-brand-new-passphrase-42",
            "new_password2": "a-brand-new-passphrase-42",
        },
    )
    assert response.status_code == 302, response.content
    assert with_token(token).get("/api/v1/clinics/").status_code == 401


def test_a_session_without_the_second_factor_does_not_open_the_api(client, alice, world):
    from tests.conftest import login_password_only

    login_password_only(client, alice)
    assert client.get("/api/v1/adverse-events/").status_code in (401, 403)
    client.force_login(alice)  # the whole two-factor login
    assert client.get("/api/v1/adverse-events/").status_code == 200


def test_repeated_failures_lock_the_token_endpoint_even_for_the_right_password(alice, settings):
    client = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert client.post(TOKEN_URL, {"username": "alice", "password": "wrong"}, format="json").status_code == 400
    locked = token_login(alice, client=client)
    assert locked.status_code == 429
    assert "token" not in locked.json()


def test_repeated_failures_lock_the_admin_login(client, alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    response = client.post(
        "/admin/login/", {"username": "alice", "password": PASSWORD, "otp_token": totp_code(confirmed_device(alice))}
    )
    assert response.status_code in (403, 429)
    assert "_auth_user_id" not in client.session


def test_a_user_over_the_fair_use_rate_is_throttled(api_alice, world, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    codes = [api_alice.get("/api/v1/clinics/").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]


def failed_logins_with_rotating_forwarded_for(n: int = 40) -> list[int]:
    """Return the status codes of the issue's reproduction: n bad logins, each with a new X-Forwarded-For."""
    client = APIClient()
    return [
        client.post(
            TOKEN_URL,
            {"username": f"u{i}", "password": "x"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"10.1.0.{i}",
        ).status_code
        for i in range(1, n + 1)
    ]


def test_a_forged_forwarded_for_does_not_dodge_the_login_throttle(db, settings):
    assert settings.TRUSTED_PROXY_COUNT == 0 and settings.REST_FRAMEWORK["NUM_PROXIES"] == 0
    codes = failed_logins_with_rotating_forwarded_for()
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")[0])
    assert codes == [400] * limit + [429] * (40 - limit)
    # django-axes keyed the failures on the connection's address too, not on the forged header.
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_a_forged_forwarded_for_does_not_dodge_the_lockout(alice, settings):
    client = APIClient()
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            TOKEN_URL, {"username": "alice", "password": "wrong"}, format="json", HTTP_X_FORWARDED_FOR=f"10.9.0.{i}"
        )
    assert token_login(alice, client=client, HTTP_X_FORWARDED_FOR="10.9.0.99").status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(db, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    codes = failed_logins_with_rotating_forwarded_for()
    # Forty different clients, one failure each: nobody reaches the per-address limit.
    assert codes == [400] * 40
    assert AccessAttempt.objects.get(username="u7").ip_address == "10.1.0.7"
    # The proxy appends the address it saw to whatever the client sent: only that last one is believed.
    cache.clear()
    client = APIClient()
    forged = [
        client.post(
            TOKEN_URL, {"username": "x", "password": "x"}, format="json", HTTP_X_FORWARDED_FOR=f"10.2.0.{i}, 192.0.2.1"
        ).status_code
        for i in range(40)
    ]
    assert 429 in forged


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_drops_the_old_clear_text_token_table_so_its_users_can_be_deleted():
    from django.core.management import call_command
    from django.db import connection

    user = UserFactory(username="old-integration")
    with connection.cursor() as cursor:  # rest_framework.authtoken's table as a pre-knox database has it
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL, "
            "user_id integer NOT NULL UNIQUE REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES ('9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b', now(), %s)", [user.pk]
        )
    call_command("migrate", "registry", "0007", verbosity=0)
    # Every app: going back to registry 0007 also unapplied the later migrations that depend on it.
    call_command("migrate", verbosity=0)
    assert "authtoken_token" not in connection.introspection.table_names()
    user.delete()
