"""The public pages' cache: each publication's tables and rendered downloads, built once and kept by id.

Keys name the publication and the day (an accreditation expires at midnight: the pages say so the
next morning). Withdrawal forgets them; the views also read the withdrawal from the database on every
request, so a withdrawn publication answers 410 at once even from a worker whose local cache is stale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from django.core.cache import cache as django_cache
from django.utils import timezone

from public.tables import SCHEMA_VERSION

PREFIX = f"public:{SCHEMA_VERSION}"
TIMEOUT = 26 * 3600
KINDS = ("data", "html", "csv", "json")


def _key(pk: int, kind: str, day: dt.date) -> str:
    return f"{PREFIX}:{pk}:{kind}:{day.isoformat()}"


def etag_of(body: bytes) -> str:
    """Return the strong ETag of a response body."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def cached(pk: int, kind: str, day: dt.date, build: Callable[[], object]):
    """Return the cached value of (publication, kind, day), building and storing it on a miss."""
    key = _key(pk, kind, day)
    value = django_cache.get(key)
    if value is None:
        value = build()
        django_cache.set(key, value, TIMEOUT)
    return value


def forget(pk: int) -> None:
    """Forget everything cached for publication ``pk`` (around today: keys of other days have expired)."""
    today = timezone.localdate()
    days = (today - dt.timedelta(days=1), today, today + dt.timedelta(days=1))
    django_cache.delete_many([_key(pk, kind, day) for kind in KINDS for day in days])
