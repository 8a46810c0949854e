"""Benchmark the bounds of an incidence run: refusal time over the limit, peak worker memory under it.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database,
and starts its own redis-server on a free port as the broker):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/bench_run_limits.py --procedures 100000

It loads a registry of N procedures as bench/bench_incidence.py does, then:

- refusal: the all-eight-strata, all-outcome request (the one that took 22 GB before) is
  refused; the time of ``incidence_run_size`` (best of 3) and of the whole API POST
  (``django.test.Client``, a registry administrator) answering 400;
- largest allowed request: of every combination of the eight strata (all outcomes), the
  one whose estimated size is the largest at or under REPORTS_MAX_RESULT_ROWS;
- worker memory: a real ``celery worker -c 1`` (prefork) computes that run; its pool
  process's resident memory is read from /proc every 20 ms (VmRSS) and at the end
  (VmHWM, the kernel's own peak), next to the same process's size before the run.

Target: peak resident memory of the pool process under 300 MB (DESIGN.md 2).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_incidence import CUTOFF, _with_db, load_registry  # noqa: E402 - after the path fix

EIGHT = ["site", "cell_type", "cell_source", "clinic", "country", "sex", "age_band", "year"]


# ---------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def socket_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


class RedisServer:
    """A private redis-server (no persistence) on ``port``: a broker this script may stop and start."""

    def __init__(self, port: int, workdir: Path):
        self.port, self.workdir, self.proc = port, workdir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(  # noqa: S603 - the system's redis-server
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if socket_open(self.port):
                return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """SIGKILL the server (the broker is simply gone), ours or the one another process started on the port."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            return
        info = subprocess.run(  # noqa: S603 - the system's redis-cli
            [shutil.which("redis-cli") or "redis-cli", "-p", str(self.port), "info", "server"],
            capture_output=True,
            text=True,
        ).stdout
        pid = next((int(line.split(":")[1]) for line in info.splitlines() if line.startswith("process_id:")), None)
        if pid:
            os.kill(pid, signal.SIGKILL)
            while socket_open(self.port):
                time.sleep(0.05)


class Celery:
    """A ``celery -A config worker`` or ``beat`` subprocess in its own process group."""

    def __init__(self, kind: str, env: dict, log: Path, *extra: str):
        self.log = log
        self.handle = open(log, "w")  # noqa: SIM115 - closed in stop()
        args = [sys.executable, "-m", "celery", "-A", "config", kind, "-l", "INFO", *extra]
        self.proc = subprocess.Popen(  # noqa: S603 - this project's Celery app
            args, cwd=ROOT, env=env, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, text: str = " ready.", seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in self.log.read_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"celery did not get ready:\n{self.log.read_text()[-3000:]}")

    def children(self) -> list[int]:
        """Return the pids of the pool processes (children of the main process)."""
        found = []
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError):
                fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
                if int(fields.get("PPid", "0").strip()) == self.proc.pid:
                    found.append(int(status.parent.name))
        return found

    def kill(self) -> None:
        """SIGKILL the main process and its pool processes at once (kill -9 of both)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.handle.close()


def proc_status_kb(pid: int, field: str) -> int | None:
    """Return a /proc/<pid>/status field in kB (VmRSS, VmHWM, VmSize), None once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def worker_env(database_url: str, broker_url: str, **extra: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url, **extra}
    env["CELERY_TASK_ALWAYS_EAGER"] = "false"
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return env


