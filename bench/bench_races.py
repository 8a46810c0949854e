"""Race the API's writes with 16 concurrent clients under gunicorn on loopback, and print the race table.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_races.py \\
        [-c 16] [--rounds 5] [--workers 4] [--worker-class gthread] [--threads 4]

It creates ``bench_races_<pid>``, migrates it, seeds a clinic, a patient and a clinician
with an API token (knox), and starts gunicorn on 127.0.0.1 as bench/bench_api.py does
(its Gunicorn class), by default with 4 gthread workers x 4 threads, so that all 16
requests of a race are handled at the same time, each on its own database connection.

Each race is run for --rounds rounds on a fresh target: --clients client threads
(urllib3, one connection each) wait at a threading.Barrier and send the same request at
the same instant. The races are the API's exactly-once promises:

- the same POST with the same Idempotency-Key: one write, every other answer a replay of it;
- the same POST without a key but with the same id: one write, every other answer a 400 on the id;
- the same retraction: one write, every other answer a 400;
- PATCHes sent with the same If-Match: one 200, every other answer a 412, the version up by one.

The table shows, per race, the answers (first writes, replays, 4xx by status, anything
else), and the rows the database holds afterwards (created, or changed for PATCH and
retract) per round. The exit status is 1 if any round broke its promise (or a request
failed), so the table says "exactly once" only when every round held.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_api import DEFAULT_SERVER, Gunicorn, _admin, _with_database  # noqa: E402 - after sys.path

PERFORMED_ON = dt.date(2024, 1, 15)


@dataclass
class Answer:
    """One client's answer: status, whether it was a replay, the fields its errors name, its body."""

    status: int
    replayed: bool
    attrs: frozenset[str]
    body: dict | list | None


@dataclass
class Shot:
    """One round of a race: what every client sends, and how to count what the database holds afterwards."""

    method: str
    path: str
    body: Callable[[int], dict]  # client number -> JSON body
    headers: dict[str, str] = field(default_factory=dict)
    rows: Callable[[], int] = lambda: 0  # rows created (or changed) by the round, read after it


@dataclass
class Race:
    name: str
    kind: str  # "key": one write and replays; "conflict": one write and 4xx; "if-match": one 200 and 412s
    refused: int  # the status of every loser (kind conflict and if-match)
    loser_attr: str | None  # the field every loser's error names, when there is one
    shoot: Callable[[int], Shot]  # round number -> the round's shot


