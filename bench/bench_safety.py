"""Benchmark issue 10's case management: what the expedited-report clocks cost a write, and the figures page.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database unless --db):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_safety.py

It loads the demo registry (--patients, default 1,000), then, in one process and interleaved so the
two sides see the same machine:

- saving a serious, unexpected, related event through events.services.adverse_event_save with the
  safety receiver connected (every active rule evaluated, a due report created, its email queued)
  and with it disconnected (the write alone), --saves of each, median and p95 in ms;
- a follow-up report and a medical review (each re-evaluates the case), median ms;
- safety.selectors.safety_figures for a registry-wide user (every clinic and the total), median ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


RECEIVER = "safety.case_evaluate"  # SafetyConfig.ready()'s dispatch_uid


def _setup(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    import django

    django.setup()


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return f"{statistics.median(samples) * 1000:8.2f} {p95 * 1000:8.2f}"


def run(*, patients: int, saves: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from core.dates import today
    from events import hooks
    from events import services as event_services
    from events.models import AdverseEvent
    from intake import demo
    from registry.models import Procedure
    from safety import selectors as safety_selectors
    from safety import services as safety_services
    from safety.models import DueReport

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    demo.load_demo_data(patients=patients)
    print(f"demo registry: {patients} patients loaded in {time.perf_counter() - started:.1f} s")
    admin = get_user_model().objects.get(username="registry_admin")
    reviewer = get_user_model().objects.get(username="safety_reviewer")
    procedures = list(
        Procedure.objects.filter(clinic__country__in=["ES", "DE", "US"], retracted_at__isnull=True)
        .filter(patient__retracted_at__isnull=True, patient__death_date__isnull=True)
        .select_related("patient", "clinic")
        .order_by("id")[: saves * 2]
    )
    day = today()

    def serious_event(procedure) -> AdverseEvent:
        return AdverseEvent(
            external_id=f"BENCH-{uuid.uuid4().hex[:12].upper()}",
            procedure=procedure,
            category="infection",
            term="Septic arthritis",
            onset_on=day,
            aware_on=day,
            grade=3,
            serious=True,
            serious_hospitalisation=True,
            causality_procedure="probable",
            causality_product="possible",
            expectedness="unexpected",
            outcome="recovering",
            action_taken="hospitalisation",
        )

    with_rules, without_rules = [], []
    due_before = DueReport.objects.count()
    for i, procedure in enumerate(procedures):
        connected = i % 2 == 0
        if not connected:
            assert hooks.case_changed.disconnect(dispatch_uid=RECEIVER)
        try:
            t0 = time.perf_counter()
            event_services.adverse_event_save(actor=admin, event=serious_event(procedure))
            (with_rules if connected else without_rules).append(time.perf_counter() - t0)
        finally:
            if not connected:
                hooks.case_changed.connect(safety_services.on_case_changed, dispatch_uid=RECEIVER)
    due_made = DueReport.objects.count() - due_before

    events = list(AdverseEvent.objects.filter(external_id__startswith="BENCH-").order_by("id")[:saves])
    follow_ups, reviews = [], []
    for event in events:
        t0 = time.perf_counter()
        event_services.follow_up_report_create(
            actor=admin, event=event, received_on=day, narrative="Bench follow-up.", changes={"grade": 2}
        )
        follow_ups.append(time.perf_counter() - t0)
        event.refresh_from_db()
        t0 = time.perf_counter()
        event_services.medical_review_record(
            actor=reviewer,
            event=event,
            serious=True,
            serious_hospitalisation=True,
            causality_procedure="probable",
            causality_product="possible",
            expectedness="unexpected",
        )
        reviews.append(time.perf_counter() - t0)

    figures = []
    for _ in range(20):
        t0 = time.perf_counter()
        rows = safety_selectors.safety_figures(admin)
        figures.append(time.perf_counter() - t0)
    total_events = AdverseEvent.objects.count()

    print(f"{total_events} events, {DueReport.objects.count()} due reports ({due_made} made by the timed saves)")
    print(f"{'':58} {'median':>8} {'p95':>8}  (ms)")
    print(f"{'adverse_event_save, serious case, safety receiver on':58} {_ms(with_rules)}  n={len(with_rules)}")
    print(f"{'adverse_event_save, serious case, safety receiver off':58} {_ms(without_rules)}  n={len(without_rules)}")
    print(f"{'follow_up_report_create (re-evaluates the case)':58} {_ms(follow_ups)}  n={len(follow_ups)}")
    print(f"{'medical_review_record (re-evaluates the case)':58} {_ms(reviews)}  n={len(reviews)}")
    print(f"{'safety_figures, registry-wide (' + str(len(rows)) + ' rows)':58} {_ms(figures)}  n={len(figures)}")
    ratio = statistics.median(with_rules) / statistics.median(without_rules)
    print(f"receiver on / off (median): {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--saves", type=int, default=200, help="Timed saves with the receiver on (and as many off).")
    parser.add_argument("--db", help="Use (and keep) this database instead of a throw-away one.")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    import psycopg

    name = args.db or f"bench_safety_{os.getpid()}"
    admin_url = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _setup(base.rsplit("/", 1)[0] + "/" + name)
        run(patients=args.patients, saves=args.saves)
    finally:
        if not args.db:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


if __name__ == "__main__":
    main()
