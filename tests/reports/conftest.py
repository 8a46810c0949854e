"""Builders for hand-worked registries: procedures, visits and events by day offsets."""

from __future__ import annotations

import datetime as dt

import pytest

from events import services as event_services
from registry import services
from registry.models import Procedure
from tests.factories import AdverseEventFactory, PatientFactory, ProcedureFactory

_EXPANDED = {"bm_msc_expanded", "adipose_msc_expanded"}
_DONOR = {"umbilical_cord_msc", "amniotic"}


def make_procedure(
    *,
    clinic,
    performed_on: dt.date,
    site: str = "knee",
    cell_type: str = "bmac",
    sex: str = "F",
    birth_year: int = 1970,
    withdrawn_on: dt.date | None = None,
    death_date: dt.date | None = None,
) -> Procedure:
    """Return a new procedure of a new patient enrolled on or before ``performed_on``."""
    enrolled_on = min(performed_on, dt.date(2023, 1, 10))
    patient = PatientFactory(
        clinic=clinic,
        sex=sex,
        birth_year=birth_year,
        enrolled_on=enrolled_on,
        withdrawn_on=withdrawn_on,
        death_date=death_date,
    )
    return ProcedureFactory(
        patient=patient,
        performed_on=performed_on,
        site=site,
        cell_type=cell_type,
        cell_source="allogeneic" if cell_type in _DONOR else "autologous",
        processing="culture_expanded" if cell_type in _EXPANDED else "minimally_manipulated",
    )


def add_event(
    procedure: Procedure,
    day: int,
    *,
    category: str = "infection",
    grade: int = 1,
    serious: bool = False,
    retracted: bool = False,
):
    """Return an adverse event of ``procedure`` with onset ``day`` days after it."""
    extra = {"serious": True, "serious_hospitalisation": True} if serious else {}
    event = AdverseEventFactory(
        procedure=procedure,
        category=category,
        onset_on=procedure.performed_on + dt.timedelta(days=day),
        grade=grade,
        outcome="fatal" if grade == 5 else "recovered",
        **extra,
    )
    if retracted:
        event = event_services.adverse_event_retract(actor=None, event=event, reason="Entered twice.")
    return event


def complete_visit(procedure: Procedure, day: int):
    """Return the next open scheduled visit of ``procedure``, completed ``day`` days after it."""
    visit = procedure.visits.filter(completed_on__isnull=True).order_by("due_on").first()
    return services.visit_record_completion(
        actor=None, visit=visit, completed_on=procedure.performed_on + dt.timedelta(days=day)
    )


@pytest.fixture(autouse=True)
def eager_celery(request):
    """Run tasks in-process unless the test drives a real worker (whatever the environment says)."""
    if request.node.get_closest_marker("celery_worker"):
        yield
        return
    from config.celery_app import app

    # The app reads Django settings under the CELERY namespace: overrides use those names.
    saved = {
        "CELERY_TASK_ALWAYS_EAGER": app.conf.task_always_eager,
        "CELERY_TASK_EAGER_PROPAGATES": app.conf.task_eager_propagates,
    }
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True, CELERY_TASK_EAGER_PROPAGATES=True)
    yield
    app.conf.update(saved)


@pytest.fixture
def two_clinics(clinic_a, clinic_b):
    """Return a small registry: two knee procedures with infections at clinic A, one at clinic B."""
    a1 = make_procedure(clinic=clinic_a, performed_on=dt.date(2023, 1, 15))
    add_event(a1, 3)
    complete_visit(a1, 30)
    a2 = make_procedure(clinic=clinic_a, performed_on=dt.date(2023, 1, 15), cell_type="adipose_svf")
    complete_visit(a2, 400)
    b1 = make_procedure(clinic=clinic_b, performed_on=dt.date(2023, 1, 15))
    add_event(b1, 0)
    add_event(b1, 5, category="neoplasm", grade=3, serious=True)
    return {"a1": a1, "a2": a2, "b1": b1}
