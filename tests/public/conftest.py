"""A registry to publish: five clinics in four countries, one of them small and alone in its country.

- A-MAD (ES, GMP, accredited by "ACSA" until 2030): 40 procedures, 4 infections (a small count);
- D-VAL (ES, not GMP, accreditation expired 2020): 25 procedures, no infection;
- B-BER (DE, GMP): 30 procedures, 12 infections;
- C-POR (PT, not GMP): 6 procedures (a small count), 2 infections; alone in Portugal, so the PT row
  would print its counts, and the not-GMP margin minus D-VAL would too;
- E-LYO (FR, GMP; code starting with "-" in the formula-safety test only): 20 procedures, 15 infections.

Injection-site reactions on a few procedures of each clinic. Runs use the registry's windows (infection
0-90 days, on proportions; any adverse event, open, on person-time).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import transaction

from reports.models import IncidenceRun
from reports.services import incidence_run_execute, incidence_run_start
from tests.factories import ClinicFactory
from tests.reports.conftest import add_event, complete_visit, make_procedure

CUTOFF = dt.date(2024, 6, 30)
START = dt.date(2023, 1, 15)
OUTCOMES = ["infection", "any", "injection_site_reaction"]

# code: (country, gmp, accreditation body, expiry, procedures, infections, site reactions)
CLINICS = {
    "A-MAD": ("ES", True, "ACSA", dt.date(2030, 1, 1), 40, 4, 14),
    "D-VAL": ("ES", False, "ISO 15189", dt.date(2020, 1, 1), 25, 0, 3),
    "B-BER": ("DE", True, "", None, 30, 12, 11),
    "C-POR": ("PT", False, "", None, 6, 2, 1),
    "E-LYO": ("FR", True, "COFRAC", dt.date(2029, 6, 1), 20, 15, 12),
}


def build_public_registry(clinics=CLINICS) -> dict:
    """Return the clinics by code, with their procedures, events and some completed visits."""
    out = {}
    for code, (country, gmp, body, expires, count, infections, reactions) in clinics.items():
        clinic = ClinicFactory(
            code=code,
            name=f"Clinic {code}",
            country=country,
            city="City",
            gmp_certified=gmp,
            accreditation_body=body,
            accreditation_expires_on=expires,
        )
        out[code] = clinic
        for i in range(count):
            site, cell_type = ("hip", "adipose_svf") if i % 2 else ("knee", "bmac")
            p = make_procedure(clinic=clinic, performed_on=START + dt.timedelta(days=i), site=site, cell_type=cell_type)
            if i < infections:
                add_event(p, 3 + i % 5, category="infection")
            if count - i <= reactions:
                add_event(p, 1, category="injection_site_reaction")
            if i % 3:
                complete_visit(p, 2)
                complete_visit(p, 7)
    return out


def run_of(outcomes=OUTCOMES):
    """Return a succeeded run with the registry's windows, computed here (no worker)."""
    run = incidence_run_start(actor=None, cutoff_on=CUTOFF, strata=["site"], outcomes=outcomes, windows_mode="registry")
    # Outside a test transaction the eager task has already run it on commit; inside one, run it here.
    incidence_run_execute(run_id=run.pk, task_id=f"public-{run.pk}")
    run = IncidenceRun.objects.get(pk=run.pk)
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture(scope="module")
def public_run(django_db_setup, django_db_blocker):
    """The public registry and its succeeded run (module-wide, rolled back at the end)."""
    with django_db_blocker.unblock(), transaction.atomic():
        build_public_registry()
        yield run_of()
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


SMALL = {
    "S-ONE": ("ES", True, "", None, 4, 1, 1),
    "S-TWO": ("DE", False, "", None, 3, 0, 1),
}


@pytest.fixture
def small_run(db):
    """A succeeded run of a tiny registry (two clinics, seven procedures): for the publication's own rules."""
    build_public_registry(SMALL)
    return run_of(["infection"])
