"""Benchmark adverse-event POSTs through the API against a plain Django view, under gunicorn on loopback.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_api.py \\
        [-n 3000] [-c 16] [--workers 3] [--worker-class sync|gthread] [--threads 2] [--conn-max-age 0] \\
        [--rounds 3] [--profile N]

It creates ``bench_api_<pid>``, migrates it, seeds one clinic, one patient, a few
procedures and a clinician with an API token, starts gunicorn on 127.0.0.1 (settings
bench/bench_settings.py: the product's, plus the baseline view of bench/bench_urls.py
and API_USER_RATE=1000000/minute so the throttle never answers 429) with the Dockerfile's
worker setup by default (3 sync workers; a sync worker closes the connection after each
response), and measures with ``--concurrency`` client threads (urllib3, one connection
each, kept alive when the worker class allows):

- baseline: POST /bench/adverse-events/, a Django view inserting the same row with
  no DRF, authentication, permission, validation or idempotency (the framework's limit);
- api: POST /api/v1/adverse-events/ with a token (scoping, validation, full_clean, audit);
- api + key: the same with a fresh Idempotency-Key on every request.

Each scenario is warmed up, then the scenarios take turns for --rounds rounds (so a busy
spell of the machine hits them alike), --requests POSTs each in all (or --max-seconds per
round). It reports throughput, p50 and p99 latency and errors per scenario, and the API's
throughput as a share of the baseline's (target: at least 50 %). The clients run on the
same machine as gunicorn and PostgreSQL. gunicorn is stopped and the database dropped at
the end, also on failure or Ctrl-C; the exit status is 1 if any request failed.

--profile N additionally profiles N API POSTs in this process (cProfile, Django's test
client, same database) and prints the functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import os
import pstats
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
API_PATH = "/api/v1/adverse-events/"
BASELINE_PATH = "/bench/adverse-events/"
PROCEDURES = 16


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def migrate_and_seed() -> dict:
    """Return the token and procedure ids of a freshly migrated and seeded database."""
    import django

    django.setup()
    import datetime as dt

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from knox.models import get_token_model

    from registry import services
    from registry.choices import Role
    from registry.models import Clinic, Patient, Procedure

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    clinic = services.clinic_save(actor=None, clinic=Clinic(code="BENCH-01", name="Bench clinic", country="ES"))
    patient = services.patient_save(
        actor=None, patient=Patient(clinic=clinic, sex="F", birth_year=1970, enrolled_on=dt.date(2024, 1, 2))
    )
    procedures = [
        services.procedure_save(
            actor=None,
            procedure=Procedure(
                patient=patient,
                clinic=clinic,
                performed_on=dt.date(2024, 1, 15),
                site="knee",
                laterality="left",
                cell_source="autologous",
                cell_type="bmac",
            ),
        )
        for _ in range(PROCEDURES)
    ]
    user = get_user_model().objects.create_user("bench-clinician", password=uuid.uuid4().hex)
    services.membership_create(user=user, role=Role.CLINICIAN, clinic=clinic)
    _instance, token = get_token_model().objects.create(user=user)  # knox: only its digest is stored
    print(f"migrated and seeded in {time.perf_counter() - started:.1f} s")
    return {"token": token, "procedures": [p.external_id for p in procedures]}


def event_body(procedure_id: str, i: int) -> bytes:
    return json.dumps(
        {
            "procedure": procedure_id,
            "category": "injection_site_reaction",
            "term": f"Knee pain at injection site #{i}",
            "onset_on": "2024-01-16",
            "grade": 1,
            "outcome": "recovered",
        }
    ).encode()


class Gunicorn:
    """gunicorn serving the registry on 127.0.0.1, stopped (whole process group) by stop()."""

    def __init__(self, args, env: dict) -> None:
        self.port = _free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--keep-alive",
            "30",
            "--backlog",
            "256",
            "--log-level",
            "warning",
            "--worker-tmp-dir",
            "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp",  # noqa: S108 - gunicorn's heartbeat file
        ]
        self.config = f"{args.workers} {args.worker_class} workers" + (
            f" x {args.threads} threads" if args.worker_class == "gthread" else ""
        )
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603

    def wait_ready(self, timeout: float = 30.0) -> None:
        import urllib3

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                urllib3.request("GET", f"http://127.0.0.1:{self.port}/api/v1/", timeout=2, retries=False)
                return
            except urllib3.exceptions.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer in time")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def run_scenario(port: int, path: str, headers: dict, procedures: list[str], *, requests: int, concurrency: int,
                 max_seconds: float, idempotency_key: bool) -> dict:  # fmt: skip
    """Return the latencies (s) and errors of ``requests`` POSTs to ``path`` from ``concurrency`` threads."""
    import urllib3

    counter = itertools.count()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, block=True, retries=False, timeout=30)
        mine: list[float] = []
        while True:
            i = next(counter)
            if i >= requests or time.monotonic() > deadline:
                break
            sent = dict(headers)
            if idempotency_key:
                sent["Idempotency-Key"] = f"bench-{uuid.uuid4().hex}"
            body = event_body(procedures[i % len(procedures)], i)
            started = time.perf_counter()
            try:
                response = pool.request("POST", path, body=body, headers=sent)
            except urllib3.exceptions.HTTPError as exc:
                with lock:
                    errors.append(type(exc).__name__)
                continue
            elapsed = time.perf_counter() - started
            if response.status != 201:
                with lock:
                    errors.append(f"{response.status} {response.data[:200]!r}")
                continue
            mine.append(elapsed)
        pool.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "wall": wall}


def combine(parts: list[dict]) -> dict:
    """Return one scenario's totals over its rounds: throughput, p50 and p99 latency (ms), errors."""
    latencies = sorted(latency for part in parts for latency in part["latencies"])
    wall = sum(part["wall"] for part in parts)

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "ok": len(latencies),
        "errors": [error for part in parts for error in part["errors"]],
        "rps": len(latencies) / wall if wall else 0.0,
        "p50": percentile(0.50),
        "p99": percentile(0.99),
        "rounds": [len(part["latencies"]) / part["wall"] for part in parts if part["wall"]],
    }


