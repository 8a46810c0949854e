"""Benchmark a PostgreSQL crash under API write load: lost writes, status codes and log lines.

Usage (needs Debian's PostgreSQL binaries, /usr/lib/postgresql/15/bin by default; nothing else):

    .venv/bin/python bench/bench_pg_outage.py [--clients 8] [--before 5] [--outage 5] [--after 5]

It starts a throwaway PostgreSQL (initdb into a temporary folder, a free loopback port; as the
``postgres`` user when run as root, which initdb refuses), migrates the registry into it, seeds a
clinic and a clinician with an API token, and serves the registry with gunicorn (the Dockerfile's
3 sync workers, DEBUG off, the product's logging at INFO) on another loopback port. Then:

1. --clients threads create patients (``POST /api/v1/patients/``, token, one Idempotency-Key per
   patient; a refused or failed POST is retried with the same key after 0.1 s, as a client would);
2. after --before seconds the postmaster gets SIGKILL (kill -9), and the clients keep sending for
   --outage seconds;
3. PostgreSQL is started again on the same data (crash recovery) and port, and the load goes on for
   --after seconds.

Measured: every 201's patient must exist after the restart (acknowledged writes lost, target 0);
patients created twice for one key (target 0); the status codes seen before, during and after the
outage (target: 503 with Retry-After during it, never 500); and the server's log lines per failed
request (target 1, and no traceback). Everything stays on 127.0.0.1; gunicorn and PostgreSQL are
stopped and the folder removed at the end, also on failure or Ctrl-C. Exit status 1 when a target
is missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
DATABASE = "registry"
PATIENTS = "/api/v1/patients/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1, whose postmaster this object starts and kills."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.log = folder / "postgres.log"
        self.process: subprocess.Popen | None = None
        # initdb and postgres refuse to run as root.
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(folder, self.user)

    def _run(self, *command: str) -> None:
        subprocess.run(command, check=True, user=self.user, capture_output=True)  # noqa: S603

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")  # fmt: skip

    def start(self, timeout: float = 30.0) -> float:
        """Start the postmaster and return the seconds until it accepts connections."""
        started = time.monotonic()
        while True:
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(  # noqa: S603
                    [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                     "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
                     "-c", "max_connections=50"],
                    user=self.user, stdout=log, stderr=log, start_new_session=True,
                )  # fmt: skip
            while time.monotonic() - started < timeout and self.process.poll() is None:
                if self.ready():
                    return time.monotonic() - started
                time.sleep(0.05)
            if time.monotonic() - started >= timeout:
                raise RuntimeError(f"PostgreSQL did not start; see {self.log}")
            # Backends orphaned by a killed postmaster may still hold the old shared memory for a moment.
            time.sleep(0.2)

    def ready(self) -> bool:
        result = subprocess.run(  # noqa: S603
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"], capture_output=True
        )
        return result.returncode == 0

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def url(self, database: str = DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


def migrate_and_seed() -> str:
    """Return the API token of a clinician in a freshly migrated registry."""
    import django

    django.setup()
    import uuid

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from knox.models import get_token_model

    from registry import services
    from registry.choices import Role
    from registry.models import Clinic

    call_command("migrate", verbosity=0)
    clinic = services.clinic_save(actor=None, clinic=Clinic(code="BENCH-01", name="Bench clinic", country="ES"))
    user = get_user_model().objects.create_user("bench-clinician", password=uuid.uuid4().hex)
    services.membership_create(user=user, role=Role.CLINICIAN, clinic=clinic)
    _instance, token = get_token_model().objects.create(user=user)  # knox: only the digest is stored
    connections.close_all()
    return token


class Gunicorn:
    """gunicorn serving the registry on 127.0.0.1 (the Dockerfile's workers), logging to a file."""

    def __init__(self, env: dict, log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", "3", "--log-level", "warning", "--worker-tmp-dir", "/dev/shm"],  # noqa: S108
                cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        import urllib3

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log}")
            try:
                urllib3.request("GET", f"http://127.0.0.1:{self.port}/api/v1/", timeout=2, retries=False)
                return
            except urllib3.exceptions.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Load:
    """Client threads creating patients, each retrying its Idempotency-Key until it gets a 201."""

    def __init__(self, port: int, token: str, clients: int) -> None:
        self.port = port
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.clients = clients
        self.phase = "before"
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.statuses: dict[str, Counter] = {"before": Counter(), "outage": Counter(), "after": Counter()}
        self.retry_after: Counter = Counter()
        self.acknowledged: dict[str, str] = {}  # Idempotency-Key -> registry id of the 201
        self.failed_at: list[float] = []  # monotonic time of every non-2xx answer
        self.keys = itertools.count(1)
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _client(self, number: int) -> None:
        import urllib3

        pool = urllib3.HTTPConnectionPool("127.0.0.1", self.port, maxsize=1, retries=False, timeout=30)
        key = None
        while not self.stopping.is_set():
            if key is None:
                key = f"outage-{number}-{next(self.keys)}"
            body = json.dumps({"sex": "F", "birth_year": 1970, "enrolled_on": "2024-01-02"}).encode()
            try:
                response = pool.request("POST", PATIENTS, body=body, headers={**self.headers, "Idempotency-Key": key})
                status = str(response.status)
            except urllib3.exceptions.HTTPError as exc:
                response, status = None, type(exc).__name__
            with self.lock:
                self.statuses[self.phase][status] += 1  # the phase when the answer came
                if response is not None and response.status == 201:
                    self.acknowledged[key] = json.loads(response.data)["registry_id"]
                else:
                    self.failed_at.append(time.monotonic())
                    if response is not None and response.status == 503:
                        self.retry_after[response.headers.get("Retry-After")] += 1
            if response is not None and response.status == 201:
                key = None
            else:
                time.sleep(0.1)  # then the same key again


def verify(url: str, load: Load) -> dict:
    """Return what the restarted database holds of the acknowledged writes."""
    import psycopg

    acknowledged = set(load.acknowledged.values())
    with psycopg.connect(url) as conn:
        query = "SELECT registry_id FROM registry_patient WHERE registry_id = ANY(%s)"
        rows = conn.execute(query, [sorted(acknowledged)])
        found = {row[0] for row in rows}
        patients = conn.execute("SELECT count(*) FROM registry_patient").fetchone()[0]
        keys = conn.execute("SELECT count(*) FROM registry_idempotencyrecord WHERE status_code = 201").fetchone()[0]
    return {"acknowledged": len(acknowledged), "lost": len(acknowledged - found), "patients": patients, "keys": keys}


def log_lines(log: Path, offset: int) -> list[str]:
    with log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace").splitlines()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of load before the kill")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds of load while PostgreSQL is down")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of load after the restart")
    args = parser.parse_args()

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    folder = Path(tempfile.mkdtemp(prefix="bench_pg_outage_"))
    postgres = Postgres(folder)
    gunicorn = None
    load = None
    try:
        postgres.init()
        postgres.start()
        import psycopg

        with psycopg.connect(postgres.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        env = {
            **os.environ,
            "DATABASE_URL": postgres.url(),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_ENV": "development",
            "DEBUG": "false",
            "LOG_LEVEL": "INFO",
            "API_USER_RATE": "1000000/minute",
            "CELERY_BROKER_URL": "",
            "CACHE_URL": "",
            "PYTHONWARNINGS": "ignore:No directory at",
            "PYTHONPATH": str(ROOT),
        }
        os.environ.update(env)
        token = migrate_and_seed()
        server_log = folder / "gunicorn.log"
        gunicorn = Gunicorn(env, server_log)
        gunicorn.wait_ready()
        print(
            f"PostgreSQL 15 on 127.0.0.1:{postgres.port}, gunicorn (3 sync workers) on 127.0.0.1:{gunicorn.port}; "
            f"{args.clients} clients POST {PATIENTS} with Idempotency-Key; {os.cpu_count()} CPUs"
        )
        load = Load(gunicorn.port, token, args.clients)
        load.start()
        time.sleep(args.before)

        log_offset = server_log.stat().st_size
        failed_before = len(load.failed_at)
        load.phase = "outage"
        killed = time.monotonic()
        postgres.kill9()
        print(f"kill -9 of the postmaster (pid {postgres.process.pid}) after {args.before:.0f} s of load")
        time.sleep(args.outage)
        restart_seconds = postgres.start()
        load.phase = "after"
        back = time.monotonic()
        print(f"PostgreSQL restarted after {back - killed:.1f} s (crash recovery and start: {restart_seconds:.1f} s)")
        time.sleep(args.after)
        load.stop()

        lines = log_lines(server_log, log_offset)
        failed = len(load.failed_at) - failed_before
        result = verify(postgres.url(), load)
        print(f"\n{'phase':<8} status codes (count)")
        for phase, counter in load.statuses.items():
            print(f"{phase:<8} " + ", ".join(f"{status}: {count}" for status, count in sorted(counter.items())))
        print(f"Retry-After on the 503s: {dict(load.retry_after)}")
        tracebacks = sum("Traceback" in line for line in lines)
        print(
            f"server log from the kill on: {len(lines)} lines for {failed} failed requests "
            f"({len(lines) / failed if failed else 0:.2f} lines each), {tracebacks} tracebacks"
        )
        for line in lines[:3]:
            print(f"    {line[:200]}")
        duplicates = result["patients"] - result["keys"]
        print(
            f"acknowledged writes (201): {result['acknowledged']}; lost after the restart: {result['lost']}; "
            f"patients in the database: {result['patients']}, keys that created one: {result['keys']} "
            f"(patients created twice for a key: {duplicates})"
        )
        during = load.statuses["outage"]
        server_errors = sum(count for status, count in during.items() if status.isdigit() and status != "503"
                            and int(status) >= 500)  # fmt: skip
        misses = [
            name
            for name, missed in (
                ("acknowledged writes lost", result["lost"] > 0),
                ("duplicates", duplicates != 0),
                ("5xx other than 503 during the outage", server_errors > 0),
                ("no 503 during the outage", during["503"] == 0),
                ("more than one log line per failed request", failed and len(lines) > failed),
                ("tracebacks in the log", tracebacks > 0),
            )
            if missed
        ]
        print("targets met" if not misses else f"targets missed: {', '.join(misses)}")
        return 1 if misses else 0
    finally:
        if load is not None:
            load.stop()
        if gunicorn is not None:
            gunicorn.stop()
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)
        print(f"stopped gunicorn and PostgreSQL, removed {folder}")


if __name__ == "__main__":
    sys.exit(main())
