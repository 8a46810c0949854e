"""Time compute_incidence alone (site x cell type, every outcome) on an existing database, best of --repeat.

It imports the engine from the current directory, so the same script times another commit's
engine side by side (a git worktree of it as the working directory):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench1m \\
        .venv/bin/python bench/bench_engine_time.py --windows registry
    git worktree add /tmp/prev c04f37a && cd /tmp/prev && ln -s /work/main/.venv .venv && \\
        DATABASE_URL=... .venv/bin/python /work/main/bench/bench_engine_time.py

(load the database first: bench/bench_incidence.py --db bench1m). --windows and --unit need this
commit's engine or later.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time

CUTOFF = "2025-06-30"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", choices=["open", "registry"], default="open")
    parser.add_argument("--unit", choices=["procedure", "patient"], default="procedure")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from reports.engine import IncidenceParams, compute_incidence

    options = {}
    if args.windows == "registry" or args.unit != "procedure":
        from reports.outcomes import current_windows

        options = {"windows": current_windows() if args.windows == "registry" else None, "unit": args.unit}
    params = IncidenceParams.build(cutoff_on=dt.date.fromisoformat(CUTOFF), strata=["site", "cell_type"], **options)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        rows = compute_incidence(params=params)
        times.append(time.perf_counter() - start)
    print(f"{os.getcwd()}: {len(rows)} rows, best {min(times):.2f} s of {[round(t, 2) for t in times]}")


if __name__ == "__main__":
    main()