def fire(port: int, token: str, shot: Shot, clients: int) -> list[Answer]:
    """Return the answers of ``clients`` threads sending ``shot`` at the same instant."""
    import urllib3

    barrier = threading.Barrier(clients, timeout=60)
    answers: list[Answer | None] = [None] * clients

    def client(i: int) -> None:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, block=True, retries=False, timeout=60)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", **shot.headers}
        body = json.dumps(shot.body(i)).encode()
        pool.urlopen("GET", "/api/v1/", headers={"Authorization": f"Token {token}"})  # connect before the barrier
        barrier.wait()
        try:
            response = pool.request(shot.method, shot.path, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            answers[i] = Answer(0, False, frozenset(), {"error": type(exc).__name__})
            return
        finally:
            pool.close()
        try:
            data = json.loads(response.data) if response.data else None
        except ValueError:
            data = {"raw": response.data[:200].decode(errors="replace")}
        errors = data.get("errors", []) if isinstance(data, dict) else []
        attrs = frozenset(e.get("attr") or "" for e in errors if isinstance(e, dict))
        answers[i] = Answer(response.status, response.headers.get("Idempotent-Replayed") == "true", attrs, data)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [a for a in answers if a is not None]


def judge(race: Race, answers: list[Answer], rows: int, clients: int) -> list[str]:
    """Return what broke the race's promise in one round (empty: it held)."""
    problems = []
    if len(answers) != clients:
        problems.append(f"{clients - len(answers)} clients got no answer")
    if rows != 1:
        problems.append(f"{rows} rows created or changed, not 1")
    if race.kind == "key":
        firsts = [a for a in answers if 200 <= a.status < 300 and not a.replayed]
        replays = [a for a in answers if 200 <= a.status < 300 and a.replayed]
        if len(firsts) != 1 or len(replays) != clients - 1:
            problems.append(f"{len(firsts)} first answers and {len(replays)} replays")
        ids = {a.body.get("id") for a in firsts + replays if isinstance(a.body, dict)}
        if len(ids) != 1:
            problems.append(f"the answers name {len(ids)} different rows")
    else:
        wins = [a for a in answers if 200 <= a.status < 300]
        losses = [a for a in answers if a.status == race.refused]
        if len(wins) != 1 or len(losses) != clients - 1:
            problems.append(f"{len(wins)} x 2xx and {len(losses)} x {race.refused}")
        if race.loser_attr and any(a.attrs != {race.loser_attr} for a in losses):
            problems.append(f"a {race.refused} names {sorted(set().union(*(a.attrs for a in losses)))}")
    return problems


def seed() -> dict:
    """Return the seeded clinic, patient, procedure factory and the clinician's token."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from knox.models import get_token_model

    from registry import services
    from registry.choices import Role
    from registry.models import Clinic, Patient

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    clinic = services.clinic_save(actor=None, clinic=Clinic(code="RACE-01", name="Race clinic", country="ES"))
    patient = services.patient_save(
        actor=None, patient=Patient(clinic=clinic, sex="F", birth_year=1970, enrolled_on=dt.date(2024, 1, 2))
    )
    user = get_user_model().objects.create_user("race-clinician", password=uuid.uuid4().hex)
    services.membership_create(user=user, role=Role.CLINICIAN, clinic=clinic)
    _instance, token = get_token_model().objects.create(user=user)
    print(f"migrated and seeded in {time.perf_counter() - started:.1f} s")
    return {"clinic": clinic, "patient": patient, "token": token}


def races(seeded: dict) -> list[Race]:
    """Return the races, each making its own fresh target per round."""
    from events import services as event_services
    from events.models import AdverseEvent
    from registry import services
    from registry.models import FollowUpVisit, Patient, Procedure

    clinic, patient = seeded["clinic"], seeded["patient"]

    def procedure() -> Procedure:
        return services.procedure_save(
            actor=None,
            procedure=Procedure(
                patient=patient,
                clinic=clinic,
                performed_on=PERFORMED_ON,
                site="knee",
                laterality="left",
                cell_source="autologous",
                cell_type="bmac",
            ),
        )

    def event() -> AdverseEvent:
        return event_services.adverse_event_save(
            actor=None,
            event=AdverseEvent(
                procedure=procedure(),
                category="injection_site_reaction",
                term="Knee pain",
                onset_on=PERFORMED_ON + dt.timedelta(days=1),
                grade=1,
                outcome="recovered",
            ),
        )

    def event_body(procedure_id: str, term: str, **more) -> dict:
        return {
            "procedure": procedure_id,
            "category": "infection",
            "term": term,
            "onset_on": "2024-01-16",
            "grade": 3,
            "serious": True,
            "serious_hospitalisation": True,
            "outcome": "recovering",
            **more,
        }

    def procedure_body(procedure_id: str) -> dict:
        return {
            "procedure_id": procedure_id,
            "patient": patient.registry_id,
            "performed_on": "2024-02-01",
            "site": "hip",
            "laterality": "right",
            "cell_source": "autologous",
            "cell_type": "adipose_svf",
        }

    def scheduled(procedure_id: str) -> int:
        # A created procedure counts once, and only with its full ten-visit schedule.
        found = Procedure.objects.filter(external_id=procedure_id)
        visits = FollowUpVisit.objects.filter(procedure__external_id=procedure_id).count()
        return found.count() if visits == 10 * found.count() else -1

    def ae_key(n: int) -> Shot:
        term = f"Race {n} {uuid.uuid4().hex[:8]}"
        body = event_body(procedure().external_id, term)
        return Shot(
            "POST",
            "/api/v1/adverse-events/",
            lambda i: body,
            {"Idempotency-Key": f"race-{uuid.uuid4()}"},
            lambda: AdverseEvent.objects.filter(term=term).count(),
        )

    def ae_event_id(n: int) -> Shot:
        event_id = f"AE-RACE-{n}-{uuid.uuid4().hex[:8]}"
        body = event_body(procedure().external_id, "Septic arthritis", event_id=event_id)
        return Shot(
            "POST",
            "/api/v1/adverse-events/",
            lambda i: body,
            rows=lambda: AdverseEvent.objects.filter(external_id=event_id).count(),
        )

    def ae_retract(n: int) -> Shot:
        target = event()
        return Shot(
            "POST",
            f"/api/v1/adverse-events/{target.pk}/retract/",
            lambda i: {"reason": "Entered twice"},
            rows=lambda: AdverseEvent.objects.filter(pk=target.pk, retracted_at__isnull=False).count(),
        )

    def ae_if_match(n: int) -> Shot:
        target = event()
        return Shot(
            "PATCH",
            f"/api/v1/adverse-events/{target.pk}/",
            lambda i: {"reporter": f"client {i}"},
            {"If-Match": f'"{target.version}"'},
            lambda: AdverseEvent.objects.get(pk=target.pk).version - target.version,
        )

    def procedure_key(n: int) -> Shot:
        procedure_id = f"PR-RACE-K-{n}-{uuid.uuid4().hex[:8]}"
        body = procedure_body(procedure_id)
        return Shot(
            "POST",
            "/api/v1/procedures/",
            lambda i: body,
            {"Idempotency-Key": f"race-{uuid.uuid4()}"},
            lambda: scheduled(procedure_id),
        )

    def procedure_id(n: int) -> Shot:
        procedure_id = f"PR-RACE-I-{n}-{uuid.uuid4().hex[:8]}"
        body = procedure_body(procedure_id)
        return Shot("POST", "/api/v1/procedures/", lambda i: body, rows=lambda: scheduled(procedure_id))

    def patient_key(n: int) -> Shot:
        before = Patient.objects.count()
        body = {"clinic": clinic.code, "sex": "M", "birth_year": 1950 + n, "enrolled_on": "2024-03-01"}
        return Shot(
            "POST",
            "/api/v1/patients/",
            lambda i: body,
            {"Idempotency-Key": f"race-{uuid.uuid4()}"},
            lambda: Patient.objects.count() - before,
        )

    def visit_if_match(n: int) -> Shot:
        visit = procedure().visits.get(visit="day_2")
        return Shot(
            "PATCH",
            f"/api/v1/follow-up-visits/{visit.pk}/",
            lambda i: {"completed_on": "2024-01-17", "contact_method": "phone", "notes": f"client {i}"},
            {"If-Match": f'"{visit.version}"'},
            lambda: FollowUpVisit.objects.get(pk=visit.pk).version - visit.version,
        )

    return [
        Race("POST adverse event, same Idempotency-Key", "key", 0, None, ae_key),
        Race("POST adverse event, same event_id, no key", "conflict", 400, "event_id", ae_event_id),
        Race("PATCH adverse event, same If-Match", "if-match", 412, None, ae_if_match),
        Race("POST retract, same event, no key", "conflict", 400, None, ae_retract),
        Race("POST procedure, same Idempotency-Key", "key", 0, None, procedure_key),
        Race("POST procedure, same procedure_id, no key", "conflict", 400, "procedure_id", procedure_id),
        Race("POST patient, same Idempotency-Key", "key", 0, None, patient_key),
        Race("PATCH follow-up visit, same If-Match", "if-match", 412, None, visit_if_match),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--clients", type=int, default=16, help="concurrent clients per race (default 16)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per race, each on a fresh target")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL") or DEFAULT_SERVER
    database = f"bench_races_{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": _with_database(server, database),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "API_USER_RATE": "1000000/minute",
        "DEBUG": "false",
        "LOG_LEVEL": "ERROR",
        "PYTHONWARNINGS": "ignore:No directory at",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    _admin(server, f'CREATE DATABASE "{database}"')
    gunicorn = None
    try:
        seeded = seed()
        from django.db import connections

        connections.close_all()
        # The server's log (every 400 and 412 is logged as a warning) goes to a file, not the table.
        server_log = Path(tempfile.gettempdir()) / f"{database}.log"
        with server_log.open("w") as log:
            saved = os.dup(2)
            os.dup2(log.fileno(), 2)  # gunicorn inherits this stderr
            try:
                gunicorn = Gunicorn(args, env)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
        gunicorn.wait_ready()
        print(
            f"gunicorn on 127.0.0.1:{gunicorn.port}: {gunicorn.config} ({args.workers * args.threads} requests at "
            f"once); {args.clients} clients per race released by a barrier; {args.rounds} rounds per race; "
            f"{os.cpu_count()} CPUs shared by clients, server and PostgreSQL\n"
        )
        failed = False
        header = f"{'race':<44} {'2xx first':>9} {'replays':>7} {'4xx':>16} {'other':>6} {'rows/round':>10}  verdict"
        print(header)
        print("-" * len(header))
        for race in races(seeded):
            tally: collections.Counter = collections.Counter()
            rows_seen: list[int] = []
            problems: list[str] = []
            for n in range(args.rounds):
                shot = race.shoot(n)
                answers = fire(gunicorn.port, seeded["token"], shot, args.clients)
                rows = shot.rows()
                rows_seen.append(rows)
                for a in answers:
                    if 200 <= a.status < 300:
                        tally["replay" if a.replayed else "first"] += 1
                    elif 400 <= a.status < 500:
                        tally[a.status] += 1
                    else:
                        tally["other"] += 1
                        problems.append(f"round {n}: status {a.status}: {str(a.body)[:160]}")
                problems += [f"round {n}: {p}" for p in judge(race, answers, rows, args.clients)]
            fours = ", ".join(f"{tally[c]} x {c}" for c in sorted(k for k in tally if isinstance(k, int))) or "-"
            rows_text = "/".join(str(r) for r in rows_seen) if len(set(rows_seen)) > 1 else f"{rows_seen[0]} each"
            verdict = "exactly once" if not problems else "BROKEN"
            print(
                f"{race.name:<44} {tally['first']:>9} {tally['replay']:>7} {fours:>16} {tally['other']:>6} "
                f"{rows_text:>10}  {verdict}"
            )
            for problem in problems[:5]:
                print(f"    {problem}")
            failed |= bool(problems)
        print(f"\n({args.rounds} rounds x {args.clients} clients per race; counts are totals over the rounds)")
        logged = server_log.read_text().splitlines()
        errors = [line for line in logged if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
        print(f"server log {server_log}: {len(logged)} lines, {len(errors)} at ERROR or worse")
        failed |= bool(errors)
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
