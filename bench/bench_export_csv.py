"""Benchmark the streaming line-listing export against PostgreSQL's own COPY of the same query, and of the raw one.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_export_csv.py \\
        [--events 1000000] [--procedures 700000] [--rounds 2]

It creates ``bench_export_<pid>``, migrates it and generates the registry with plain SQL
(generate_series INSERTs; the tables' row triggers are bypassed with
``session_replication_role = replica`` in the generating session only): 20 clinics,
procedures * 5/7 patients, --procedures procedures, --events adverse events. Then, for
--rounds rounds, each in a fresh subprocess (so each has its own peak RSS):

- export: GET /api/v1/exports/adverse-events.csv through the real URLconf, middleware,
  DRF authentication (a registry administrator's token) and view, with Django's test
  client, the streaming response consumed chunk by chunk;
- copy: ``COPY (<the same SELECT>) TO STDOUT WITH (FORMAT csv)`` read with psycopg
  (the limit: no Django, no HTTP);
- raw: COPY of the SELECT without the spreadsheet neutralising (Hardening 7: ids and codes
  prefixed with an apostrophe when they begin like a formula, free text stripped of invisible
  characters, all inside the SELECT): the export as it was before, so export/raw is what the
  neutralising costs on top of everything else;
- deidentified: GET /api/v1/exports/adverse-events.deidentified.csv the same way (one aggregate
  query, the choice of generalisation, then COPY of the generalised rows), once, for its time
  and memory.

It reports seconds (best of the rounds), bytes, rows, the export/COPY and export/raw ratios
(target within 3x) and the peak RSS of each process, with the export's growth over the
process's size before it (target < 200 MB; the project's imports alone take ~200 MB). The
database is dropped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
BENCH_USER = "bench-root"
URL = "/api/v1/exports/adverse-events.csv?purpose=Export+benchmark"  # a limited data set: purpose required
DEIDENTIFIED_URL = "/api/v1/exports/adverse-events.deidentified.csv"


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


GENERATE_SQL = """
SET session_replication_role = replica;
INSERT INTO registry_clinic (code, name, country, city, gmp_certified, accreditation_body, created_at, updated_at)
SELECT 'CL-' || lpad(i::text, 3, '0'), 'Clinic ' || i, (ARRAY['ES','DE','FR','IT','US'])[1 + i % 5], 'City',
       i % 2 = 0, '', now(), now()
FROM generate_series(1, 20) AS i;

INSERT INTO registry_patient (registry_id, sex, birth_year, enrolled_on, created_at, updated_at, clinic_id, version)
SELECT 'P-' || lpad(i::text, 10, '0'), (ARRAY['F','M','X','U'])[1 + i % 4], 1925 + (i::bigint * 7919) % 80,
       DATE '2015-01-01', now(), now(), (SELECT min(id) FROM registry_clinic) + i % 20, 1
FROM generate_series(1, %(patients)s) AS i;

INSERT INTO registry_procedure (external_id, performed_on, site, laterality, target, indication, cell_source,
    cell_type, processing, cell_dose_millions, carrier, guidance, product_lot, operator, created_at, updated_at,
    clinic_id, patient_id, version)
SELECT 'PR-' || lpad(j::text, 10, '0'), DATE '2016-01-01' + (j * 37) % 2900,
       (ARRAY['knee','hip','shoulder','spine','elbow','ankle','hand_wrist','other'])[1 + j % 8],
       (ARRAY['left','right','bilateral','n/a'])[1 + j % 4], '', '', 'autologous',
       (ARRAY['bmac','adipose_svf'])[1 + j % 2], 'minimally_manipulated', 25, 'saline', 'ultrasound',
       'LOT-' || j, '', now(), now(), p.clinic_id, p.id, 1
FROM generate_series(1, %(procedures)s) AS j
JOIN registry_patient p ON p.registry_id = 'P-' || lpad((1 + (j - 1) %% %(patients)s)::text, 10, '0');

