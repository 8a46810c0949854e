"""Shared builders for the run-document tests: a registry with one clinic far above the rest (crude), and one
whose clinics differ after adjustment for case mix, with hand-worked expected counts and follow-up."""

from __future__ import annotations

import datetime as dt
import math
import re
from html import unescape

from django.test import Client

from reports.services import incidence_run_execute, incidence_run_start
from tests.factories import ClinicFactory
from tests.reports.conftest import add_event, complete_visit, make_procedure

CUTOFF = dt.date(2024, 6, 30)
START = dt.date(2023, 1, 15)


def build_hot_registry(clinic_a, clinic_b):
    """Return the "hot" clinic C: A and B have a year of quiet follow-up, C an infection within days."""
    hot = ClinicFactory(code="C-HOT", name="Clinic C Hot", country="PT", city="Porto")
    for clinic, events in ((clinic_a, {0: 100, 1: 200}), (clinic_b, {0: 50})):
        for i in range(10):
            site, cell_type = ("knee", "bmac") if i % 2 else ("hip", "adipose_svf")
            p = make_procedure(clinic=clinic, performed_on=START + dt.timedelta(days=i), site=site, cell_type=cell_type)
            if i in events:
                add_event(p, events[i], category="infection", grade=3, serious=True)
            add_event(p, 30, category="injection_site_reaction", retracted=True)
            complete_visit(p, 360)
    for i in range(6):
        p = make_procedure(clinic=hot, performed_on=START + dt.timedelta(days=i), birth_year=1930)
        add_event(p, 2, category="infection")
        complete_visit(p, 20)
    return hot


def finished_run(
    *, actor, strata=("site", "cell_type"), outcomes=None, cutoff_on=CUTOFF, windows_mode="open", unit="procedure"
):
    """Return a succeeded run computed synchronously."""
    run = incidence_run_start(
        actor=actor,
        cutoff_on=cutoff_on,
        strata=list(strata),
        outcomes=outcomes,
        windows_mode=windows_mode,
        unit=unit,
    )
    return incidence_run_execute(run_id=run.pk, task_id=f"t-{run.pk}")


def build_provider_registry(clinic_a, clinic_b):
    """Return the clinic C-HOT (not GMP certified; A and B are) of a registry whose clinics share one case mix.

    Every patient is a woman born 1970 (age band 50-59 in 2023); procedures alternate knee/bmac and
    hip/adipose_svf. Infections (onset day 5 at B, day 2 at C), all within the 0-90 day window:

    - A-MAD (ES): 30 procedures, no infection; the first 3 follow-up visits of each completed on time;
    - B-BER (DE): 30 procedures, the first 10 infected (5 knee, 5 hip); day_2 completed on time, except
      procedure 21's, completed on day 600 (after the cut-off); procedure 20's patient withdrew on day 20;
      plus 3 shoulder procedures (a stratum of fewer than 10; day_2 completed on day 30) and 12 spine
      procedures performed on the cut-off day (no person-time);
    - C-HOT (PT, not GMP certified): 10 procedures, all infected, no visit completed.

    Hand-worked, infection on proportions: per stratum knee and hip, 35 procedures and 10 cases, p = 2/7
    (shoulder and spine: no case, p = 0). Expected: A 30 x 2/7 = 60/7, B 60/7, C 10 x 2/7 = 20/7.
    Follow-up visits due by the cut-off (day_2 to year_1: 6 per procedure of early 2023): A 180 (90
    completed), B 29 x 6 + 2 (the withdrawn patient's day_2 and week_1) + 3 x 6 (shoulder) = 194 (29 + 3
    completed), C 60 (0).
    """
    hot = ClinicFactory(code="C-HOT", name="Clinic C Hot", country="PT", city="Porto", gmp_certified=False)
    for clinic, count in ((clinic_a, 30), (clinic_b, 30), (hot, 10)):
        for i in range(count):
            site, cell_type = ("hip", "adipose_svf") if i % 2 else ("knee", "bmac")
            performed = START + dt.timedelta(days=i)
            withdrawn = performed + dt.timedelta(days=20) if clinic == clinic_b and i == 20 else None
            p = make_procedure(
                clinic=clinic, performed_on=performed, site=site, cell_type=cell_type, withdrawn_on=withdrawn
            )
            if clinic == hot:
                add_event(p, 2, category="infection")
            elif clinic == clinic_b:
                if i < 10:
                    add_event(p, 5, category="infection")
                complete_visit(p, 600 if i == 21 else 2)
            else:
                for day in (2, 7, 30):
                    complete_visit(p, day)
    for i in range(3):
        p = make_procedure(clinic=clinic_b, performed_on=START + dt.timedelta(days=i), site="shoulder")
        complete_visit(p, 30)
    for _ in range(12):
        make_procedure(clinic=clinic_b, performed_on=CUTOFF, site="spine")
    return hot


# --- Reading the report page and its numbers ---------------------------------------------------------


def three_figures(value: float) -> str:
    """Return ``value`` to three significant figures, written out (the tests' own rounding, by the decimal
    exponent, independent of reports.documents.formatting)."""
    if value == 0:
        return "0"
    decimals = 2 - math.floor(math.log10(abs(value)))
    text = f"{round(value, decimals):.{max(decimals, 0)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def report_page(client, run, **query) -> str:
    """Return the HTML of the run's report page for GET ``query``."""
    response = client.get(f"/admin/reports/incidencerun/{run.pk}/report/", query)
    assert response.status_code == 200
    return response.content.decode()


def _texts(cells: list[str]) -> list[str]:
    return [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """Return the body rows of the page's table ``table_id`` as lists of cell texts."""
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert match, f"no table {table_id}"
    body = match.group(1).split("<tbody>", 1)[1]
    return [_texts(re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def table_head(html: str, table_id: str) -> list[str]:
    """Return the column headings of the page's table ``table_id``."""
    match = re.search(rf'<table id="{table_id}">\s*<thead>(.*?)</thead>', html, re.S)
    assert match, f"no table {table_id}"
    return _texts(re.findall(r"<th[^>]*>(.*?)</th>", match.group(1), re.S))
