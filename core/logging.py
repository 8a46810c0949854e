"""Logging filters: one line per request while the database is unavailable, not one traceback each.

Django logs every unhandled exception on ``django.request`` with its traceback (40-odd lines). During
a PostgreSQL outage every request fails the same way, so the review saw 13,292 log lines in 22 s.
The 503 such a request gets (core.views) is already the diagnosis; the log keeps the request line and
the driver's one-line reason.
"""

from __future__ import annotations

import logging

from core.views import database_unavailable


class DatabaseUnavailableFilter(logging.Filter):
    """Drop the traceback of a record whose exception is "the database is unavailable", keep one line.

    Several layers of one request may fail in turn (a middleware reading the user, then the session
    middleware on the way out); only the first of them is logged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if database_unavailable(exc):
            request = getattr(record, "request", None)
            if request is not None:
                if getattr(request, "_database_unavailable_logged", False):
                    return False
                request._database_unavailable_logged = True
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            record.msg = f"{record.getMessage()} (database unavailable: {reason})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True
