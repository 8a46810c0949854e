"""With PostgreSQL unreachable every request answers 503 with Retry-After and logs one line.

The connection is really refused: the default database is pointed at a local port where nothing
listens (bench/bench_pg_outage.py kills a real server under load). The test client re-raises a
view's exception by default; a server does not, so these clients are made not to.
"""

from __future__ import annotations

import logging
import socket

import pytest
from django.db import connection
from django.test import Client

from core.logging import DatabaseUnavailableFilter
from tests.factories import issue_api_token


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def database_down(transactional_db):
    """Point the default connection at a port with no server for the test's body, then restore it."""
    saved = dict(connection.settings_dict)

    def down():
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))

    yield down
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


def _request_log(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django.request"]


def test_an_api_request_answers_503_with_retry_after_and_the_standard_body(alice, database_down, caplog, settings):
    token = issue_api_token(alice)
    database_down()
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.INFO):
        response = client.get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Token {token}")
        write = client.post(
            "/api/v1/patients/",
            {"sex": "F", "birth_year": 1970, "enrolled_on": "2024-01-01"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {token}",
            HTTP_IDEMPOTENCY_KEY="outage-1",
        )
    for answer in (response, write):
        assert answer.status_code == 503
        assert answer["Retry-After"] == str(settings.DATABASE_UNAVAILABLE_RETRY_AFTER)
        assert answer.json()["type"] == "server_error"
        assert answer.json()["errors"][0]["code"] == "database_unavailable"
    records = _request_log(caplog)
    assert len(records) == 2  # one line per request, with the driver's reason and no traceback
    assert all(r.exc_info is None and r.levelno == logging.ERROR for r in records)
    assert all("(database unavailable: connection failed" in r.getMessage() for r in records)


def test_an_admin_page_answers_503_with_retry_after(alice, database_down, caplog):
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    database_down()
    with caplog.at_level(logging.INFO):
        response = client.get("/admin/registry/patient/")
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "unavailable" in response.content.decode()
    records = _request_log(caplog)
    assert len(records) == 1
    assert records[0].exc_info is None


def test_a_view_failing_on_the_database_answers_503_through_the_middleware(db, database_down, caplog):
    # The anonymous login form touches the database only in the view (the password check).
    database_down()
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.INFO):
        response = client.post("/admin/login/", {"username": "alice", "password": "x", "otp_token": "123456"})
    assert response.status_code == 503
    assert response["Retry-After"]
    records = _request_log(caplog)
    assert len(records) == 1
    assert records[0].exc_info is None
    assert "database unavailable" in records[0].getMessage()


def test_a_failure_inside_a_middleware_answers_503_through_handler500(alice, database_down, caplog, settings):
    # No view touches the database here (a redirect); the session save on the way out does.
    settings.SESSION_SAVE_EVERY_REQUEST = True
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    database_down()
    with caplog.at_level(logging.INFO):
        response = client.get("/api-auth/login/")
    assert response.status_code == 503
    assert response["Retry-After"]
    records = _request_log(caplog)
    assert len(records) == 1
    # Django logged it with the exception; the filter turned the traceback into the driver's reason.
    assert records[0].exc_info is None
    assert "database unavailable" in records[0].getMessage()
    assert "\n" not in records[0].getMessage()


def test_the_log_filter_leaves_other_errors_their_traceback():
    try:
        raise ValueError("a bug")
    except ValueError as exc:
        record = logging.LogRecord(
            "django.request",
            logging.ERROR,
            __file__,
            1,
            "Internal Server Error: %s",
            ("/x",),
            (type(exc), exc, exc.__traceback__),
        )
    assert DatabaseUnavailableFilter().filter(record)
    assert record.exc_info is not None


@pytest.mark.django_db
def test_a_query_that_fails_for_its_own_reasons_is_still_a_500(alice):
    # A statement timeout is an OperationalError too, but says nothing about the server being gone.
    from django.db import OperationalError

    from core.views import database_unavailable

    with pytest.raises(OperationalError) as caught, connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 1")
        cursor.execute("SELECT pg_sleep(1)")
    assert not database_unavailable(caught.value)