def profile_api(count: int, seeded: dict) -> None:
    """Print where the time of ``count`` API POSTs goes, in this process (cProfile, Django's test client)."""
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    connections.close_all()
    setup_test_environment()  # lets the test client run under ALLOWED_HOSTS and without CSRF
    client = Client(HTTP_AUTHORIZATION=f"Token {seeded['token']}")
    for i in range(20):  # warm-up: imports, URL resolver, first connection
        client.post(API_PATH, event_body(seeded["procedures"][0], i), content_type="application/json")
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for i in range(count):
        response = client.post(
            API_PATH, event_body(seeded["procedures"][i % PROCEDURES], i), content_type="application/json"
        )
        assert response.status_code == 201, response.content
    profiler.disable()
    elapsed = time.perf_counter() - started
    with CaptureQueriesContext(connection) as queries:
        client.post(API_PATH, event_body(seeded["procedures"][0], count), content_type="application/json")
    print(f"\nprofile: {count} API POSTs in-process in {elapsed:.1f} s ({elapsed / count * 1000:.2f} ms each)")
    print(f"{len(queries.captured_queries)} SQL statements per POST:")
    for query in queries.captured_queries:
        print(f"    {query['sql'][:110]}")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--requests", type=int, default=3000, help="POSTs per scenario (default 3000)")
    parser.add_argument("-c", "--concurrency", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--max-seconds", type=float, default=90.0, help="time limit of a scenario's round")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured POSTs per scenario first")
    parser.add_argument("--rounds", type=int, default=3, help="scenarios take turns in this many rounds")
    # The Dockerfile's gunicorn: 3 sync workers.
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument("--conn-max-age", type=int, default=0, help="CONN_MAX_AGE for the server (product: 0)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also cProfile N API POSTs in-process")
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL") or DEFAULT_SERVER
    database = f"bench_api_{os.getpid()}"
    url = _with_database(server, database)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "API_USER_RATE": "1000000/minute",
        "BENCH_CONN_MAX_AGE": str(args.conn_max_age),
        "DEBUG": "false",
        # Errors (a 500) still show; the readiness probe's 401s and per-request warnings do not.
        "LOG_LEVEL": "ERROR",
        "PYTHONWARNINGS": "ignore:No directory at",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)

    # Ctrl-C and a plain kill both unwind through the finally below (gunicorn stopped, database dropped).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    _admin(server, f'CREATE DATABASE "{database}"')
    gunicorn = None
    try:
        seeded = migrate_and_seed()
        from django.db import connections

        connections.close_all()
        gunicorn = Gunicorn(args, env)
        gunicorn.wait_ready()
        api_headers = {"Authorization": f"Token {seeded['token']}", "Content-Type": "application/json"}
        scenarios = [
            ("baseline (plain Django view)", BASELINE_PATH, {"Content-Type": "application/json"}, False),
            ("api", API_PATH, api_headers, False),
            ("api + Idempotency-Key", API_PATH, api_headers, True),
        ]
        keep_alive = "keep-alive" if args.worker_class == "gthread" else "a sync worker closes each connection"
        print(
            f"gunicorn on 127.0.0.1:{gunicorn.port}: {gunicorn.config}, CONN_MAX_AGE={args.conn_max_age}; "
            f"{args.concurrency} client threads (urllib3, {keep_alive}), {args.requests} POSTs per scenario "
            f"after {args.warmup} warm-up POSTs; {os.cpu_count()} CPUs shared by clients and server"
        )
        for _name, path, headers, key in scenarios:
            common = {"concurrency": args.concurrency, "max_seconds": args.max_seconds, "idempotency_key": key}
            run_scenario(gunicorn.port, path, headers, seeded["procedures"], requests=args.warmup, **common)
        # The scenarios take turns, round after round, so a slow spell of the machine hits all of them alike.
        rounds: dict[str, list[dict]] = {name: [] for name, *_ in scenarios}
        for _round in range(args.rounds):
            for name, path, headers, key in scenarios:
                common = {"concurrency": args.concurrency, "max_seconds": args.max_seconds, "idempotency_key": key}
                share = args.requests // args.rounds
                rounds[name].append(
                    run_scenario(gunicorn.port, path, headers, seeded["procedures"], requests=share, **common)
                )
        results = {name: combine(parts) for name, parts in rounds.items()}
        print(f"\n{'scenario':<30} {'ok':>6} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for name, r in results.items():
            per_round = " / ".join(f"{rps:.0f}" for rps in r["rounds"])
            print(
                f"{name:<30} {r['ok']:>6} {len(r['errors']):>6} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p99']:>8.1f}"
                f"   (req/s by round: {per_round})"
            )
        baseline = results[scenarios[0][0]]["rps"]
        for name in (scenarios[1][0], scenarios[2][0]):
            share = results[name]["rps"] / baseline if baseline else float("nan")
            verdict = "meets" if share >= 0.5 else "misses"
            print(f"{name} / baseline throughput: {share:.0%} ({verdict} the 50 % target)")
        for name, r in results.items():
            if r["errors"]:
                print(f"{name}: first errors: {r['errors'][:3]}")
        failed = any(r["errors"] for r in results.values())
        if args.profile:
            gunicorn.stop()
            profile_api(args.profile, seeded)
        return 1 if failed else 0
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: S110 - Django may not be set up yet; the drop below must still run
            pass
        _admin(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        print(f"dropped database {database}")


if __name__ == "__main__":
    sys.exit(main())