@contextlib.contextmanager
def bench_database(server_url: str, prefix: str, procedures: int):
    """Yield the URL of a new, migrated database holding a registry of ``procedures`` procedures."""
    import psycopg

    name = f"{prefix}_{os.getpid()}"
    admin_url = _with_db(server_url, "postgres").replace("postgres://", "postgresql://", 1)
    url = _with_db(server_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "DATABASE_URL": url}
        env.pop("CELERY_BROKER_URL", None)
        subprocess.run(  # noqa: S603 - manage.py of this project
            [sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True
        )
        start = time.perf_counter()
        counts = load_registry(url.replace("postgres://", "postgresql://", 1), procedures)
        print(f"registry: {counts} (loaded in {time.perf_counter() - start:.1f} s)", flush=True)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_setup(database_url: str, broker_url: str = "") -> None:
    """Configure Django in this process for ``database_url`` (and publishing to ``broker_url``)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    if broker_url:
        os.environ["CELERY_BROKER_URL"] = broker_url
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    else:
        os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()


def system_load() -> str:
    """Return the load averages and the other heavy processes now (the machine is shared)."""
    load = Path("/proc/loadavg").read_text().split()[:3]
    out = subprocess.run(["ps", "-eo", "pcpu,rss,args", "--sort=-pcpu"], capture_output=True, text=True)  # noqa: S607
    busy = [line.strip()[:110] for line in out.stdout.splitlines()[1:8] if float(line.split()[0]) >= 5]
    return f"load {' '.join(load)}; busy: " + (" | ".join(busy) or "nothing else above 5% CPU")


# ---------------------------------------------------------------------------------- measures


def measure_refusal(repeat: int = 3) -> dict:
    """Return the time to refuse the all-eight-strata request: the size check alone, and the API POST."""
    from django.core.exceptions import ValidationError
    from django.test import Client

    from registry.choices import Role
    from registry.services import membership_create
    from reports.choices import OUTCOMES
    from reports.engine import IncidenceParams
    from reports.models import IncidenceRun
    from reports.services import incidence_run_size
    from tests.factories import UserFactory, issue_api_token

    params = IncidenceParams.build(cutoff_on=_cutoff(), strata=EIGHT, outcomes=OUTCOMES)
    times, message = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            incidence_run_size(params=params)
        except ValidationError as exc:
            message = exc.message_dict["strata"][0]
        times.append(time.perf_counter() - start)
    admin = UserFactory(username=f"bench-admin-{os.getpid()}")
    membership_create(user=admin, role=Role.REGISTRY_ADMIN, clinic=None)
    client = Client(HTTP_AUTHORIZATION=f"Token {issue_api_token(admin)}")
    before = IncidenceRun.objects.count()
    api_times, status = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.post(
            "/api/v1/reports/incidence-runs/",
            {"cutoff_on": CUTOFF, "strata": EIGHT},
            content_type="application/json",
        )
        api_times.append(time.perf_counter() - start)
        status = response.status_code
    return {
        "check_seconds": min(times),
        "api_seconds": min(api_times),
        "api_status": status,
        "runs_stored": IncidenceRun.objects.count() - before,
        "message": message,
    }


def _cutoff():
    import datetime as dt

    return dt.date.fromisoformat(CUTOFF)


def largest_allowed(limit: int) -> tuple[list[str], int, float]:
    """Return (strata, estimated rows, seconds spent searching): the biggest report still allowed."""
    from reports.choices import OUTCOMES
    from reports.engine import IncidenceParams, estimate_result_rows

    start = time.perf_counter()
    best: tuple[list[str], int] = ([], 0)
    for size in range(1, len(EIGHT) + 1):
        for strata in itertools.combinations(EIGHT, size):
            params = IncidenceParams.build(cutoff_on=_cutoff(), strata=strata, outcomes=OUTCOMES)
            rows = estimate_result_rows(params=params, limit=limit).rows
            if best[1] < rows <= limit:
                best = (list(strata), rows)
    return best[0], best[1], time.perf_counter() - start


def measure_worker_memory(database_url: str, broker_url: str, strata: list[str], workdir: Path) -> dict:
    """Return the pool process's memory while a real worker computes the run of ``strata``."""
    from reports.choices import RunStatus
    from reports.models import IncidenceRun
    from reports.services import incidence_run_start

    worker = Celery("worker", worker_env(database_url, broker_url), workdir / "worker.log", "-c", "1", "-P", "prefork")
    try:
        worker.wait_ready()
        time.sleep(1.0)
        (child,) = worker.children()
        idle_rss = proc_status_kb(child, "VmRSS")
        run = incidence_run_start(actor=None, cutoff_on=_cutoff(), strata=strata)
        peak_polled, status = 0, RunStatus.QUEUED
        while status in (RunStatus.QUEUED, RunStatus.RUNNING):
            rss = proc_status_kb(child, "VmRSS")
            if rss is None:
                raise RuntimeError("the pool process went away during the run")
            peak_polled = max(peak_polled, rss)
            time.sleep(0.02)
            status = IncidenceRun.objects.values_list("status", flat=True).get(pk=run.pk)
        run.refresh_from_db()
        return {
            "status": run.status,
            "error": run.error,
            "rows": run.row_count,
            "estimated_rows": run.estimated_rows,
            "seconds": run.duration_seconds,
            "idle_rss_mb": (idle_rss or 0) / 1024,
            "peak_rss_polled_mb": peak_polled / 1024,
            "peak_rss_hwm_mb": (proc_status_kb(child, "VmHWM") or 0) / 1024,
        }
    finally:
        worker.stop()


def child_main(database_url: str, broker_url: str, workdir: Path, strata_arg: str) -> dict:
    django_setup(database_url, broker_url)
    from django.conf import settings

    limit = settings.REPORTS_MAX_RESULT_ROWS
    result = {"limit": limit, "load_before": system_load()}
    result["refusal"] = measure_refusal()
    print(f"refusal: {result['refusal']}", flush=True)
    if strata_arg:
        from reports.choices import OUTCOMES
        from reports.engine import IncidenceParams, estimate_result_rows

        strata = [s for s in strata_arg.split(",") if s]
        params = IncidenceParams.build(cutoff_on=_cutoff(), strata=strata, outcomes=OUTCOMES)
        rows, searched = estimate_result_rows(params=params).rows, 0.0
    else:
        strata, rows, searched = largest_allowed(limit)
    result["largest_allowed"] = {"strata": strata, "estimated_rows": rows, "search_seconds": searched}
    print(f"largest allowed: {result['largest_allowed']}", flush=True)
    result["worker"] = measure_worker_memory(database_url, broker_url, strata, workdir)
    result["load_after"] = system_load()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procedures", type=int, default=100_000)
    parser.add_argument("--strata", default="", help="Measure this request instead of searching the largest.")
    parser.add_argument("--child", nargs=3, metavar=("DB", "BROKER", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        database_url, broker_url, workdir = args.child
        print("RESULT " + json.dumps(child_main(database_url, broker_url, Path(workdir), args.strata)), flush=True)
        return

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    with tempfile.TemporaryDirectory(prefix="bench-run-limits-") as tmp:
        workdir = Path(tmp)
        broker = RedisServer(free_port(), workdir).start()
        try:
            with bench_database(server, "bench_run_limits", args.procedures) as url:
                # A fresh process for the measurements, so this one's loading does not count anywhere.
                out = subprocess.run(  # noqa: S603 - this script
                    [sys.executable, __file__, "--strata", args.strata, "--child", url, broker.url, str(workdir)],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                )
                lines = out.stdout.splitlines()
                print("\n".join(line for line in lines if not line.startswith("RESULT ")))
                result = next((json.loads(line[7:]) for line in lines if line.startswith("RESULT ")), None)
                if result is None:
                    print(out.stderr[-5000:])
                    raise SystemExit("the measuring process failed")
        finally:
            broker.stop()
    refusal, largest, worker = result["refusal"], result["largest_allowed"], result["worker"]
    print(f"\nN = {args.procedures:,} procedures, REPORTS_MAX_RESULT_ROWS = {result['limit']:,}")
    print(f"machine before: {result['load_before']}\nmachine after:  {result['load_after']}")
    print("\n| measure | value |\n|---|---|")
    print(f"| refusal of all 8 strata x 13 outcomes: size check | {refusal['check_seconds']:.2f} s |")
    print(f"| refusal of all 8 strata: API POST | {refusal['api_status']} in {refusal['api_seconds']:.2f} s |")
    print(f"| runs stored by the refused POSTs | {refusal['runs_stored']} |")
    print(f"| largest allowed request | {' x '.join(largest['strata'])}, {largest['estimated_rows']:,} rows |")
    print(f"| its run | {worker['status']}, {worker['rows']:,} rows in {worker['seconds'] or 0:.1f} s |")
    print(f"| pool process RSS before the run | {worker['idle_rss_mb']:.0f} MB |")
    print(f"| pool process peak RSS (polled every 20 ms) | {worker['peak_rss_polled_mb']:.0f} MB |")
    print(f"| pool process peak RSS (VmHWM) | {worker['peak_rss_hwm_mb']:.0f} MB |")
    print(f"\nrefusal message: {refusal['message']}")
    if worker["error"]:
        print(f"run error: {worker['error']}")


if __name__ == "__main__":
    main()
