"""Benchmark the incidence engine against the database's own limit and against pandas.

Usage (PostgreSQL server from DATABASE_URL; the script creates and drops its own database):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/bench_incidence.py --sizes 100000,1000000

For each size N it loads a registry of N procedures (about 10 scheduled visits and
1.5 events per procedure) with COPY into ``bench_incidence_<pid>``, then measures:

- engine: ``compute_incidence`` for site x cell type (with margins), all 13 outcomes,
  in a fresh process (best of --repeat), and the whole Celery task path (claim,
  compute, store, status flip) once, with the process's peak RSS;
- handwritten: one SQL query computing only case counts and person-days for the same
  strata and outcomes (what the database cannot do faster);
- pandas: exporting the three tables with COPY and computing the same measures
  (counts, proportions, rates, Kaplan-Meier at 4 horizons) with pandas/numpy, as an
  analyst would, with that process's peak RSS.

Targets: engine within 2x of the handwritten query, >= 10x faster than pandas, peak
worker memory < 300 MB, time growing linearly with N.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CUTOFF = "2025-06-30"
FIRST_DAY = "2015-01-01"
LAST_DAY = "2025-10-31"
TODAY = "2025-11-20"
SITE_W = {"knee": 40, "hip": 15, "shoulder": 15, "spine": 10, "elbow": 5, "ankle": 5, "hand_wrist": 5, "other": 5}
CELL_W = {
    "bmac": 35,
    "adipose_svf": 30,
    "bm_msc_expanded": 8,
    "adipose_msc_expanded": 8,
    "umbilical_cord_msc": 10,
    "amniotic": 5,
    "other": 4,
}
CAT_W = {
    "injection_site_reaction": 40,
    "systemic_reaction": 20,
    "infection": 5,
    "ectopic_tissue": 3,
    "immune_reaction": 3,
    "allergic_reaction": 4,
    "neoplasm": 1,
    "neurological": 4,
    "thromboembolic": 2,
    "other": 18,
}
VISITS = [
    ("day_2", 2, 1, 2),
    ("week_1", 7, 2, 3),
    ("month_1", 30, 7, 14),
    ("month_3", 91, 14, 28),
    ("month_6", 182, 28, 28),
    ("year_1", 365, 30, 60),
    ("year_2", 730, 60, 60),
    ("year_3", 1095, 60, 60),
    ("year_4", 1461, 60, 60),
    ("year_5", 1826, 60, 60),
]


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _maxrss_mb() -> float:
    """Return this process's peak resident memory in MB (VmHWM: reset at exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------- data


def _choice(rng, weights: dict, size: int):
    import numpy as np

    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=size, p=p / p.sum())]


