"""Builders for the safety tests: clinics by country, cases with the facts a rule reads, users with addresses.

Cases go through the events services (the factory writes through adverse_event_save), so the
events.hooks.case_changed receiver evaluates the rules exactly as it does for the admin and the API.
"""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.apps import apps

from config.celery_app import app
from events.models import AdverseEvent
from registry import services as registry_services
from registry.choices import Role
from safety.models import DueReport, ReportingRule
from tests.conftest import confirmed_device
from tests.factories import AdverseEventFactory, ClinicFactory, PatientFactory, ProcedureFactory, UserFactory
from tests.meddra.conftest import load

PERFORMED = dt.date(2026, 1, 20)
ONSET = dt.date(2026, 1, 25)
AWARE = dt.date(2026, 1, 30)
HCTP, ICH_15, ICH_7 = "us-hctp-1271-350", "ich-e2a-15-day", "ich-e2a-7-day"

# A serious (hospitalisation), unexpected, possibly related case: ICH E2A, 15 days.
SERIOUS_UNEXPECTED_RELATED = {
    "category": "infection",
    "term": "Septic arthritis of the treated knee",
    "grade": 3,
    "outcome": "recovering",
    "serious": True,
    "serious_hospitalisation": True,
    "causality_procedure": "possible",
    "causality_product": "unlikely",
    "expectedness": "unexpected",
    "action_taken": "hospitalisation",
}


# The data migration that ships the rules (a module name starting with a digit: imported by name).
SHIPPED_RULES = importlib.import_module("safety.migrations.0002_reporting_rules")


@pytest.fixture(autouse=True)
def shipped_rules(request):
    """Make sure the shipped rules exist: a transactional test (here or in another app) flushes every table,
    the migration's rows included, and the tests after it would find no rule."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    SHIPPED_RULES.add_rules(apps, None)


@pytest.fixture(autouse=True)
def eager_celery(request):
    """Run tasks in-process unless the test drives a real worker (whatever the environment says)."""
    if request.node.get_closest_marker("celery_worker"):
        yield
        return
    saved = {"task_always_eager": app.conf.task_always_eager, "task_eager_propagates": app.conf.task_eager_propagates}
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(saved)


@pytest.fixture
def clinic_us(db):
    return ClinicFactory(code="C-NYC", name="Clinic C New York", country="US", city="New York")


@pytest.fixture
def clinic_br(db):
    """A clinic in a country neither shipped rule covers."""
    return ClinicFactory(code="D-SAO", name="Clinic D Sao Paulo", country="BR", city="Sao Paulo")


@pytest.fixture
def meddra_27_1(db):
    """Return MedDRA 27.1 (synthetic) loaded."""
    return load("27.1")


def make_procedure(clinic, *, performed_on: dt.date = PERFORMED, cell_type: str = "bmac"):
    """Return a knee procedure of a new patient of ``clinic``."""
    patient = PatientFactory(clinic=clinic, birth_year=1961, sex="F")
    return ProcedureFactory(
        patient=patient, performed_on=performed_on, cell_type=cell_type, indication="Knee osteoarthritis"
    )


def make_case(clinic, *, onset_on: dt.date = ONSET, aware_on: dt.date = AWARE, **fields) -> AdverseEvent:
    """Return a case of ``clinic`` (created through events.services, so the rules are evaluated)."""
    procedure = fields.pop("procedure", None) or make_procedure(clinic, performed_on=min(PERFORMED, onset_on))
    values = {**SERIOUS_UNEXPECTED_RELATED, **fields}
    return AdverseEventFactory(procedure=procedure, onset_on=onset_on, aware_on=aware_on, **values)


def due_codes(event: AdverseEvent, **filters) -> list[str]:
    """Return the rule codes of the event's due reports, in creation order."""
    return list(DueReport.objects.filter(event=event, **filters).order_by("id").values_list("rule__code", flat=True))


def rule(code: str) -> ReportingRule:
    return ReportingRule.objects.get(code=code)


def with_email(user, address: str):
    """Return ``user`` with an email address."""
    user.email = address
    user.save(update_fields=["email"])
    return user


@pytest.fixture
def told(dora, sam, alice, charlie, clinic_b):
    """Return the addresses told of clinic A's due reports (dora, sam) after giving every persona an address.

    Not told: alice (a clinician), charlie and clinic B's coordinator (another clinic), an inactive
    safety reviewer and one without an address.
    """
    for user in (dora, sam, alice, charlie):
        with_email(user, f"{user.username}@registry.example")
    erin = with_email(UserFactory(username="erin"), "erin@registry.example")
    registry_services.membership_create(user=erin, role=Role.COORDINATOR, clinic=clinic_b)
    gone = with_email(UserFactory(username="gone", is_active=False), "gone@registry.example")
    registry_services.membership_create(user=gone, role=Role.SAFETY_REVIEWER, clinic=None)
    silent = UserFactory(username="silent", email="")
    registry_services.membership_create(user=silent, role=Role.SAFETY_REVIEWER, clinic=None)
    confirmed_device(erin)
    return ["dora@registry.example", "sam@registry.example"]
