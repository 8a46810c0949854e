"""Benchmark compare_providers and compute_signals (DESIGN.md 2b) on a large registry.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database unless --db):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/bench_epi.py --sizes 1000000 --windows registry

The registry is bench/bench_incidence.py's (about 1.5 events per procedure, 10 scheduled visits, 40
clinics), with the attributes the signal screen reads filled in: processing, carrier, guidance and
one of --lots product lots per procedure (a few procedures with none: unknown). Then, each in a fresh
process (best of --repeat, with the process's peak RSS):

- compare_providers: --group clinic, adjusted for site x cell_type x age_band x sex, every outcome;
- compute_signals: every attribute (9), every outcome but any.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_incidence import CUTOFF, _loaded, _maxrss_mb, _with_db, load_registry  # noqa: E402

ATTRIBUTES_SQL = """
UPDATE registry_procedure SET
    processing = CASE WHEN cell_type IN ('bm_msc_expanded', 'adipose_msc_expanded') THEN 'culture_expanded'
                      ELSE 'minimally_manipulated' END,
    carrier = (ARRAY['saline', 'platelet_lysate', 'hyaluronic_acid', 'plasma_lyte', 'other'])[1 + id %% 5],
    guidance = (ARRAY['ultrasound', 'fluoroscopy', 'landmark'])[1 + (id / 7) %% 3],
    product_lot = CASE WHEN id %% 97 = 0 THEN ''
                       ELSE 'LOT-' || lpad(((id::bigint * 7919) %% %(lots)s)::text, 6, '0') END
"""


def fill_attributes(url: str, lots: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no audit/version triggers for a bulk fill
        conn.execute(ATTRIBUTES_SQL, {"lots": lots})
        conn.execute("RESET session_replication_role")
        conn.execute("VACUUM (ANALYZE) registry_procedure")


def _has_lots(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT EXISTS (SELECT 1 FROM registry_procedure WHERE product_lot <> '')").fetchone()[0]


def child(command: str, repeat: int) -> dict:
    """Run in a fresh process: the engine function (best of ``repeat``), rows and peak RSS."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import datetime as dt

    import django

    django.setup()
    from reports.engine import IncidenceParams
    from reports.engine.providers import compare_providers
    from reports.engine.signals import compute_signals
    from reports.outcomes import current_windows

    baseline = _maxrss_mb()
    params = IncidenceParams.build(
        cutoff_on=dt.date.fromisoformat(CUTOFF),
        strata=(),
        windows=current_windows() if os.environ.get("BENCH_WINDOWS") == "registry" else None,
        unit=os.environ.get("BENCH_UNIT", "procedure"),
    )
    times, rows = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        if command == "providers":
            rows = compare_providers(params=params, group="clinic", adjust=["site", "cell_type", "age_band", "sex"])
        else:
            rows = compute_signals(params=params)
        times.append(time.perf_counter() - start)
    return {
        "seconds": min(times),
        "median": statistics.median(times),
        "rows": len(rows),
        "flagged": sum(1 for r in rows if r.get("flag") or r.get("signal") or r.get("evans_signal")),
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _maxrss_mb(),
    }


def _child(command: str, url: str, repeat: int, windows: str, unit: str) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "BENCH_WINDOWS": windows, "BENCH_UNIT": unit}
    out = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, __file__, "--child", command, "--repeat", str(repeat)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"the {command} child failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="Comma-separated procedure counts.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lots", type=int, default=2000, help="Distinct product lots.")
    parser.add_argument("--windows", choices=["open", "registry"], default="registry")
    parser.add_argument("--unit", choices=["procedure", "patient"], default="procedure")
    parser.add_argument("--db", default=None, help="Use (and keep) this database, loading it only when empty.")
    parser.add_argument("--child", choices=["providers", "signals"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(args.child, args.repeat)))
        return

    import psycopg

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name = args.db or f"bench_epi_{os.getpid()}"
    admin_url = _with_db(server, "postgres").replace("postgres://", "postgresql://", 1)
    bench_url = _with_db(server, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    report = []
    try:
        env = {**os.environ, "DATABASE_URL": bench_url}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)  # noqa: S603
        libpq = bench_url.replace("postgres://", "postgresql://", 1)
        for n in [int(s) for s in args.sizes.split(",")]:
            start = time.perf_counter()
            counts = _loaded(libpq) if args.db else None
            if not counts:
                counts = load_registry(libpq, n)
            if not _has_lots(libpq):
                # A database bench_incidence.py loaded has no lots, carriers, ...: fill them in (once).
                fill_attributes(libpq, args.lots)
            print(f"\n== N = {n:,}: {counts} (loaded in {time.perf_counter() - start:.1f} s)", flush=True)
            providers = _child("providers", bench_url, args.repeat, args.windows, args.unit)
            print(f"compare_providers {providers}", flush=True)
            signals = _child("signals", bench_url, args.repeat, args.windows, args.unit)
            print(f"compute_signals   {signals}", flush=True)
            report.append({"n": n, "providers": providers, "signals": signals})
    finally:
        if not args.db:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"\nwindows {args.windows}, unit {args.unit}, {args.lots} lots")
    print("| N | compare_providers s | rows | peak MB | compute_signals s | rows | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for r in report:
        p, s = r["providers"], r["signals"]
        print(
            f"| {r['n']:,} | {p['seconds']:.2f} | {p['rows']} | {p['peak_rss_mb']:.0f} | "
            f"{s['seconds']:.2f} | {s['rows']} | {s['peak_rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