def _copy(conn, table: str, frame, chunk: int = 250_000) -> None:
    """COPY ``frame`` into ``table``, filling NOT NULL columns it lacks with a neutral value."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'",
            [table],
        )
        for column, data_type in cur.fetchall():
            if column in frame.columns:
                continue
            if data_type in ("boolean",):
                frame[column] = "f"
            elif "int" in data_type or data_type == "numeric":
                frame[column] = 0
            elif "timestamp" in data_type:
                frame[column] = "2025-11-20 00:00:00+00"
            elif data_type == "date":
                frame[column] = TODAY
            else:
                frame[column] = ""
        columns = ", ".join(frame.columns)
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv, NULL '\\N')") as copy:
            for start in range(0, len(frame), chunk):
                buf = io.StringIO()
                frame.iloc[start : start + chunk].to_csv(buf, header=False, index=False, na_rep="\\N")
                copy.write(buf.getvalue())


def load_registry(url: str, n: int, seed: int = 7) -> dict:
    """Return row counts after replacing the registry in ``url`` with ``n`` random procedures."""
    import numpy as np
    import pandas as pd
    import psycopg

    rng = np.random.default_rng(seed)
    day0 = np.datetime64(FIRST_DAY)
    span = int((np.datetime64(LAST_DAY) - day0).astype(int))
    today = np.datetime64(TODAY)
    stamp = "2025-11-20 00:00:00+00"
    countries = ["ES", "DE", "FR", "IT", "PT", "GB", "US", "MX", "CO", "PA"]
    n_clinics = 40
    n_patients = max(1, int(n / 1.25))

    clinics = pd.DataFrame(
        {
            "id": np.arange(1, n_clinics + 1),
            "code": [f"BC-{i:03d}" for i in range(1, n_clinics + 1)],
            "name": [f"Bench clinic {i}" for i in range(1, n_clinics + 1)],
            "country": [countries[i % len(countries)] for i in range(n_clinics)],
            "city": "",
            "gmp_certified": "t",
            "accreditation_body": "",
            "created_at": stamp,
            "updated_at": stamp,
        }
    )
    pat_clinic = rng.integers(1, n_clinics + 1, n_patients)
    proc_patient = rng.integers(1, n_patients + 1, n)
    performed = day0 + rng.integers(0, span, n).astype("timedelta64[D]")
    # Death after the patient's last procedure; withdrawal any time after enrolment.
    last_proc = np.full(n_patients + 1, day0)
    np.maximum.at(last_proc, proc_patient, performed)
    last_proc = last_proc[1:]
    died = rng.random(n_patients) < 0.02
    death = last_proc + rng.integers(0, 2000, n_patients).astype("timedelta64[D]")
    death = np.where(died & (death <= today), death, np.datetime64("NaT"))
    withdrew = rng.random(n_patients) < 0.05
    withdrawn = day0 + rng.integers(0, span + 30, n_patients).astype("timedelta64[D]")
    withdrawn = np.where(withdrew & (withdrawn <= today), withdrawn, np.datetime64("NaT"))
    patients = pd.DataFrame(
        {
            "id": np.arange(1, n_patients + 1),
            "registry_id": [f"P-B{i}" for i in range(1, n_patients + 1)],
            "clinic_id": pat_clinic,
            "sex": _choice(rng, {"F": 50, "M": 47, "X": 1, "U": 2}, n_patients),
            "birth_year": rng.integers(1935, 2000, n_patients),
            "enrolled_on": FIRST_DAY,
            "withdrawn_on": pd.Series(withdrawn).dt.strftime("%Y-%m-%d"),
            "death_date": pd.Series(death).dt.strftime("%Y-%m-%d"),
            "created_at": stamp,
            "updated_at": stamp,
        }
    )
    cell_type = _choice(rng, CELL_W, n)
    donor = np.isin(cell_type, ["umbilical_cord_msc", "amniotic"])
    procedures = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "external_id": [f"PR-B{i}" for i in range(1, n + 1)],
            "patient_id": proc_patient,
            "clinic_id": pat_clinic[proc_patient - 1],
            "performed_on": pd.Series(performed).dt.strftime("%Y-%m-%d"),
            "site": _choice(rng, SITE_W, n),
            "laterality": "left",
            "cell_source": np.where(donor, "allogeneic", "autologous"),
            "cell_type": cell_type,
            "created_at": stamp,
            "updated_at": stamp,
        }
    )
    # Every procedure gets its 10 scheduled visits; those due by "today" were mostly completed.
    proc_ids = np.repeat(np.arange(1, n + 1), len(VISITS))
    perf_rep = np.repeat(performed, len(VISITS))
    offs = np.tile([v[1] for v in VISITS], n).astype("timedelta64[D]")
    early = np.tile([v[2] for v in VISITS], n).astype("timedelta64[D]")
    late = np.tile([v[3] for v in VISITS], n).astype("timedelta64[D]")
    due = perf_rep + offs
    done = due + rng.integers(-2, 5, len(due)).astype("timedelta64[D]")
    done = np.maximum(done, perf_rep)
    done = np.where((rng.random(len(due)) < 0.7) & (done <= today), done, np.datetime64("NaT"))
    visits = pd.DataFrame(
        {
            "procedure_id": proc_ids,
            "visit": np.tile([v[0] for v in VISITS], n),
            "due_on": pd.Series(due).dt.strftime("%Y-%m-%d"),
            "window_start": pd.Series(due - early).dt.strftime("%Y-%m-%d"),
            "window_end": pd.Series(due + late).dt.strftime("%Y-%m-%d"),
            "completed_on": pd.Series(done).dt.strftime("%Y-%m-%d"),
            "contact_method": "",
            "notes": "",
            "updated_at": stamp,
        }
    )
    # About 1.5 events per procedure: most early (injection-site reactions), some late.
    n_events = int(n * 1.5)
    ev_proc = rng.integers(1, n + 1, n_events)
    bucket = rng.random(n_events)
    offset = np.where(
        bucket < 0.6, rng.integers(0, 8, n_events), np.where(bucket < 0.8, rng.integers(7, 91, n_events), 0)
    )
    offset = np.where(bucket >= 0.8, rng.integers(90, 2500, n_events), offset)
    onset = performed[ev_proc - 1] + offset.astype("timedelta64[D]")
    keep = onset <= today
    ev_proc, onset = ev_proc[keep], onset[keep]
    m = len(ev_proc)
    grade = rng.choice([1, 2, 3, 4, 5], size=m, p=[0.6, 0.25, 0.1, 0.04, 0.01])
    serious = (grade >= 3) & (rng.random(m) < 0.6) | (rng.random(m) < 0.02)
    retracted = rng.random(m) < 0.02
    events = pd.DataFrame(
        {
            "id": np.arange(1, m + 1),
            "external_id": [f"AE-B{i}" for i in range(1, m + 1)],
            "procedure_id": ev_proc,
            "category": _choice(rng, CAT_W, m),
            "term": "bench",
            "onset_on": pd.Series(onset).dt.strftime("%Y-%m-%d"),
            "onset_estimated": "f",
            "recorded_at": stamp,
            "grade": grade,
            "serious": np.where(serious, "t", "f"),
            "serious_hospitalisation": np.where(serious, "t", "f"),
            "outcome": np.where(grade == 5, "fatal", "recovered"),
            # A recovered event has its resolution date (a CHECK since issue 9); no draw, so the data stay the same.
            "resolved_on": pd.Series(
                np.where(grade == 5, np.datetime64("NaT"), onset + np.timedelta64(7, "D"))
            ).dt.strftime("%Y-%m-%d"),
            "retracted_at": np.where(retracted, stamp, None),
            "retraction_reason": np.where(retracted, "bench", ""),
            "updated_at": stamp,
        }
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no audit/row triggers while bulk loading
        conn.execute(
            "TRUNCATE events_adverseevent, registry_followupvisit, registry_procedure, registry_patient, "
            "registry_clinic, reports_incidenceresult, reports_incidencerun RESTART IDENTITY CASCADE"
        )
        for table, frame in [
            ("registry_clinic", clinics),
            ("registry_patient", patients),
            ("registry_procedure", procedures),
            ("registry_followupvisit", visits),
            ("events_adverseevent", events),
        ]:
            _copy(conn, table, frame)
            sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
            conn.execute(sql)
        conn.execute("RESET session_replication_role")
        conn.execute(
            "VACUUM (ANALYZE) registry_clinic, registry_patient, registry_procedure, "
            "registry_followupvisit, events_adverseevent"
        )
    return {"procedures": n, "patients": n_patients, "visits": len(visits), "events": m}


# ---------------------------------------------------------------------------------------- measures

HANDWRITTEN = """
WITH ev AS (
    SELECT procedure_id, max(onset_on) AS last_onset, min(onset_on) AS f_any,
           min(onset_on) FILTER (WHERE serious) AS f_serious,
           min(onset_on) FILTER (WHERE grade >= 3) AS f_g3,
           {cat_firsts}
    FROM events_adverseevent WHERE retracted_at IS NULL GROUP BY procedure_id
),
vis AS (
    SELECT procedure_id, max(completed_on) AS last_visit
    FROM registry_followupvisit WHERE completed_on IS NOT NULL GROUP BY procedure_id
),
b AS (
    SELECT p.site, p.cell_type, p.performed_on,
           LEAST(GREATEST(p.performed_on, vis.last_visit, ev.last_onset, pt.death_date), pt.withdrawn_on,
                 DATE '{cutoff}') AS obs_end,
           ev.f_any, ev.f_serious, ev.f_g3, {cat_cols}
    FROM registry_procedure p
    JOIN registry_patient pt ON pt.id = p.patient_id
    LEFT JOIN ev ON ev.procedure_id = p.id
    LEFT JOIN vis ON vis.procedure_id = p.id
    WHERE p.performed_on <= DATE '{cutoff}'
)
SELECT site, cell_type, count(*) AS procedures, {aggs}
FROM b GROUP BY CUBE (site, cell_type)
"""


def handwritten_sql() -> str:
    cats = list(CAT_W)
    firsts = ",\n           ".join(f"min(onset_on) FILTER (WHERE category = '{c}') AS f_{c}" for c in cats)
    cols = ", ".join(f"ev.f_{c}" for c in cats)
    aggs = []
    for f in ["f_any", "f_serious", "f_g3", *(f"f_{c}" for c in cats)]:
        aggs.append(f"count(*) FILTER (WHERE {f} <= obs_end) AS cases_{f}")
        aggs.append(
            f"sum(CASE WHEN {f} <= obs_end THEN {f} - performed_on ELSE GREATEST(obs_end - performed_on, 0) END)"
            f" AS days_{f}"
        )
    return HANDWRITTEN.format(cat_firsts=firsts, cat_cols=cols, aggs=", ".join(aggs), cutoff=CUTOFF)


# DESIGN 2b's default risk windows (the registry's stored definitions as shipped).
REGISTRY_WINDOWS = {
    "any": (0, None),
    "serious": (0, None),
    "g3": (0, None),
    "injection_site_reaction": (0, 7),
    "systemic_reaction": (0, 7),
    "allergic_reaction": (0, 30),
    "neurological": (0, 30),
    "infection": (0, 90),
    "immune_reaction": (0, 90),
    "thromboembolic": (0, 90),
    "ectopic_tissue": (0, None),
    "neoplasm": (180, None),
    "other": (0, None),
}


def handwritten_windowed_sql() -> str:
    """The floor of the windowed measures: per outcome, its risk window, units in the denominator, cases,
    competing deaths and days at risk (DESIGN 2b), with margins; no Kaplan-Meier or Aalen-Johansen curve."""
    cats = list(CAT_W)
    firsts = ",\n           ".join(f"min(onset_on) FILTER (WHERE category = '{c}') AS f_{c}" for c in cats)
    cols = ", ".join(f"ev.f_{c}" for c in cats)
    aggs = []
    for name in ["any", "serious", "g3", *cats]:
        f = f"(f_{name} - performed_on)"
        o = "(obs_end - performed_on)"
        d = "(death_date - performed_on)"
        s, e = REGISTRY_WINDOWS[name]
        b = o if e is None else f"LEAST({o}, {e})"
        inside = f"({f} IS NULL OR {f} >= {s}) AND {b} >= {s}"
        aggs.append(f"count(*) FILTER (WHERE {inside}) AS n_{name}")
        aggs.append(f"count(*) FILTER (WHERE {inside} AND {f} <= {b}) AS cases_{name}")
        aggs.append(
            f"count(*) FILTER (WHERE {inside} AND NOT COALESCE({f} <= {b}, false) AND {d} BETWEEN {s} AND {b})"
            f" AS deaths_{name}"
        )
        aggs.append(
            f"sum(CASE WHEN {f} <= {b} THEN {f} - {s} WHEN {d} BETWEEN {s} AND {b} THEN {d} - {s} "
            f"ELSE {b} - {s} END) FILTER (WHERE {inside}) AS days_{name}"
        )
    sql = HANDWRITTEN.format(cat_firsts=firsts, cat_cols=cols, aggs=", ".join(aggs), cutoff=CUTOFF)
    return sql.replace("ev.f_any, ev.f_serious", "pt.death_date, ev.f_any, ev.f_serious")


def measure_handwritten(url: str, repeat: int, windows: str = "open") -> dict:
    import psycopg

    sql = handwritten_windowed_sql() if windows == "registry" else handwritten_sql()
    times = []
    with psycopg.connect(url) as conn:
        for _ in range(repeat):
            with conn.transaction():
                conn.execute("SET LOCAL work_mem = '256MB'")
                start = time.perf_counter()
                rows = conn.execute(sql).fetchall()
                times.append(time.perf_counter() - start)
    return {"seconds": min(times), "median": statistics.median(times), "rows": len(rows)}


def child_engine(repeat: int) -> dict:
    """Run in a fresh process: the engine alone (best of ``repeat``), then the full task path once."""
    os.environ.pop("CELERY_BROKER_URL", None)  # eager: the task runs here, on commit
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import datetime as dt

    import django

    django.setup()
    from django.db import transaction

    from reports.engine import IncidenceParams, compute_incidence
    from reports.models import IncidenceRun
    from reports.outcomes import current_windows
    from reports.services import incidence_run_start

    baseline = _maxrss_mb()
    windows = current_windows() if os.environ.get("BENCH_WINDOWS") == "registry" else None
    params = IncidenceParams.build(
        cutoff_on=dt.date.fromisoformat(CUTOFF),
        strata=["site", "cell_type"],
        windows=windows,
        unit=os.environ.get("BENCH_UNIT", "procedure"),
    )
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        rows = compute_incidence(params=params)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    with transaction.atomic():
        run = incidence_run_start(actor=None, cutoff_on=params.cutoff_on, strata=params.strata)
    task_seconds = time.perf_counter() - start
    run = IncidenceRun.objects.get(pk=run.pk)
    return {
        "seconds": min(times),
        "median": statistics.median(times),
        "rows": len(rows),
        "task_seconds": task_seconds,
        "task_status": run.status,
        "stored_rows": run.row_count,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _maxrss_mb(),
    }


def child_pandas(url: str) -> dict:
    """Run in a fresh process: export with COPY, compute the same measures with pandas."""
    import numpy as np
    import pandas as pd
    import psycopg
    from scipy import stats

    baseline = _maxrss_mb()
    start = time.perf_counter()

    def export(conn, sql: str) -> pd.DataFrame:
        buf = io.BytesIO()
        with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER)") as copy:
            for block in copy:
                buf.write(block)
        buf.seek(0)
        return pd.read_csv(buf)

    with psycopg.connect(url) as conn:
        proc = export(
            conn,
            "SELECT p.id, p.performed_on, p.site, p.cell_type, pt.withdrawn_on, pt.death_date "
            "FROM registry_procedure p JOIN registry_patient pt ON pt.id = p.patient_id",
        )
        vis = export(
            conn, "SELECT procedure_id, completed_on FROM registry_followupvisit WHERE completed_on IS NOT NULL"
        )
        ev = export(
            conn,
            "SELECT procedure_id, onset_on, category, serious, grade FROM events_adverseevent "
            "WHERE retracted_at IS NULL",
        )
    export_seconds = time.perf_counter() - start

    def days(col: pd.Series) -> np.ndarray:
        return (pd.to_datetime(col).values.astype("datetime64[D]") - np.datetime64("1970-01-01")).astype("float")

    cutoff = float((np.datetime64(CUTOFF) - np.datetime64("1970-01-01")).astype(int))
    proc["p"] = days(proc.performed_on)
    proc = proc[proc.p <= cutoff].set_index("id")
    vis["d"] = days(vis.completed_on)
    ev["d"] = days(ev.onset_on)
    last = pd.concat([proc.p, vis.groupby("procedure_id").d.max(), ev.groupby("procedure_id").d.max()], axis=1).reindex(
        proc.index
    )
    last["death"] = days(proc.death_date)
    end = np.fmin(np.fmax.reduce(last.values, axis=1, initial=-np.inf), cutoff)
    end = np.fmin(end, days(proc.withdrawn_on))
    e = np.maximum(end - proc.p.values, 0)
    outcomes = {"any": ev.index == ev.index, "serious": ev.serious.astype(bool), "grade_3_plus": ev.grade >= 3}
    outcomes.update({c: ev.category == c for c in CAT_W})
    horizons = [30, 365, 730, 1826]
    z = stats.norm.ppf(0.975)
    results = []
    for mask in outcomes.values():
        first = ev[mask].groupby("procedure_id").d.min().reindex(proc.index).values - proc.p.values
        case = first <= (end - proc.p.values)
        t = np.where(case, first, e)
        frame = pd.DataFrame({"site": proc.site.values, "cell_type": proc.cell_type.values, "t": t, "case": case})
        for keys in (["site", "cell_type"], ["site"], ["cell_type"], []):
            grouped = frame.assign(_all=0).groupby(keys or ["_all"])
            summary = grouped.agg(n=("case", "size"), cases=("case", "sum"), days=("t", "sum"), maxt=("t", "max"))
            summary["py"] = summary.days / 365.25
            summary["rate"] = summary.cases / summary.py * 100
            summary["rate_lo"] = stats.chi2.ppf(0.025, 2 * summary.cases) / 2 / summary.py * 100
            summary["rate_hi"] = stats.chi2.ppf(0.975, 2 * summary.cases + 2) / 2 / summary.py * 100
            q = summary.cases / summary.n
            denom = 1 + z**2 / summary.n
            centre = (q + z**2 / (2 * summary.n)) / denom
            half = z * np.sqrt(q * (1 - q) / summary.n + z**2 / (4 * summary.n**2)) / denom
            summary["p_lo"], summary["p_hi"] = centre - half, centre + half
            # Kaplan-Meier: events and exits per day, at risk by reverse cumulative sum.
            by_day = (
                frame.assign(_all=0, ev=frame.case.astype(int), one=1)
                .groupby([*(keys or ["_all"]), "t"])
                .agg(d=("ev", "sum"), m=("one", "sum"))
                .reset_index()
            )
            gkeys = keys or ["_all"]
            by_day["n"] = by_day.iloc[::-1].groupby(gkeys).m.cumsum().iloc[::-1]
            by_day = by_day[by_day.d > 0]
            by_day["logs"] = np.log(by_day.n - by_day.d) - np.log(by_day.n)
            by_day["gw"] = by_day.d / (by_day.n * (by_day.n - by_day.d))
            for h in horizons:
                upto = by_day[by_day.t <= h].groupby(gkeys)[["logs", "gw"]].sum()
                s = np.exp(upto.logs.reindex(summary.index).fillna(0.0))
                summary[f"km_{h}"] = np.where(summary.maxt >= h, 1 - s, np.nan)
                v = upto.gw.reindex(summary.index).fillna(0.0)
                lg = np.log(s)
                with np.errstate(divide="ignore", invalid="ignore"):
                    summary[f"km_{h}_lo"] = 1 - np.exp(-np.exp(np.log(-lg) + z * np.sqrt(v) / lg))
            results.append(summary)
    return {
        "seconds": time.perf_counter() - start,
        "export_seconds": export_seconds,
        "rows": sum(len(r) for r in results),
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _maxrss_mb(),
    }


def _loaded(url: str) -> dict | None:
    """Return the counts of an already loaded benchmark database (None when it is empty)."""
    import psycopg

    with psycopg.connect(url) as conn:
        procedures = conn.execute("SELECT count(*) FROM registry_procedure").fetchone()[0]
        if not procedures:
            return None
        return {
            "procedures": procedures,
            "visits": conn.execute("SELECT count(*) FROM registry_followupvisit").fetchone()[0],
            "events": conn.execute("SELECT count(*) FROM events_adverseevent").fetchone()[0],
            "reused": True,
        }


WINDOWS = ["open", "procedure"]  # --windows and --unit, passed to the engine child


def _child(mode: str, url: str, repeat: int) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "BENCH_WINDOWS": WINDOWS[0], "BENCH_UNIT": WINDOWS[1]}
    env.pop("CELERY_BROKER_URL", None)
    out = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, __file__, "--child", mode, "--repeat", str(repeat)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"the {mode} child failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="Comma-separated procedure counts.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument(
        "--windows",
        choices=["open", "registry"],
        default="open",
        help="open: every window open (DESIGN 2); registry: the stored risk windows (DESIGN 2b), against a "
        "handwritten floor of the windowed measures (denominators, cases, competing deaths, days at risk).",
    )
    parser.add_argument("--unit", choices=["procedure", "patient"], default="procedure")
    parser.add_argument(
        "--db",
        default=None,
        help="Use (and keep) this database: created, migrated and loaded with the first size when it does not "
        "exist or is empty, reused as it is otherwise (one size only).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database.")
    parser.add_argument("--child", choices=["engine", "pandas"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    WINDOWS[:] = [args.windows, args.unit]
    if args.child == "engine":
        print(json.dumps(child_engine(args.repeat)))
        return
    if args.child == "pandas":
        print(json.dumps(child_pandas(os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1))))
        return

    import psycopg

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name = args.db or f"bench_incidence_{os.getpid()}"
    admin_url = _with_db(server, "postgres").replace("postgres://", "postgresql://", 1)
    bench_url = _with_db(server, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    if args.db:
        args.keep = True
    report = []
    try:
        env = {**os.environ, "DATABASE_URL": bench_url}
        subprocess.run(  # noqa: S603 - manage.py of this project
            [sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True
        )
        libpq = bench_url.replace("postgres://", "postgresql://", 1)
        for n in [int(s) for s in args.sizes.split(",")]:
            start = time.perf_counter()
            counts = _loaded(libpq) if args.db else None
            counts = counts or load_registry(libpq, n)
            load_seconds = time.perf_counter() - start
            print(f"\n== N = {n:,} procedures: {counts} (loaded in {load_seconds:.1f} s)", flush=True)
            engine = _child("engine", bench_url, args.repeat)
            print(f"engine      {engine}", flush=True)
            hand = measure_handwritten(libpq, args.repeat, args.windows)
            print(f"handwritten {hand}", flush=True)
            pandas = None if args.skip_pandas else _child("pandas", bench_url, 1)
            if pandas:
                print(f"pandas      {pandas}", flush=True)
            report.append({"n": n, "counts": counts, "engine": engine, "handwritten": hand, "pandas": pandas})
    finally:
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print("\n| N | engine s | task s | handwritten s | engine/hand | pandas s | pandas/engine | worker peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in report:
        e, h, p = r["engine"], r["handwritten"], r["pandas"]
        pandas_s = f"{p['seconds']:.2f}" if p else "-"
        speedup = f"{p['seconds'] / e['seconds']:.1f}x" if p else "-"
        print(
            f"| {r['n']:,} | {e['seconds']:.2f} | {e['task_seconds']:.2f} | {h['seconds']:.2f} | "
            f"{e['seconds'] / h['seconds']:.2f} | {pandas_s} | {speedup} | {e['peak_rss_mb']:.0f} |"
        )
    if len(report) >= 2:
        a, b = report[0], report[-1]
        print(
            f"\nlinearity: N x{b['n'] / a['n']:.0f} -> engine x{b['engine']['seconds'] / a['engine']['seconds']:.1f}, "
            f"handwritten x{b['handwritten']['seconds'] / a['handwritten']['seconds']:.1f}"
        )


if __name__ == "__main__":
    main()
