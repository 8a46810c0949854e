"""Start a private PostgreSQL for a machine with no DATABASE_URL.

The ``pgserver`` package ships real PostgreSQL binaries; the server lives in a
project folder (``.pgdata`` by default) and is shared by every process that asks
for it, so ``runserver``, ``migrate`` and the test runner all use one engine.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger(__name__)


def embedded_database(data_dir: Path, name: str = "registry") -> dict:
    """Return a DATABASES entry for an embedded server, starting it if needed."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:  # pragma: no cover - only without the pinned deps
        raise ImproperlyConfigured(
            "DATABASE_URL is unset and pgserver is not installed; "
            "install requirements/base.txt or point DATABASE_URL at PostgreSQL."
        ) from exc
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(str(data_dir), cleanup_mode=None)
    # The URI is socket-only: postgresql://postgres:@/postgres?host=<dir>
    socket_dir = server.get_uri().split("host=")[-1]
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ImproperlyConfigured(f"Embedded database name {name!r} must be a plain identifier.")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608 - checked above
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')
    log.info("Using embedded PostgreSQL in %s", data_dir)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": socket_dir,
        "PORT": "",
        "OPTIONS": {},
        "CONN_MAX_AGE": 0,
        "ATOMIC_REQUESTS": False,
    }
