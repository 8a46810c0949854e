"""Property-based tests of the whole OpenAPI schema with Schemathesis, in-process, as a clinician.

Every operation of /api/schema/ gets generated requests (explicit examples, the coverage
phase's boundary values and hypothesis fuzzing; positive and negative data) sent to the
WSGI application in this process as alice (a clinician at clinic A) with a DRF token.
Each response must pass three checks: no 5xx (not_a_server_error), the body matches the
documented schema for its status (response_schema_conformance), and data the schema
forbids is refused with a 4xx (negative_data_rejection).

Random ids and references would only ever meet 404s and "does not exist", so where a
generated value is valid (its component was generated in positive mode) some of them are
swapped for rows seeded here: alice's own rows (reads, updates with the current ETag,
creates under her procedure) and clinic B's rows (which must answer 404). A swap replaces
a valid value with another valid value, so a case's positive/negative label stays true.

The run is deterministic (fixed seed, derandomized, no example database) so CI sees the
same cases every time; the number of cases is printed in the terminal summary.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from config.wsgi import application
from events import services as event_services
from events.models import AdverseEvent
from registry.models import Clinic, FollowUpVisit, Patient, Procedure
from tests.factories import AdverseEventFactory, PatientFactory, ProcedureFactory

MAX_EXAMPLES = 25  # per operation and generation mode in the fuzzing phase
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20_250_101,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            # The token is added to every call; generated Authorization values would only test 401s.
            "with-security-parameters": False,
        },
        # Stateful link-following needs OpenAPI links, which the schema does not declare.
        "phases": {"stateful": {"enabled": False}},
    }
)
# The schema endpoint wants an authenticated caller, so the schema is loaded by a fixture, in the test.
schema = schemathesis.pytest.from_fixture("api_schema")
CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection]


class CaseCountReport:
    """Count the generated cases and print the total in pytest's terminal summary."""

    name = "schemathesis-case-count"

    def __init__(self) -> None:
        self.by_mode: Counter[str] = Counter()
        self.operations: set[str] = set()
        self.started = time.monotonic()

    def add(self, case) -> None:
        self.operations.add(case.operation.label)
        self.by_mode[case.meta.generation.mode.value if case.meta else "explicit"] += 1

    def pytest_terminal_summary(self, terminalreporter) -> None:
        total = sum(self.by_mode.values())
        modes = ", ".join(f"{mode} {count}" for mode, count in sorted(self.by_mode.items()))
        terminalreporter.write_sep("-", "schemathesis")
        terminalreporter.write_line(
            f"schemathesis: {total} generated cases ({modes}) over {len(self.operations)} operations "
            f"in {time.monotonic() - self.started:.1f} s"
        )


@pytest.fixture(scope="module")
def case_count(request) -> CaseCountReport:
    manager = request.config.pluginmanager
    report = manager.get_plugin(CaseCountReport.name)
    if report is None:
        report = CaseCountReport()
        manager.register(report, CaseCountReport.name)
    return report


@pytest.fixture
def in_process_wsgi(monkeypatch):
    """Let WSGI calls share the test's transaction and never be throttled."""
    # Django's test client does the same: closing "old" connections at the end of a
    # request would close the connection holding the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": None, "anon": None, "login": None})
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_token(alice) -> str:
    return Token.objects.create(user=alice).key


@pytest.fixture
def api_schema(api_token, in_process_wsgi):
    """Return the schema as served by /api/schema/ to alice."""
    return schemathesis.openapi.from_wsgi(
        "/api/schema/", application, config=CONFIG, headers={"Authorization": f"Token {api_token}"}
    )


@pytest.fixture
def rows(world, clinic_a, clinic_b):
    """Return the seeded rows by kind: alice's clinic A first, then clinic B's."""
    ae_a, ae_b = world["a"], world["b"]
    withdrawn = PatientFactory(clinic=clinic_a, enrolled_on=dt.date(2022, 3, 1), withdrawn_on=dt.date(2024, 6, 30))
    second = ProcedureFactory(patient=withdrawn, performed_on=dt.date(2022, 4, 2), site="spine", cell_type="adipose_svf")
    retracted = AdverseEventFactory(procedure=second, category="infection", grade=2, outcome="recovering")
    event_services.adverse_event_retract(actor=None, event=retracted, reason="Entered on the wrong patient.")
    own = [ae_a.procedure, second]
    other = [ae_b.procedure]
    return {
        "clinics": [clinic_a.pk, clinic_b.pk],
        "patients": [p.patient_id for p in own] + [p.patient_id for p in other],
        "procedures": [p.pk for p in own + other],
        "follow-up-visits": list(
            FollowUpVisit.objects.filter(procedure__in=own + other).order_by("procedure_id", "due_on")
            .values_list("pk", flat=True)[::4]
        ),
        "adverse-events": [ae_a.pk, retracted.pk, ae_b.pk],
        "AdverseEvent": [ae_a.pk, retracted.pk, ae_b.pk],
        "registry_ids": [p.patient.registry_id for p in own + other],
        "procedure_ids": [p.external_id for p in own],
        "clinic_code": clinic_a.code,
    }


MODELS = {
    "patients": Patient,
    "procedures": Procedure,
    "follow-up-visits": FollowUpVisit,
    "adverse-events": AdverseEvent,
    "clinics": Clinic,
}


def _positive(case, location: ParameterLocation) -> bool:
    info = case.meta.components.get(location) if case.meta else None
    return info is not None and info.mode.is_positive


def _pick(values: list, generated) -> object:
    """Return one of ``values`` chosen by the generated value (deterministic for a given case)."""
    return values[zlib.crc32(repr(generated).encode()) % len(values)]


def aim_at_seeded_rows(case, rows: dict) -> None:
    """Swap some valid generated ids and references for seeded ones (see the module docstring)."""
    kind = next((part for part in case.path.split("/") if part in rows), None)
    pk = case.path_parameters.get("id")
    if kind and isinstance(pk, int) and _positive(case, ParameterLocation.PATH) and pk % 4:
        pk = case.path_parameters["id"] = _pick(rows[kind], pk)
        if_match = case.headers.get("If-Match")
        model = MODELS.get(kind)
        if model and isinstance(if_match, str) and _positive(case, ParameterLocation.HEADER) and len(if_match) % 3:
            version = model.objects.filter(pk=pk).values_list("version", flat=True).first()
            case.headers["If-Match"] = f'"{version or 1}"'
    if isinstance(case.query, dict) and _positive(case, ParameterLocation.QUERY):
        for name in ("patient", "subject"):
            if isinstance(case.query.get(name), str) and len(case.query[name]) % 3:
                case.query[name] = _pick(rows["registry_ids"], case.query[name])
    body = case.body
    if isinstance(body, dict) and _positive(case, ParameterLocation.BODY):
        references = {"procedure": rows["procedure_ids"], "patient": rows["registry_ids"][:2]}
        for name, values in references.items():
            if isinstance(body.get(name), str) and len(body[name]) % 3:
                body[name] = _pick(values, body[name])
        if isinstance(body.get("clinic"), str) and len(body["clinic"]) % 2:
            body["clinic"] = rows["clinic_code"]


@pytest.mark.django_db
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
def test_api_conforms_to_its_schema(case, api_token, rows, case_count):
    aim_at_seeded_rows(case, rows)
    case_count.add(case)
    case.call_and_validate(headers={"Authorization": f"Token {api_token}"}, checks=CHECKS)