INSERT INTO events_adverseevent (external_id, category, term, meddra_code, onset_on, onset_estimated, recorded_at,
    grade, serious, serious_death, serious_life_threatening, serious_hospitalisation, serious_disability,
    serious_congenital_anomaly, serious_medically_important, causality_procedure, causality_product, expectedness,
    outcome, resolved_on, action_taken, reporter, retracted_at, retraction_reason, updated_at, procedure_id, version)
SELECT 'AE-' || lpad(k::text, 12, '0'),
       (ARRAY['injection_site_reaction','systemic_reaction','infection','ectopic_tissue'])[1 + k % 4],
       (ARRAY['Knee pain at injection site','Swelling, bruising','Fever "38.5"','Fatigue'])[1 + k % 4],
       CASE WHEN k % 3 = 0 THEN '10003963' ELSE '' END,
       pr.performed_on + k % 400, false, now(), 1 + k % 3, k % 3 = 2, false, false, k % 3 = 2, false, false, false,
       (ARRAY['','possible','probable','unlikely'])[1 + k % 4], '', '', 'recovered',
       pr.performed_on + k % 400 + 5, '', '', CASE WHEN k % 50 = 0 THEN now() END,
       CASE WHEN k % 50 = 0 THEN 'duplicate' ELSE '' END, now(), pr.id, 1
