"""Idempotency-Key for POSTs: a retried request returns the first response and writes nothing new.

The key is claimed with INSERT ... ON CONFLICT DO NOTHING inside the same transaction
as the write itself. A concurrent duplicate's INSERT waits on the unique index until
the first transaction ends, then finds the stored response and replays it; if the
first one failed and rolled back, the duplicate proceeds as the first. So exactly one
row is ever created per key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import connection, transaction
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import IdempotencyKeyReused
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = ("ETag", "Location")


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(request: Request, handler: Callable[[], Response]) -> Response:
    """Return ``handler()``'s response, or the stored one for a repeated Idempotency-Key."""
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    # The schema's limits on the header as sent (1-255 characters, not all blank).
    if not key.strip() or len(key) > 255:
        raise ValidationError({HEADER: ["Idempotency-Key must be 1 to 255 characters."]})
    key = key.strip()
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {IdempotencyRecord._meta.db_table} "  # noqa: S608 - table name from the model
                "(user_id, key, method, path, request_hash, response_headers, created_at) "
                "VALUES (%s, %s, %s, %s, %s, '{}', now()) ON CONFLICT (user_id, key) DO NOTHING RETURNING id",
                [request.user.pk, key, request.method, request.path, fingerprint],
            )
            claimed = cursor.fetchone()
        if claimed is None:
            record = IdempotencyRecord.objects.get(user=request.user, key=key)
            if record.request_hash != fingerprint:
                raise IdempotencyKeyReused()
            return Response(
                record.response_body, status=record.status_code, headers={**record.response_headers, REPLAYED: "true"}
            )
        response = handler()
        if not 200 <= response.status_code < 300:
            # Only successes are remembered; a rejected request may be corrected and retried.
            transaction.set_rollback(True)
            return response
        IdempotencyRecord.objects.filter(pk=claimed[0]).update(
            status_code=response.status_code,
            response_body=json.loads(JSONRenderer().render(response.data)),
            response_headers={h: response[h] for h in KEPT_HEADERS if h in response},
        )
    return response
