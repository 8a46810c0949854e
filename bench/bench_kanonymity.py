"""Measure re-identification risk of the two line listings on the demo registry (Hardening 18).

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_kanonymity.py \\
        [--patients 360] [--min-k 11]

It creates ``bench_kanon_<pid>``, migrates it, runs ``manage.py load_demo_data`` into it, then
downloads, as the demo registry administrator, through the real URLconf, views and COPY:

- the limited data set, GET /api/v1/exports/adverse-events.csv?purpose=...: how many patients
  are unique on (birth_year, sex, clinic, performed_on), the combination the review used
  (it found 276/276), and on each of the listing's other quasi-identifier sets;
- the de-identified listing, GET /api/v1/exports/adverse-events.deidentified.csv: its k (the
  fewest distinct patient pseudonyms sharing one combination of birth_year, sex, country and
  procedure_period, counted from the CSV itself), the number of combinations, the
  generalisation chosen and the rows suppressed; and the same for --min-k values 2 to 20.

Exit status 0 when the de-identified listing's k is at least --min-k.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
LIMITED = "/api/v1/exports/adverse-events.csv?purpose=Re-identification+risk+benchmark"
DEIDENTIFIED = "/api/v1/exports/adverse-events.deidentified.csv"
QUASI_IDENTIFIERS = ("birth_year", "sex", "country", "procedure_period")


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _rows(client, url: str) -> tuple[list[dict], dict]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body))), response.headers


def unique_patients(rows: list[dict], columns: tuple[str, ...], patient: str) -> tuple[int, int]:
    """Return (patients alone on at least one of their rows' ``columns`` values, patients listed)."""
    holders = defaultdict(set)
    for row in rows:
        holders[tuple(row[c] for c in columns)].add(row[patient])
    alone = {next(iter(ids)) for ids in holders.values() if len(ids) == 1}
    return len(alone), len({row[patient] for row in rows})


def smallest_class(rows: list[dict]) -> tuple[int | None, int]:
    """Return (the fewest distinct patients sharing one quasi-identifier combination, the number of combinations)."""
    holders = defaultdict(set)
    for row in rows:
        holders[tuple(row[q] for q in QUASI_IDENTIFIERS)].add(row["patient"])
    return (min(map(len, holders.values())) if holders else None), len(holders)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=None, help="demo patients (default: the demo's own)")
    parser.add_argument("--min-k", type=int, default=11)
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL", DEFAULT_SERVER)
    name = f"bench_kanon_{os.getpid()}"
    _admin(server, f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = _with_database(server, name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test.utils import setup_test_environment
        from rest_framework.test import APIClient

        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        demo = {"patients": args.patients} if args.patients else {}
        call_command("load_demo_data", stdout=io.StringIO(), **demo)
        print(f"migrated and loaded the demo registry in {time.perf_counter() - started:.1f} s")

        setup_test_environment()  # the test client's host (testserver) passes ALLOWED_HOSTS
        client = APIClient()
        client.force_authenticate(get_user_model().objects.get(username="registry_admin"))

        limited, _ = _rows(client, LIMITED)
        print(f"\nlimited data set ({len(limited)} rows): patients unique on")
        for columns in (
            ("birth_year", "sex", "clinic", "performed_on"),
            ("birth_year", "sex", "clinic"),
            ("birth_year", "sex", "country", "performed_on"),
            ("sex", "clinic", "performed_on"),
        ):
            alone, listed = unique_patients(limited, columns, "registry_id")
            print(f"  ({', '.join(columns)}): {alone}/{listed}")

        print("\nde-identified listing (rows, combinations of birth_year x sex x country x procedure_period):")
        verdict = None
        for min_k in sorted({2, 5, 11, 20, args.min_k}):
            settings.DEIDENTIFIED_MIN_K = min_k
            rows, headers = _rows(client, DEIDENTIFIED)
            k, classes = smallest_class(rows)
            alone, listed = unique_patients(rows, QUASI_IDENTIFIERS, "patient")
            print(
                f"  min k {min_k:>2}: k = {k}, {classes} combinations, {len(rows)} rows, "
                f"{headers['X-Suppressed-Rows']} suppressed, {alone}/{listed} patients unique, "
                f"generalisation {headers['X-Generalisation']}"
            )
            assert headers["X-K-Anonymity"] == str(k or 0)
            if min_k == args.min_k:
                verdict = k is not None and k >= min_k
        print(f"\nde-identified listing k >= {args.min_k}: {'yes' if verdict else 'NO'}")
        return 0 if verdict else 1
    finally:
        from django.db import connections

        connections.close_all()
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
