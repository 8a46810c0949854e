"""Builders for the signal tests: procedures with a given product lot, events by day offset, reviewers with addresses.

The hand-worked registry (``uc_registry``): clinic A (Madrid, ES) gave 10 umbilical-cord MSC
injections (allogeneic), every one followed by an infection on day 5; clinic B (Berlin, DE) gave 30
bone-marrow (BMAC, autologous) injections, 2 of them followed by an infection on day 5. Infection's
registry window is 0-90 days (a closed window: proportions), so for cell_type = umbilical_cord_msc
(and likewise cell_source = allogeneic, clinic = A-MAD, country = ES) the screen compares 10/10 with
2/30: RR = (10/10) / (2/30) = 15, Fisher's exact test on [[10, 0], [2, 28]]. Every other value is
either alone in its attribute (no rest: untested) or has fewer than 3 cases.
"""

from __future__ import annotations

import datetime as dt

import pytest

from events import services as event_services
from registry import services
from registry.choices import Role
from registry.models import Procedure
from tests.factories import AdverseEventFactory, PatientFactory, ProcedureFactory, UserFactory

CUTOFF = dt.date(2024, 6, 30)
PERFORMED = dt.date(2024, 1, 10)
# The four signals of uc_registry: (attribute, value, outcome).
UC_SIGNALS = {
    ("cell_type", "umbilical_cord_msc", "infection"),
    ("cell_source", "allogeneic", "infection"),
    ("clinic", "A-MAD", "infection"),
    ("country", "ES", "infection"),
}


@pytest.fixture(autouse=True)
def eager_celery(request):
    """Run tasks in-process unless the test drives a real worker (whatever the environment says)."""
    if request.node.get_closest_marker("celery_worker"):
        yield
        return
    from config.celery_app import app

    saved = {
        "CELERY_TASK_ALWAYS_EAGER": app.conf.task_always_eager,
        "CELERY_TASK_EAGER_PROPAGATES": app.conf.task_eager_propagates,
    }
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True, CELERY_TASK_EAGER_PROPAGATES=True)
    yield
    app.conf.update(saved)


def make_procedure(
    *, clinic, performed_on: dt.date = PERFORMED, cell_type: str = "bmac", product_lot: str | None = None
) -> Procedure:
    """Return a knee procedure of a new patient of ``clinic``; a product lot of its own unless one is given."""
    donor = cell_type in ("umbilical_cord_msc", "amniotic")
    patient = PatientFactory(clinic=clinic, enrolled_on=min(performed_on, dt.date(2023, 1, 10)))
    extra = {"product_lot": product_lot} if product_lot is not None else {}
    return ProcedureFactory(
        patient=patient,
        performed_on=performed_on,
        cell_type=cell_type,
        cell_source="allogeneic" if donor else "autologous",
        processing="minimally_manipulated",
        **extra,
    )


def add_event(procedure: Procedure, day: int, *, category: str = "infection", retracted: bool = False):
    """Return an adverse event of ``procedure`` with onset ``day`` days after it."""
    event = AdverseEventFactory(
        procedure=procedure, category=category, onset_on=procedure.performed_on + dt.timedelta(days=day)
    )
    if retracted:
        event = event_services.adverse_event_retract(actor=None, event=event, reason="Entered twice.")
    return event


def add_bmac_clinic_b(clinic_b) -> list[Procedure]:
    """Return clinic B's 30 BMAC procedures, 2 of them with an infection on day 5."""
    procedures = [make_procedure(clinic=clinic_b) for _ in range(30)]
    for procedure in procedures[:2]:
        add_event(procedure, 5)
    return procedures


def add_uc_clinic_a(clinic_a) -> list[Procedure]:
    """Return clinic A's 10 umbilical-cord MSC procedures, each with an infection on day 5."""
    procedures = [make_procedure(clinic=clinic_a, cell_type="umbilical_cord_msc") for _ in range(10)]
    for procedure in procedures:
        add_event(procedure, 5)
    return procedures


@pytest.fixture
def uc_registry(clinic_a, clinic_b):
    """Return the hand-worked registry of the module docstring: {"a": clinic A's procedures, "b": clinic B's}."""
    return {"b": add_bmac_clinic_b(clinic_b), "a": add_uc_clinic_a(clinic_a)}


@pytest.fixture
def reviewers(root):
    """Return who is told of a run, and who is not.

    Told: the registry administrator (root) and a superuser. Not told: an inactive registry
    administrator, one without an address, and a clinician (alice is created by the tests that need her).
    """
    root.email = "root@registry.example"
    root.save(update_fields=["email"])
    superuser = UserFactory(username="sue", email="sue@registry.example", is_superuser=True, is_staff=True)
    gone = UserFactory(username="gone", email="gone@registry.example", is_active=False)
    services.membership_create(user=gone, role=Role.REGISTRY_ADMIN, clinic=None)
    silent = UserFactory(username="silent", email="")
    services.membership_create(user=silent, role=Role.REGISTRY_ADMIN, clinic=None)
    return {"told": ["root@registry.example", "sue@registry.example"], "superuser": superuser}
