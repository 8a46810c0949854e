"""Who and why for the audit trail (django-pghistory context)."""

from __future__ import annotations

import contextlib

import pghistory
from pghistory import runtime


def audit_context(actor, action: str):
    """Return a context manager that attributes the writes inside it to ``actor`` and ``action``.

    When an outer context is already open (the request middleware, an import, a
    command), it keeps naming the run: pghistory merges nested metadata into the
    outer context row, so a nested service must only fill what is missing rather
    than overwrite the user or action the caller recorded.
    """
    current = getattr(runtime._tracker, "value", None)
    if current is not None:
        if actor is not None:
            current.metadata.setdefault("user", actor.pk)
        current.metadata.setdefault("action", action)
        return contextlib.nullcontext(current)
    return pghistory.context(user=getattr(actor, "pk", None), action=action)