FROM generate_series(1, %(events)s) AS k
JOIN registry_procedure pr ON pr.id = (SELECT min(id) FROM registry_procedure) + (k - 1) %% %(procedures)s;
SET session_replication_role = DEFAULT;
ANALYZE;
"""


def setup_database(url: str, *, events: int, procedures: int) -> str:
    """Return an API token of a registry administrator in a migrated, generated database at ``url``."""
    os.environ["DATABASE_URL"] = url
    _django()
    from django.core.management import call_command
    from django.db import connection

    from registry import services
    from registry.choices import Role
    from tests.factories import UserFactory, issue_api_token

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    patients = max(1, procedures * 5 // 7)
    sql = GENERATE_SQL.replace("%(patients)s", str(patients))
    sql = sql.replace("%(procedures)s", str(procedures)).replace("%(events)s", str(events)).replace("%%", "%")
    with connection.cursor() as cursor:
        for statement in filter(str.strip, sql.split(";\n")):
            cursor.execute(statement)
    print(
        f"generated {patients} patients, {procedures} procedures, {events} events "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    root = UserFactory(username=BENCH_USER)
    services.membership_create(user=root, role=Role.REGISTRY_ADMIN, clinic=None)
    return issue_api_token(root)


def child_export(token: str, url: str = URL) -> dict:
    """Return time, bytes and peak RSS of one export through the real view (this process)."""
    _django()
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # lets the test client's host (testserver) through ALLOWED_HOSTS
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    client.get("/api/v1/clinics/")  # warm up: imports, URLconf, first connection
    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    response = client.get(url)
    first_byte = None
    size = chunks = newlines = 0
    for chunk in response.streaming_content:
        if first_byte is None:
            first_byte = time.perf_counter() - started
        size += len(chunk)
        newlines += chunk.count(b"\n")
        chunks += 1
    seconds = time.perf_counter() - started
    from reports.exports.models import ExportLog

    log = ExportLog.objects.order_by("-pk").first()
    return {
        "status": response.status_code,
        "seconds": seconds,
        "first_byte_s": first_byte,
        "bytes": size,
        "chunks": chunks,
        "newlines": newlines,
        "logged_rows": log.row_count,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


def child_copy(token: str, *, spreadsheet_safe: bool = True) -> dict:
    """Return time, bytes and peak RSS of COPY (the export's own SELECT, or the raw one) read with psycopg."""
    _django()
    import psycopg
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from core.dates import today
    from events.selectors import adverse_events_for_user
    from reports.exports.listing import line_listing
    from reports.exports.streaming import compose_select

    user = get_user_model().objects.get(username=BENCH_USER)  # tokens are stored hashed: look the user up
    _, rows = line_listing(
        adverse_events_for_user(user),
        include_retracted=False,
        export_year=today().year,
        spreadsheet_safe=spreadsheet_safe,
    )
    select_sql = compose_select(rows)
    db = settings.DATABASES["default"]
    rss_before = _peak_rss_mb()
    with psycopg.connect(
        host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"], dbname=db["NAME"], password=db["PASSWORD"]
    ) as conn:
        started = time.perf_counter()
        size = 0
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for data in copy:
                    size += len(data)
            rows_copied = cursor.rowcount
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": size, "rows": rows_copied, "rss_before_mb": rss_before,
            "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def run_child(mode: str, url: str, token: str) -> dict:
    env = {**os.environ, "DATABASE_URL": url}
    out = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, __file__, "--child", mode, "--token", token],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--procedures", type=int, default=700_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=("export", "copy", "raw", "deidentified"), help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child == "export":
            result = child_export(args.token)
        elif args.child == "deidentified":
            result = child_export(args.token, DEIDENTIFIED_URL)
        else:
            result = child_copy(args.token, spreadsheet_safe=args.child == "copy")
        print(json.dumps(result))
        return 0

    server = os.environ.get("DATABASE_URL", DEFAULT_SERVER)
    name = f"bench_export_{os.getpid()}"
    url = _with_database(server, name)
    _admin(server, f'CREATE DATABASE "{name}"')
    try:
        token = setup_database(url, events=args.events, procedures=args.procedures)
        from django.db import connections

        connections.close_all()
        results: dict[str, list[dict]] = {"export": [], "copy": [], "raw": []}
        for round_no in range(1, args.rounds + 1):
            for mode in ("raw", "copy", "export"):
                result = run_child(mode, url, token)
                results[mode].append(result)
                print(f"round {round_no} {mode:6s} " + json.dumps(result), flush=True)
        export = min(results["export"], key=lambda r: r["seconds"])
        copy = min(results["copy"], key=lambda r: r["seconds"])
        raw = min(results["raw"], key=lambda r: r["seconds"])
        assert export["status"] == 200
        ratio = export["seconds"] / copy["seconds"]
        ratio_raw = export["seconds"] / raw["seconds"]
        peak = max(r["peak_rss_mb"] for r in results["export"])
        growth = max(r["peak_rss_mb"] - r["rss_before_mb"] for r in results["export"])
        print()
        print(f"rows: export logged {export['logged_rows']}, COPY {copy['rows']}")
        print(f"bytes: export {export['bytes']:,} (header included), COPY {copy['bytes']:,}")
        print(f"export (Django view, streamed): {export['seconds']:.2f} s, first byte {export['first_byte_s']:.3f} s")
        print(f"COPY (psycopg, same SELECT):    {copy['seconds']:.2f} s")
        print(f"COPY (psycopg, raw SELECT, no neutralising): {raw['seconds']:.2f} s, {raw['bytes']:,} bytes")
        print(f"ratio export / COPY: {ratio:.2f}x (target <= 3x)")
        print(f"ratio export / raw COPY: {ratio_raw:.2f}x (target <= 3x: neutralising included)")
        print(
            f"peak RSS of the export process: {peak:.0f} MB, of which {export['rss_before_mb']:.0f} MB before the "
            f"export (Django setup: the project's imports, scipy and matplotlib included); the export added "
            f"{growth:.1f} MB (target < 200 MB). COPY process: {copy['peak_rss_mb']:.0f} MB."
        )
        deidentified = run_child("deidentified", url, token)
        deid_growth = deidentified["peak_rss_mb"] - deidentified["rss_before_mb"]
        print(
            f"de-identified listing (Django view, streamed): {deidentified['seconds']:.2f} s, first byte "
            f"{deidentified['first_byte_s']:.2f} s, {deidentified['logged_rows']} rows, the export added "
            f"{deid_growth:.1f} MB"
        )
        ok = ratio <= 3 and ratio_raw <= 3 and growth < 200 and export["logged_rows"] == copy["rows"] == raw["rows"]
        ok = ok and deidentified["status"] == 200 and deid_growth < 200
        return 0 if ok else 1
    finally:
        from django.db import connections

        connections.close_all()
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
