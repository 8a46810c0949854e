"""Error responses every layer shares: the API's error body, "database unavailable" (503), handler500.

When PostgreSQL is down or restarting, every request fails on its first query. That is not a bug
in the request: the client should come back shortly, so it gets 503 with Retry-After (the API's
standard error body on /api/ paths) and the log gets one line, not a traceback per request.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from django.utils.log import log_response
from django.views import defaults

API_PREFIX = "/api/"

# SQLSTATEs of a server that is not there for us right now: connection exceptions (class 08),
# shutting down or restarting (57P01-57P03), out of connection slots (53300). A client-side failure
# (connection refused, server closed the connection) carries no SQLSTATE at all.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")

UNAVAILABLE_DETAIL = "The registry's database is unavailable at the moment; nothing was changed. Try again shortly."


def is_api_request(request: HttpRequest) -> bool:
    """Return True for the paths that answer in the API's JSON error body."""
    return request.path_info.startswith(API_PREFIX)


def api_error_body(error_type: str, code: str, detail: str, attr: str | None = None) -> dict:
    """Return the API's standard error body (drf-standardized-errors' shape) with one error."""
    return {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": attr}]}


def database_unavailable(exc: BaseException | None) -> bool:
    """Return True when ``exc`` says the database cannot be reached, as opposed to a failing query.

    A deadlock, a statement timeout or a constraint is an OperationalError too, but those are about
    the query, keep their traceback and stay 500s.
    """
    if isinstance(exc, InterfaceError):  # a connection that died earlier in this process
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def retry_after_seconds() -> int:
    """Return how long a client should wait before retrying while the database is unavailable."""
    return settings.DATABASE_UNAVAILABLE_RETRY_AFTER


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """Return the 503 (with Retry-After) that answers any request while the database is unavailable."""
    if is_api_request(request):
        response = JsonResponse(api_error_body("server_error", "database_unavailable", UNAVAILABLE_DETAIL), status=503)
    else:
        response = HttpResponse(
            "<!doctype html><title>Service unavailable</title><h1>Service unavailable</h1>"
            f"<p>{escape(UNAVAILABLE_DETAIL)}</p>",
            status=503,
        )
    response["Retry-After"] = str(retry_after_seconds())
    return response


def log_database_unavailable(request: HttpRequest, response: HttpResponse, exc: BaseException) -> None:
    """Log a 503 for ``exc`` as Django logs a failed request; core.logging makes it one line with the reason.

    For the paths that answer the outage themselves (a view's exception, the API's handler); Django
    logs the ones handler500 answers the same way.
    """
    log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request, exception=exc)


def server_error(request: HttpRequest) -> HttpResponse:
    """Return the response for an unhandled exception (Django's handler500).

    Django calls this inside the ``except`` that caught the exception, whichever middleware layer
    raised it (a session load in the authentication middleware, a session save on the way out), so
    sys.exc_info() names it.
    """
    if database_unavailable(sys.exc_info()[1]):
        return database_unavailable_response(request)
    if is_api_request(request):
        return JsonResponse(api_error_body("server_error", "error", "Server Error (500)"), status=500)
    return defaults.server_error(request)
