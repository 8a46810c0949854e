"""Shared builders for the run-document tests: a registry with one clinic far above the rest."""

from __future__ import annotations

import datetime as dt

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


def finished_run(*, actor, strata=("site", "cell_type"), outcomes=None, cutoff_on=CUTOFF):
    """Return a succeeded run computed synchronously."""
    run = incidence_run_start(actor=actor, cutoff_on=cutoff_on, strata=list(strata), outcomes=outcomes)
    return incidence_run_execute(run_id=run.pk, task_id=f"t-{run.pk}")
