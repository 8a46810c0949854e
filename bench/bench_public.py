"""Benchmark the public comparison page (issue 12) under gunicorn on loopback: warm cache, and 50 concurrent clients.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres CACHE_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/bench_public.py [--patients 360] [-n 300] [-c 50] [--per-client 20] [--workers 3]

It creates ``bench_public_<pid>``, migrates it, loads the demo registry (``load_demo_data``), computes
an incidence run of every outcome with the registry's risk windows (reports services, in process) and
publishes it (public.services.publication_create, as a registry administrator). Then it starts gunicorn
on 127.0.0.1 (the product's settings; the Dockerfile's 3 sync workers by default; the cache of
CACHE_URL, Redis when given so the workers share it) and measures, with the standard library only
(http.client, threads):

- cold: the first GET after the cache is emptied (tables built, suppression solved, page rendered);
- warm: --requests sequential GETs of the page (median, p99);
- 304: the same with If-None-Match (a client or proxy revalidating);
- concurrent: --concurrency anonymous clients at once, --per-client GETs each (median, p99, throughput).

Each request opens its own connection (a sync worker closes it after each response). The clients run
on the same machine as gunicorn, PostgreSQL and Redis; the load average is printed before and after.
gunicorn is stopped and the database dropped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"


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


def build_publication(patients: int) -> int:
    """Return the id of a publication of a fresh run over the demo registry."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from public.services import publication_create
    from registry import services
    from registry.choices import Role
    from reports.models import IncidenceRun
    from reports.services import incidence_run_execute, incidence_run_start

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("load_demo_data", patients=patients, verbosity=0)
    loaded = time.perf_counter()
    run = incidence_run_start(
        actor=None, cutoff_on=timezone.localdate(), strata=["site"], outcomes=None, windows_mode="registry"
    )
    incidence_run_execute(run_id=run.pk, task_id=f"bench-public-{run.pk}")
    run = IncidenceRun.objects.get(pk=run.pk)
    assert run.status == "succeeded", run.error
    admin = get_user_model().objects.create_user("bench-admin")
    services.membership_create(user=admin, role=Role.REGISTRY_ADMIN, clinic=None)
    publication = publication_create(actor=admin, run=run, note="Benchmark")
    print(
        f"demo registry ({patients} patients) in {loaded - started:.1f} s; run #{run.pk} "
        f"({len(run.outcomes)} outcomes, {run.provider_comparisons.count()} comparison rows) and publication "
        f"#{publication.pk} in {time.perf_counter() - loaded:.1f} s"
    )
    return publication.pk


class Gunicorn:
    """gunicorn serving the registry on 127.0.0.1, stopped (whole process group) by stop()."""

    def __init__(self, workers: int, env: dict) -> None:
        self.port = _free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--backlog",
            "256",
            "--log-level",
            "warning",
            "--worker-tmp-dir",
            "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp",  # noqa: S108 - gunicorn's heartbeat file
        ]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                get(self.port, "/public/")
                return
            except OSError:
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


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, float, dict, int]:
    """Return (status, seconds, headers, body bytes) of one GET on a new connection."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, time.perf_counter() - started, dict(response.getheaders()), len(body)
    finally:
        conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def sequential(port: int, path: str, count: int, headers: dict | None = None, expect: int = 200) -> dict:
    times, errors = [], 0
    for _ in range(count):
        status, seconds, _, _ = get(port, path, headers)
        times.append(seconds)
        errors += status != expect
    return {"requests": count, "times": times, "errors": errors, "wall": sum(times)}


def concurrent(port: int, path: str, clients: int, per_client: int) -> dict:
    times: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client() -> None:
        mine, bad = [], 0
        start.wait()
        for _ in range(per_client):
            try:
                status, seconds, _, _ = get(port, path)
                mine.append(seconds)
                bad += status != 200
            except OSError:
                bad += 1
        with lock:
            times.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return {"requests": clients * per_client, "times": times, "errors": errors[0], "wall": time.perf_counter() - began}


def row(name: str, result: dict) -> str:
    times = result["times"]
    ms = [t * 1000 for t in times]
    return (
        f"{name:<34} {result['requests']:>6} {statistics.median(ms):>9.1f} {percentile(ms, 99):>9.1f} "
        f"{max(ms):>9.1f} {len(times) / result['wall']:>9.1f} {result['errors']:>6}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=360, help="demo patients (load_demo_data's default: 360)")
    parser.add_argument("-n", "--requests", type=int, default=300, help="sequential warm GETs (default 300)")
    parser.add_argument("-c", "--concurrency", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--per-client", type=int, default=20, help="GETs per concurrent client (default 20)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (the Dockerfile's: 3)")
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL") or DEFAULT_SERVER
    database = f"bench_public_{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": _with_database(server, database),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "LOG_LEVEL": "ERROR",
        "PYTHONWARNINGS": "ignore:No directory at",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))  # run as a script from bench/: the project's packages
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    _admin(server, f'CREATE DATABASE "{database}"')
    gunicorn = None
    try:
        pk = build_publication(args.patients)
        from django.core.cache import cache
        from django.db import connections

        connections.close_all()
        cache.clear()
        path = f"/public/{pk}/"
        gunicorn = Gunicorn(args.workers, env)
        gunicorn.wait_ready(path)
        load_before = os.getloadavg()
        status, cold, headers, size = get(gunicorn.port, path)
        assert status == 200, status
        etag = headers["ETag"]
        sequential(gunicorn.port, path, 3 * args.workers)  # every worker warm (imports, templates, connection)
        results = {
            f"warm, sequential (n={args.requests})": sequential(gunicorn.port, path, args.requests),
            "304, If-None-Match, sequential": sequential(
                gunicorn.port, path, args.requests, {"If-None-Match": etag}, expect=304
            ),
            f"warm, {args.concurrency} concurrent clients": concurrent(
                gunicorn.port, path, args.concurrency, args.per_client
            ),
        }
        load_after = os.getloadavg()
        print(
            f"\nGET {path}: {size} bytes, Cache-Control {headers.get('Cache-Control')!r}, ETag {etag}; cache "
            f"{os.environ.get('CACHE_URL') or 'locmem (per worker)'}; gunicorn {args.workers} sync workers, same host"
        )
        print(f"cold (tables built, suppression solved, page rendered): {cold * 1000:.0f} ms")
        print(f"{'scenario':<34} {'reqs':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'req/s':>9} {'errors':>6}")
        for name, result in results.items():
            print(row(name, result))
        print(f"load average (1/5/15 min): before {load_before}, after {load_after}; cores: {os.cpu_count()}")
        return 1 if any(r["errors"] for r in results.values()) else 0
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        from django.db import connections

        connections.close_all()
        _admin(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
