"""Who and why for the audit trail (django-pghistory context)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pghistory


@contextlib.contextmanager
def audit_context(actor, action: str) -> Iterator:
    """Return a context manager that attributes the writes inside it to ``actor`` and ``action``.

    When an outer context is already open (the request middleware, an import, a
    command), it keeps naming the run: pghistory merges nested metadata into the
    outer context row, so a nested service must only fill what is missing rather
    than overwrite the user or action the caller recorded.
    """
    # Entering pghistory.context() without metadata is pghistory's public way to join the
    # open context (it adds nothing to it) or to open one; either way it yields that
    # context, whose metadata this fills without overwriting. Passing user/action to
    # pghistory.context() itself would overwrite an outer context's values.
    with pghistory.context() as current:
        metadata = current.metadata
        if metadata.get("user") is None:
            metadata["user"] = getattr(actor, "pk", None)
        metadata.setdefault("action", action)
        yield current
