"""Benchmark recovery of incidence runs from a killed worker and from a broker that goes away.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database,
and runs its own redis-server on a free port as the broker, so it can kill that too):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/bench_worker_kill.py --procedures 100000

Everything runs with the product's settings (heartbeat every 30 s, stale after 120 s,
the sweep every minute from celery beat), as real processes:

- kill: ``celery beat`` and ``celery worker -c 1`` run; a run big enough to take a while
  (--strata, default site x cell type x clinic, every outcome) starts; some seconds into
  its computation the worker's main and pool processes get SIGKILL together (kill -9 of
  both: nobody hands the message back); a fresh worker starts at once. Measured: the time
  from the kill until the sweep queued the run again, and until it succeeded (target < 5 min).
- broker-down: with beat and a worker running, the broker is killed; a POST of a run (the
  real API view, token auth, with an Idempotency-Key, sent twice) is answered while it is
  down; after --down seconds the broker comes back on the same port. Measured: the POST's
  status and time, and the time from the broker's return until the run was published
  and until it succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_run_limits import (  # noqa: E402 - after the path fix
    Celery,
    RedisServer,
    _cutoff,
    bench_database,
    django_setup,
    free_port,
    system_load,
    worker_env,
)


def _poll(run_id: int, until, seconds: float, every: float = 0.5) -> dict:
    from reports.models import IncidenceRun

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = IncidenceRun.objects.values(
            "status", "attempts", "task_id", "claimed_at", "heartbeat_at", "published_at", "error", "row_count"
        ).get(pk=run_id)
        if until(row):
            return row
        time.sleep(every)
    raise TimeoutError(f"run {run_id} did not get there in {seconds} s: {row}")


def scenario_kill(database_url: str, broker: RedisServer, workdir: Path, strata: list[str], into: float) -> dict:
    from reports.choices import RunStatus
    from reports.services import incidence_run_start

    env = worker_env(database_url, broker.url)
    beat = Celery("beat", env, workdir / "beat.log", "-s", str(workdir / "beat-schedule"))
    first = Celery("worker", env, workdir / "worker-1.log", "-c", "1", "-P", "prefork", "-n", "first@%h")
    second = None
    try:
        first.wait_ready()
        beat.wait_ready("beat: Starting...")
        run = incidence_run_start(actor=None, cutoff_on=_cutoff(), strata=strata)
        row = _poll(run.pk, lambda r: r["status"] == RunStatus.RUNNING, 120, 0.1)
        time.sleep(into)
        row = _poll(run.pk, lambda r: True, 1)
        if row["status"] != RunStatus.RUNNING:
            raise RuntimeError(f"the run finished before the kill ({row['status']}): use a bigger run")
        pool = first.children()
        killed_at = time.monotonic()
        first.kill()
        print(f"killed worker main {first.proc.pid} and pool {pool} {into:.0f} s into the run", flush=True)
        second = Celery("worker", env, workdir / "worker-2.log", "-c", "1", "-P", "prefork", "-n", "second@%h")
        second.wait_ready()
        ready_after = time.monotonic() - killed_at
        row = _poll(run.pk, lambda r: r["status"] != RunStatus.RUNNING or r["attempts"] > 1, 900)
        requeued_after = time.monotonic() - killed_at
        row = _poll(run.pk, lambda r: r["status"] in (RunStatus.SUCCEEDED, RunStatus.FAILED), 1800)
        done_after = time.monotonic() - killed_at
        return {
            "strata": strata,
            "killed_into_run_s": into,
            "fresh_worker_ready_s": ready_after,
            "requeued_or_reclaimed_s": requeued_after,
            "succeeded_s": done_after,
            "status": row["status"],
            "attempts": row["attempts"],
            "rows": row["row_count"],
            "error": row["error"],
        }
    finally:
        for proc in (second, first, beat):
            if proc is not None:
                proc.stop()


def scenario_broker_down(database_url: str, broker: RedisServer, workdir: Path, down: float) -> dict:
    from django.test import Client

    from registry.choices import Role
    from registry.services import membership_create
    from reports.choices import RunStatus
    from reports.models import IncidenceRun
    from tests.factories import UserFactory, issue_api_token

    admin = UserFactory(username=f"bench-broker-{os.getpid()}")
    membership_create(user=admin, role=Role.REGISTRY_ADMIN, clinic=None)
    client = Client(HTTP_AUTHORIZATION=f"Token {issue_api_token(admin)}")
    env = worker_env(database_url, broker.url)
    beat = Celery("beat", env, workdir / "beat-2.log", "-s", str(workdir / "beat-schedule-2"))
    worker = Celery("worker", env, workdir / "worker-3.log", "-c", "1", "-P", "prefork", "-n", "third@%h")
    try:
        worker.wait_ready()
        beat.wait_ready("beat: Starting...")
        broker.stop()
        body = {"cutoff_on": _cutoff().isoformat(), "strata": ["site"], "outcomes": ["any", "infection"]}
        posts = []
        for _ in range(2):  # the client retries with the same key, not knowing if the first one arrived
            start = time.monotonic()
            response = client.post(
                "/api/v1/reports/incidence-runs/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="bench-1"
            )
            posts.append((response.status_code, time.monotonic() - start, response.json().get("id")))
        run_id = posts[0][2]
        stored = IncidenceRun.objects.filter(requested_by=admin).count()
        row = _poll(run_id, lambda r: True, 1)
        queued_unpublished = row["status"] == RunStatus.QUEUED and row["published_at"] is None
        time.sleep(down)
        broker.proc = None  # the parent's server was killed above; this process starts the next one
        broker.start()
        back = time.monotonic()
        print(f"broker back after {down:.0f} s down", flush=True)
        row = _poll(run_id, lambda r: r["published_at"] is not None or r["status"] != RunStatus.QUEUED, 600, 0.2)
        published_after = time.monotonic() - back
        row = _poll(run_id, lambda r: r["status"] in (RunStatus.SUCCEEDED, RunStatus.FAILED), 600, 0.2)
        return {
            "posts": posts,
            "runs_stored": stored,
            "queued_unpublished_while_down": queued_unpublished,
            "down_s": down,
            "published_after_return_s": published_after,
            "succeeded_after_return_s": time.monotonic() - back,
            "status": row["status"],
            "attempts": row["attempts"],
        }
    finally:
        worker.stop()
        beat.stop()


def child_main(args, database_url: str, broker_url: str, workdir: Path) -> dict:
    django_setup(database_url, broker_url)
    port = int(broker_url.rsplit(":", 1)[1].split("/")[0])
    broker = RedisServer(port, workdir)  # started by the parent: this process stops and restarts it
    result = {"load_before": system_load()}
    if args.scenario in ("kill", "both"):
        strata = [s for s in args.strata.split(",") if s]
        result["kill"] = scenario_kill(database_url, broker, workdir, strata, args.into)
        print(f"kill: {result['kill']}", flush=True)
    if args.scenario in ("broker-down", "both"):
        result["broker_down"] = scenario_broker_down(database_url, broker, workdir, args.down)
        print(f"broker-down: {result['broker_down']}", flush=True)
    result["load_after"] = system_load()
    broker.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procedures", type=int, default=100_000)
    parser.add_argument("--strata", default="site,cell_type,clinic", help="The run to kill (every outcome).")
    parser.add_argument("--into", type=float, default=10.0, help="Seconds into the computation to kill it.")
    parser.add_argument("--down", type=float, default=30.0, help="Seconds the broker stays down.")
    parser.add_argument("--scenario", choices=["kill", "broker-down", "both"], default="both")
    parser.add_argument("--child", nargs=3, metavar=("DB", "BROKER", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        database_url, broker_url, workdir = args.child
        print("RESULT " + json.dumps(child_main(args, database_url, broker_url, Path(workdir)), default=str))
        return

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    with tempfile.TemporaryDirectory(prefix="bench-worker-kill-") as tmp:
        workdir = Path(tmp)
        broker = RedisServer(free_port(), workdir).start()
        try:
            with bench_database(server, "bench_worker_kill", args.procedures) as url:
                command = [sys.executable, __file__, "--child", url, broker.url, str(workdir)]
                command += ["--scenario", args.scenario, "--strata", args.strata]
                command += ["--into", str(args.into), "--down", str(args.down)]
                out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)  # noqa: S603 - this script
                lines = out.stdout.splitlines()
                print("\n".join(line for line in lines if not line.startswith("RESULT ")))
                result = next((json.loads(line[7:]) for line in lines if line.startswith("RESULT ")), None)
                if result is None:
                    print(out.stderr[-5000:])
                    for log in sorted(workdir.glob("*.log")):
                        print(f"--- {log.name}\n{log.read_text()[-3000:]}")
                    raise SystemExit("the measuring process failed")
        finally:
            broker.stop()
            # The measuring process restarts the broker itself: stop whatever still listens on its port.
            broker.proc = None
            broker.stop()

    print(f"\nN = {args.procedures:,} procedures\nmachine before: {result['load_before']}")
    print(f"machine after:  {result['load_after']}")
    print("\n| measure | value |\n|---|---|")
    if "kill" in result:
        k = result["kill"]
        print(
            f"| run killed (kill -9 of worker main and pool process) | {' x '.join(k['strata'])}, "
            f"{k['killed_into_run_s']:.0f} s into the computation |"
        )
        print(f"| fresh worker ready after the kill | {k['fresh_worker_ready_s']:.0f} s |")
        print(f"| run queued again by the sweep, after the kill | {k['requeued_or_reclaimed_s']:.0f} s |")
        print(
            f"| run succeeded, after the kill (target < 300 s) | {k['succeeded_s']:.0f} s "
            f"({k['status']}, attempt {k['attempts']}, {k['rows']:,} rows) |"
        )
    if "broker_down" in result:
        b = result["broker_down"]
        posts = ", ".join(f"{status} in {seconds:.2f} s" for status, seconds, _ in b["posts"])
        print(f"| POST, broker down (one Idempotency-Key, twice) | {posts}; {b['runs_stored']} run stored |")
        print(f"| run while the broker is down | queued, published_at empty: {b['queued_unpublished_while_down']} |")
        print(
            f"| published, after the broker came back ({b['down_s']:.0f} s down) | "
            f"{b['published_after_return_s']:.0f} s |"
        )
        print(f"| succeeded, after the broker came back | {b['succeeded_after_return_s']:.0f} s ({b['status']}) |")


if __name__ == "__main__":
    main()
