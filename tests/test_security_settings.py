"""Production security settings: `check --deploy` has nothing to say, HTTPS is enforced, headers are sent,
sessions end after inactivity, and proxy headers are believed only from configured proxies."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from config.env import env_int

ROOT = Path(__file__).resolve().parent.parent
# Variables the security settings read (the subprocesses start from the settings' defaults), and the
# browser tests' async-safety switch, which a deployment must not set.
SECURITY_VARIABLES = {
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "DEBUG",
    "DJANGO_ENV",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "TRUSTED_PROXY_COUNT",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_IDLE_MINUTES",
    "OTP_EXEMPT_DEMO_USERS",
    "API_TOKEN_TTL_HOURS",
}


def production_env(**extra: str) -> dict[str, str]:
    """Return the environment of a production deployment, on this test run's database."""
    env = {k: v for k, v in os.environ.items() if k not in SECURITY_VARIABLES}
    env.update(
        DJANGO_ENV="production",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="registry.example.org",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.update(extra)
    return env


def settings_in(env: dict[str, str], *names: str) -> dict:
    """Return the named settings as a fresh process with ``env`` loads them."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_has_no_warning_in_production():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_does_warn_about_development_settings():
    """Positive control: the same command does see insecure settings."""
    env = production_env(DJANGO_ENV="development", SECURE_SSL_REDIRECT="false")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stdout + result.stderr, code


def test_production_enforces_https_hsts_secure_cookies_and_idle_sessions():
    values = settings_in(
        production_env(),
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_AGE",
        "SESSION_SAVE_EVERY_REQUEST",
        "SECURE_CONTENT_TYPE_NOSNIFF",
        "SECURE_REFERRER_POLICY",
        "OTP_EXEMPT_DEMO_USERS",
    )
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        # No trusted proxy: X-Forwarded-Proto from a client must not make a request "secure".
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_AGE": 30 * 60,
        "SESSION_SAVE_EVERY_REQUEST": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "OTP_EXEMPT_DEMO_USERS": False,
    }


def test_a_trusted_proxy_is_believed_for_the_scheme_and_the_client_address():
    values = settings_in(
        production_env(TRUSTED_PROXY_COUNT="1", SESSION_IDLE_MINUTES="15"),
        "SECURE_PROXY_SSL_HEADER",
        "REST_FRAMEWORK",
        "SESSION_COOKIE_AGE",
    )
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["REST_FRAMEWORK"]["NUM_PROXIES"] == 1
    assert values["SESSION_COOKIE_AGE"] == 15 * 60


def test_demo_users_are_never_exempt_from_the_second_factor_without_debug():
    env = production_env(DJANGO_ENV="development", OTP_EXEMPT_DEMO_USERS="true")
    assert settings_in({**env, "DEBUG": "false"}, "OTP_EXEMPT_DEMO_USERS") == {"OTP_EXEMPT_DEMO_USERS": False}
    assert settings_in({**env, "DEBUG": "true"}, "OTP_EXEMPT_DEMO_USERS") == {"OTP_EXEMPT_DEMO_USERS": True}


@pytest.mark.parametrize(
    ("name", "value"), [("TRUSTED_PROXY_COUNT", "-1"), ("API_TOKEN_TTL_HOURS", "0"), ("SESSION_IDLE_MINUTES", "0")]
)
def test_a_setting_below_its_minimum_is_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        env_int(name, 1, minimum=0 if name == "TRUSTED_PROXY_COUNT" else 1)


@pytest.mark.django_db
def test_https_is_enforced_and_a_forged_forwarded_proto_does_not_count(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/admin/login/"
    assert client.get("/admin/login/", secure=True).status_code == 200


@pytest.mark.django_db
def test_behind_a_trusted_proxy_its_forwarded_proto_counts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    assert client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="http").status_code == 301


@pytest.mark.django_db
def test_every_page_sends_the_security_headers(client, settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    response = client.get("/admin/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    directives = [part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")]
    policy = {name: value for name, value in directives if name}
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_api_docs_nonce_is_in_the_policy_and_on_the_inline_style(client, alice):
    client.force_login(alice)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    nonce = response["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in response.content.decode()
    # The start-up script is a file of the same origin, not inline.
    assert "<script>" not in response.content.decode()
    assert client.get("/api/docs/?script=").status_code == 200


@pytest.mark.django_db
def test_a_session_ends_after_the_idle_time_and_each_request_renews_it(client, alice, settings):
    client.force_login(alice)
    session = Session.objects.get()
    idle = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert abs((session.expire_date - timezone.now()) - idle) < dt.timedelta(seconds=60)
    # Ten seconds left: a request renews the whole idle time.
    Session.objects.update(expire_date=timezone.now() + dt.timedelta(seconds=10))
    assert client.get("/admin/").status_code == 200
    renewed = Session.objects.get().expire_date - timezone.now()
    assert renewed > dt.timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)
    # Past the idle time the session is gone: back to the login.
    Session.objects.update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
