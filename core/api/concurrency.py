"""ETag / If-Match for optimistic concurrency on the API's updates."""

from __future__ import annotations

import re

from rest_framework.request import Request

from core.api.errors import PreconditionFailed, PreconditionRequired

_ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')


def etag_for(instance) -> str:
    """Return the strong ETag of a versioned row: its version number, quoted."""
    return f'"{instance.version}"'


def expected_version(request: Request) -> int:
    """Return the version named by If-Match, or raise 428 when it is missing or unusable.

    ``If-Match: *`` is refused on purpose: it would let a client overwrite whatever
    is stored, which is exactly what optimistic concurrency is here to prevent.
    """
    header = request.headers.get("If-Match")
    if not header:
        raise PreconditionRequired()
    match = _ETAG.match(header)
    if not match:
        raise PreconditionRequired(detail='If-Match must carry one ETag as returned by the API, e.g. "3".')
    return int(match.group(1))


def check_version(instance, expected: int) -> None:
    """Raise 412 early when the stored row is already past ``expected``.

    The authoritative check is the UPDATE's WHERE clause (VersionedModel); this one
    only spares a doomed request the work of validating.
    """
    if instance.version != expected:
        raise PreconditionFailed()
