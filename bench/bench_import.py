"""Benchmark manage.py import_registry on a generated folder, in a database of its own.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_import.py \
        [-n 100000] [--reimport] [--bad] [--max-errors 100]

DATABASE_URL names the server (and a database to connect to for CREATE/DROP
DATABASE); the benchmark creates ``bench_import_<pid>``, migrates it, imports, and
drops it, so development data is never touched. It prints the folder's size, the wall
time per phase and in total, rows per second, and the peak RSS of each run (Linux: the
kernel's peak, reset when the run starts) and of the whole process (the data are
generated in a child process so their memory does not count).

--bad generates the same folder with one bad cell in every data row (rotating through
unreadable cells, unknown codes, unknown references, duplicate ids and rule violations,
the kinds the checks find at each stage) and measures the refused import instead: time,
peak RSS, the number of errors reported and the size of the error report the command
prints. -n 420000 makes a folder of about 200 MB.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import multiprocessing
import os
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLINICS = [
    ("ES-MAD-01", "Clinica Rodilla Madrid", "ES", "Madrid", "true"),
    ("ES-BCN-02", "Centre Articular Barcelona", "ES", "Barcelona", "true"),
    ("DE-BER-01", "Gelenkzentrum Berlin", "DE", "Berlin", "true"),
    ("MX-TIJ-01", "Clinica Regenerativa Tijuana", "MX", "Tijuana", "false"),
    ("PA-PTY-01", "Panama Stem Cell Institute", "PA", "Panama City", "false"),
    ("US-FL-01", "Sunshine Orthobiologics", "US", "Miami", "false"),
    ("GB-LDN-01", "London Joint Clinic", "GB", "London", "true"),
    ("TR-IST-01", "Istanbul Ortho Hub", "TR", "Istanbul", "false"),
]
SITES = (["knee"] * 45 + ["hip"] * 15 + ["shoulder"] * 12 + ["spine"] * 10 + ["elbow"] * 5 + ["ankle"] * 5
         + ["hand_wrist"] * 5 + ["other"] * 3)  # fmt: skip
CELL_TYPES = (["bmac"] * 35 + ["adipose_svf"] * 25 + ["bm_msc_expanded"] * 8 + ["adipose_msc_expanded"] * 7
              + ["umbilical_cord_msc"] * 15 + ["amniotic"] * 5 + ["other"] * 5)  # fmt: skip
# category -> (weight, onset days after the procedure: low, high)
CATEGORIES = {
    "injection_site_reaction": (45, 0, 2),
    "systemic_reaction": (20, 0, 3),
    "infection": (3, 2, 14),
    "ectopic_tissue": (4, 90, 700),
    "immune_reaction": (5, 1, 30),
    "allergic_reaction": (5, 0, 2),
    "neoplasm": (0.5, 365, 1800),
    "neurological": (2, 0, 60),
    "thromboembolic": (0.5, 1, 30),
    "other": (15, 0, 90),
}
# visit -> (days after the procedure, probability the visit was completed)
VISITS = {
    "day_2": (2, 0.92),
    "week_1": (7, 0.88),
    "month_1": (30, 0.85),
    "month_3": (91, 0.78),
    "month_6": (182, 0.7),
    "year_1": (365, 0.62),
    "year_2": (730, 0.5),
    "year_3": (1095, 0.42),
    "year_4": (1461, 0.35),
    "year_5": (1826, 0.3),
}


def generate(folder: Path, procedures: int, seed: int) -> dict[str, int]:
    """Return the row count per file after writing a realistic import folder of ``procedures`` procedures."""
    rnd = random.Random(seed)
    today = dt.date.today() - dt.timedelta(days=1)
    first = dt.date(2018, 1, 1)
    span = (today - first).days - 30
    counts = dict.fromkeys(("clinics", "patients", "procedures", "follow_ups", "adverse_events"), 0)

    def writer(name, header):
        fh = (folder / f"{name}.csv").open("w", newline="", encoding="utf-8")
        out = csv.writer(fh)
        out.writerow(header.split(","))
        return fh, out

    fh, out = writer("clinics", "code,name,country,city,gmp_certified")
    out.writerows(CLINICS)
    counts["clinics"] = len(CLINICS)
    fh.close()

    n_patients = max(1, int(procedures * 0.4))
    # Each patient has at least one procedure; the rest go to random patients.
    owner = list(range(n_patients)) + [rnd.randrange(n_patients) for _ in range(procedures - n_patients)]
    per_patient: dict[int, int] = {}
    for p in owner:
        per_patient[p] = per_patient.get(p, 0) + 1
    patients = []
    fh, out = writer("patients", "registry_id,clinic_code,sex,birth_year,enrolled_on,withdrawn_on,death_date")
    for p in range(n_patients):
        enrolled = first + dt.timedelta(days=rnd.randrange(span))
        clinic = CLINICS[rnd.randrange(len(CLINICS))][0]
        withdrawn = ""
        if rnd.random() < 0.03:
            withdrawn = min(today, enrolled + dt.timedelta(days=rnd.randrange(30, 900))).isoformat()
        patients.append((f"P-{p:09d}", clinic, enrolled, withdrawn))
        sex = rnd.choice("FFFMMMXU")
        out.writerow([f"P-{p:09d}", clinic, sex, rnd.randrange(1940, 2001), enrolled.isoformat(), withdrawn, ""])
    counts["patients"] = n_patients
    fh.close()

    fh, out = writer("procedures", "procedure_id,patient_registry_id,clinic_code,performed_on,site,laterality,"
                     "cell_source,cell_type,cell_dose_millions,carrier,guidance")  # fmt: skip
    fu_fh, fu = writer("follow_ups", "procedure_id,visit,due_on,completed_on")
    ae_fh, ae = writer("adverse_events", "event_id,procedure_id,category,term,onset_on,grade,serious,"
                       "serious_criteria,outcome,resolved_on,relatedness")  # fmt: skip
    categories = list(CATEGORIES)
    weights = [CATEGORIES[c][0] for c in categories]
    event_no = 0
    for i, p in enumerate(owner):
        registry_id, clinic, enrolled, withdrawn = patients[p]
        # Some procedures predate enrolment: clinics migrating their history.
        offset = rnd.randrange(-400, 0) if rnd.random() < 0.05 else rnd.randrange(0, 60)
        performed = min(today, max(first, enrolled + dt.timedelta(days=offset)))
        if withdrawn and performed.isoformat() > withdrawn:  # no procedure after withdrawal (issue 9)
            performed = dt.date.fromisoformat(withdrawn)
        cell_type = rnd.choice(CELL_TYPES)
        source = "allogeneic" if cell_type in ("umbilical_cord_msc", "amniotic") else "autologous"
        site = rnd.choice(SITES)
        laterality = "n/a" if site == "spine" else rnd.choice(["left", "right", "left", "right", "bilateral"])
        dose = "" if rnd.random() < 0.1 else f"{rnd.uniform(5, 200):.2f}"
        carrier = rnd.choice(["saline", "platelet_lysate", "hyaluronic_acid", "plasma_lyte", "other", ""])
        guidance = rnd.choice(["ultrasound", "ultrasound", "fluoroscopy", "landmark", ""])
        pid = f"PR-{i:09d}"
        clinic_cell = "" if rnd.random() < 0.2 else clinic  # empty means the patient's clinic
        out.writerow([pid, registry_id, clinic_cell, performed.isoformat(), site, laterality, source, cell_type,
                      dose, carrier, guidance])  # fmt: skip
        for visit, (days, completion) in VISITS.items():
            due = performed + dt.timedelta(days=days)
            if due >= today or rnd.random() > completion:
                continue
            done = min(today, max(performed, due + dt.timedelta(days=rnd.randrange(-1, 4))))
            moved = rnd.random() < 0.1
            due_cell = (due + dt.timedelta(days=rnd.randrange(-2, 3))).isoformat() if moved else ""
            fu.writerow([pid, visit, due_cell, done.isoformat()])
            counts["follow_ups"] += 1
        for _ in range(rnd.choices([0, 1, 2, 3, 4], weights=[25, 30, 25, 12, 8])[0]):
            category = rnd.choices(categories, weights)[0]
            _w, low, high = CATEGORIES[category]
            onset = performed + dt.timedelta(days=rnd.randrange(low, high + 1))
            if onset > today:
                continue
            grade = rnd.choices([1, 2, 3, 4], weights=[60, 30, 8, 2])[0]
            criteria = ""
            if grade == 3:
                criteria = "hospitalisation" + (";medically_important" if rnd.random() < 0.3 else "")
            elif grade == 4:
                criteria = "life_threatening;hospitalisation"
            resolved, outcome = "", rnd.choice(["recovering", "not_recovered", "unknown", ""])
            if rnd.random() < 0.7:
                end = onset + dt.timedelta(days=rnd.randrange(1, 40))
                if end <= today:
                    resolved, outcome = end.isoformat(), rnd.choice(["recovered"] * 9 + ["recovered_with_sequelae"])
            relatedness = rnd.choice(["certain", "probable", "possible", "unlikely", "unassessable", ""])
            event_no += 1
            ae.writerow([f"AE-{event_no:09d}", pid, category, f"{category.replace('_', ' ')} ({site})",
                         onset.isoformat(), grade, "true" if criteria else "false", criteria, outcome, resolved,
                         relatedness])  # fmt: skip
        counts["procedures"] += 1
    counts["adverse_events"] = event_no
    for handle in (fh, fu_fh, ae_fh):
        handle.close()
    return counts


def corrupt(folder: Path) -> int:
    """Return the number of rows made bad after giving every data row of ``folder`` one bad cell.

    The bad cells rotate through what each stage of the checks finds: an unreadable date, an
    unknown code, an unknown reference, a duplicate id, a rule of the row itself and a rule
    across rows (an onset or a completion before the procedure).
    """
    bad = {
        "patients": [("birth_year", "nineteen"), ("enrolled_on", "2022-02-30"), ("birth_year", "1850"),
                     ("clinic_code", "XX-NOPE")],
        "procedures": [("performed_on", "2022-13-01"), ("site", "Knee"), ("patient_registry_id", "P-NOBODY"),
                       ("cell_dose_millions", "0"), ("procedure_id", "PR-000000000")],
        "follow_ups": [("visit", "day_3"), ("completed_on", "2000-01-01"), ("procedure_id", "PR-NONE"),
                       ("due_on", "18/03/2022")],
        "adverse_events": [("grade", "7"), ("onset_on", "2000-01-01"), ("procedure_id", "PR-GONE"),
                           ("serious", "maybe"), ("event_id", "AE-000000001")],
    }  # fmt: skip
    total = 0
    for name, cells in bad.items():
        path = folder / f"{name}.csv"
        source = path.with_suffix(".good")
        path.rename(source)
        with source.open(newline="", encoding="utf-8") as fin, path.open("w", newline="", encoding="utf-8") as fout:
            reader, writer = csv.reader(fin), csv.writer(fout)
            header = next(reader)
            writer.writerow(header)
            for i, row in enumerate(reader):
                column, value = cells[i % len(cells)]
                row[header.index(column)] = value
                writer.writerow(row)
                total += 1
        source.unlink()
    return total


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--procedures", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--reimport", action="store_true", help="Import the same folder a second time and time it.")
    parser.add_argument("--bad", action="store_true", help="Give every data row a bad cell; measure the refusal.")
    parser.add_argument("--max-errors", type=int, default=None, help="The importer's error cap (default: its own).")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL")
    if not server:
        parser.error("DATABASE_URL must name the PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/postgres")
    database = f"bench_import_{os.getpid()}"

    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        # A child process generates the folder, so its memory does not count in the import's peak RSS.
        with multiprocessing.get_context("fork").Pool(1) as pool:
            counts = pool.apply(generate, (folder, args.procedures, args.seed))
            if args.bad:
                made_bad = pool.apply(corrupt, (folder,))
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        print(f"generated {folder} ({size:.0f} MiB) in {time.perf_counter() - started:.1f} s: " + ", ".join(
            f"{n} {k}" for k, n in counts.items()))  # fmt: skip
        if args.bad:
            print(f"  every data row has one bad cell ({made_bad:,} rows)")
        _admin(server, f'CREATE DATABASE "{database}"')
        try:
            url = _with_database(server, database)
            if args.bad:
                return _run_bad(folder, url, max_errors=args.max_errors)
            return _run(folder, url, counts, reimport=args.reimport)
        finally:
            from django.db import connections

            connections.close_all()
            _admin(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            print(f"dropped database {database}")


def _run(folder: Path, url: str, counts: dict[str, int], *, reimport: bool) -> int:
    rss_before = _setup(url)
    from intake.importer import import_folder
    from registry.models import FollowUpVisit

    runs = [("import", folder)] + ([("re-import (unchanged)", folder)] if reimport else [])
    for label, path in runs:
        start_rss = _reset_peak()
        started = time.perf_counter()
        summary = import_folder(folder=path)
        total = time.perf_counter() - started
        print(f"\n{label}: {total:.1f} s total")
        for phase, seconds in summary.phases.items():
            print(f"  {phase:<22} {seconds:7.2f} s")
        for line in summary.lines():
            print(f"  {line}")
        rows_in = sum(counts.values())
        rows_written = rows_in - counts["follow_ups"] + FollowUpVisit.objects.count()
        print(f"  {rows_in / total:,.0f} CSV rows/s; {rows_written:,} registry rows ({rows_written / total:,.0f}/s)")
        _report_peak(label, start_rss)
        print(f"  peak RSS of the process so far {_peak_rss():.0f} MiB")
    print(f"\npeak RSS {_peak_rss():.0f} MiB (after Django setup and migrate: {rss_before:.0f} MiB)")
    return 0


def _peak_rss() -> float:
    """Return this process's peak resident set size in MiB since it started (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _proc_rss(field: str) -> float | None:
    """Return VmRSS (now) or VmHWM (peak since the last reset) of this process in MiB, or None off Linux."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


def _reset_peak() -> float | None:
    """Return the RSS (MiB) at which the kernel's peak (VmHWM) restarts, after resetting it.

    Django's setup and migrate peak above what an import needs, which would hide the
    import's own peak in the process-wide figure; Linux resets VmHWM on writing 5 to clear_refs.
    """
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _proc_rss("VmRSS")


def _report_peak(label: str, start: float | None) -> None:
    peak = _proc_rss("VmHWM")
    if start is not None and peak is not None:
        print(f"  peak RSS during the {label}: {peak:.0f} MiB (RSS when it started: {start:.0f} MiB)")


def _setup(url: str) -> float:
    """Return the peak RSS (MiB) after pointing Django at ``url``, setting it up and migrating."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated {url.rsplit('/', 1)[-1]} in {time.perf_counter() - started:.1f} s")
    return _peak_rss()


def _run_bad(folder: Path, url: str, *, max_errors: int | None) -> int:
    rss_before = _setup(url)
    import io

    from django.core.management import CommandError, call_command

    from registry.models import Procedure

    options = {} if max_errors is None else {"max_errors": max_errors}
    start_rss = _reset_peak()
    started = time.perf_counter()
    try:
        call_command("import_registry", str(folder), stdout=io.StringIO(), **options)
    except CommandError as refused:
        report = str(refused)
    else:
        print("the bad folder was imported: the checks missed every bad row")
        return 1
    total = time.perf_counter() - started
    lines = report.splitlines()
    print(f"\nrefused import: {total:.1f} s total; nothing written: {Procedure.objects.count() == 0}")
    print(f"  error report: {len(lines):,} lines, {len(report.encode()) / 2**20:.2f} MiB")
    print(f"  first line: {lines[0]}")
    if len(lines) > 3:
        print(f"  last line:  {lines[-1]}")
    _report_peak("refused import", start_rss)
    print(f"\npeak RSS {_peak_rss():.0f} MiB (after Django setup and migrate: {rss_before:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
