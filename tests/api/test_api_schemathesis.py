"""Property-based tests of the whole OpenAPI schema with Schemathesis, in-process, as a clinician.

Every operation of /api/schema/ gets generated requests (explicit examples, the coverage
phase's boundary values and hypothesis fuzzing; positive and negative data) sent to the
WSGI application in this process as alice (a clinician at clinic A) with a DRF token.
Each response must pass three checks: no 5xx (not_a_server_error), the body matches the
documented schema for its status (response_schema_conformance), and data the schema
forbids is refused with a 4xx (negative_data_rejection).

Random ids and references would only ever meet 404s and "does not exist", so where a
generated value is valid (its component was generated in positive mode) some of them are
swapped for seeded ones: alice's own rows (reads, updates with the current ETag, creates
under her patient or procedure, with a fresh Idempotency-Key) and clinic B's rows (which
must answer 404), and half the valid bodies get clinically coherent dates and grades so
that writes succeed. A swap replaces a valid value with another valid value, so a case's
positive/negative label stays true. Form bodies with an empty field travel as JSON (see
send_empty_form_fields_as_json).

Failures that are bugs in files this test's author may not fix are listed in KNOWN_BUGS
with their fix, and only those exact failures are tolerated.

Hypothesis never generates the inputs that made the review's 500s (lone surrogates, NULs,
bodies nested thousands deep or larger than the server takes), so some of the valid cases get
one of them swapped in (make_hostile); each must answer 4xx (400, or 413 for the size), on top
of the three checks.

The run is deterministic (fixed seed, derandomized, no example database) so CI sees the
same cases every time; the number of cases and the time taken are printed in pytest's
terminal summary ("schemathesis: N generated cases ...").
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
import zlib
from collections import Counter
from dataclasses import dataclass

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.exceptions import ParseError
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.openapi.checks import JsonSchemaError
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from config.wsgi import application
from core.parsers import refuse_unstorable
from events import services as event_services
from events.models import AdverseEvent
from registry.models import FollowUpVisit, Patient, Procedure
from tests.factories import AdverseEventFactory, PatientFactory, ProcedureFactory, issue_api_token

MAX_EXAMPLES = 25  # per operation and generation mode in the fuzzing phase
# schemathesis' default answers to invalid data, plus 413 for a body over the size limit (make_hostile).
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
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
        # A body over the size limit is refused with 413 (make_hostile sends some), a rejection like the others.
        "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
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
        self.hostile: Counter[str] = Counter()
        self.operations: set[str] = set()
        self.started = time.monotonic()

    def add(self, case, hostile: Hostile | None = None) -> None:
        self.operations.add(case.operation.label)
        self.by_mode[case.meta.generation.mode.value if case.meta else "explicit"] += 1
        if hostile is not None:
            self.hostile[hostile.kind] += 1

    def pytest_terminal_summary(self, terminalreporter) -> None:
        total = sum(self.by_mode.values())
        modes = ", ".join(f"{mode} {count}" for mode, count in sorted(self.by_mode.items()))
        terminalreporter.write_sep("-", "schemathesis")
        hostile = ", ".join(f"{kind} {count}" for kind, count in sorted(self.hostile.items()))
        terminalreporter.write_line(
            f"schemathesis: {total} generated cases ({modes}) over {len(self.operations)} operations "
            f"in {time.monotonic() - self.started:.1f} s; {sum(self.hostile.values())} of them hostile ({hostile})"
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
    return issue_api_token(alice)


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
    second = ProcedureFactory(
        patient=withdrawn, performed_on=dt.date(2022, 4, 2), site="spine", cell_type="adipose_svf"
    )
    retracted = AdverseEventFactory(procedure=second, category="infection", grade=2, outcome="recovering")
    event_services.adverse_event_retract(actor=None, event=retracted, reason="Entered on the wrong patient.")
    own = [ae_a.procedure, second]
    other = [ae_b.procedure]
    return {
        "clinics": [clinic_a.pk, clinic_b.pk],
        "patients": [p.patient_id for p in own] + [p.patient_id for p in other],
        "procedures": [p.pk for p in own + other],
        "follow-up-visits": list(
            FollowUpVisit.objects.filter(procedure__in=own + other)
            .order_by("procedure_id", "due_on")
            .values_list("pk", flat=True)[::4]
        ),
        "adverse-events": [ae_a.pk, retracted.pk, ae_b.pk],
        "AdverseEvent": [ae_a.pk, retracted.pk, ae_b.pk],
        "registry_ids": [p.patient.registry_id for p in own + other],
        "procedure_ids": [p.external_id for p in own],
        "clinic_code": clinic_a.code,
    }


def _reports_error(failure, check) -> bool:
    return (
        "/api/v1/reports/incidence-runs/" in failure.operation
        and isinstance(failure, JsonSchemaError)
        and check(failure)
    )


def _is_null_duration(failure) -> bool:
    return failure.instance is None and bool(failure.instance_path) and failure.instance_path[-1] == "duration_seconds"


def _is_undocumented_invalid(failure) -> bool:
    body = failure.instance if isinstance(failure.instance, dict) else {}
    errors = body.get("errors") or []
    return body.get("type") == "validation_error" and bool(errors) and all(e.get("code") == "invalid" for e in errors)


# Bugs this test found in files it may not fix, each with its fix; delete an entry once its fix is in.
KNOWN_BUGS: list = []  # failures tolerated until a fix lands: each entry names the bug and its fix


def _is_known_bug(failure) -> bool:
    return any(known(failure) for known in KNOWN_BUGS)


# The versioned rows, whose current ETag an update's If-Match may be given.
MODELS = {
    "patients": Patient,
    "procedures": Procedure,
    "follow-up-visits": FollowUpVisit,
    "adverse-events": AdverseEvent,
}


def _positive(case, location: ParameterLocation) -> bool:
    info = case.meta.components.get(location) if case.meta else None
    return info is not None and info.mode.is_positive


# Schema-valid values that also pass the clinical rules (onset after the procedure, grade 5 only
# when fatal, serious exactly when a criterion holds...), which random data almost never does.
# Laid over half of the valid bodies, so creates and updates succeed and their 201/200 bodies
# get validated too; the other generated fields (terms, codes, free text) keep their fuzz.
COHERENT = {
    "adverse-events": {
        "onset_on": "2024-02-01",
        "grade": 1,
        "outcome": "recovered",
        "resolved_on": None,
        "serious": False,
        **dict.fromkeys(
            (
                "serious_death",
                "serious_life_threatening",
                "serious_hospitalisation",
                "serious_disability",
                "serious_congenital_anomaly",
                "serious_medically_important",
            ),
            False,
        ),
    },
    "procedures": {
        "performed_on": "2024-01-10",
        "cell_source": "autologous",
        "cell_type": "bmac",
        "processing": "minimally_manipulated",
        "cell_dose_millions": "25.00",
        "volume_ml": "3.00",
    },
    "patients": {
        "birth_year": 1970,
        "enrolled_on": "2024-01-01",
        "consent_on": None,
        "withdrawn_on": None,
        "death_date": None,
    },
    "follow-up-visits": {"completed_on": "2024-03-01"},
}


def _roll(case, purpose: str) -> int:
    """Return 0-99, fixed by the generated case and ``purpose``: whether this case gets that swap."""
    generated = (case.path_parameters, case.query, dict(case.headers or {}), case.body)
    return zlib.crc32(f"{purpose}:{generated!r}".encode()) % 100


FRESH_KEYS = itertools.count(1)


def send_empty_form_fields_as_json(case) -> None:
    """Send a form body (multipart or urlencoded) that has an empty field as JSON instead.

    A form cannot tell "" from null: DRF reads an empty form field of a nullable field as null,
    as the browsable API's forms need, so completed_on="" is a valid "not completed" there, not
    the invalid date the generator meant. And Werkzeug's test client (the in-process transport)
    writes an empty multipart field without the CRLF before the next boundary, so Django drops
    the field altogether. JSON sends exactly the value that was generated.
    """
    body = case.body
    forms = ("multipart/form-data", "application/x-www-form-urlencoded")
    if isinstance(body, dict) and (case.media_type or "").split(";")[0] in forms:
        values = [v for value in body.values() for v in (value if isinstance(value, list) else [value])]
        if "" in values:
            case.media_type = "application/json"
            # A Content-Type header the case carries would still name the form (and win over media_type).
            for name in [name for name in case.headers or {} if name.lower() == "content-type"]:
                del case.headers[name]


HOSTILE_PERCENT = 12  # of the cases whose body or query was generated valid
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000  # the review's body: Python's json gives up long before the end


@dataclass
class Hostile:
    """An input swapped into a case that the API must refuse: where it went and the answers allowed."""

    kind: str
    where: str | None  # None: the body held another refused value, so any place may be named first
    statuses: range | tuple[int, ...] = range(400, 500)

    def check(self, response) -> None:
        assert response.status_code in self.statuses, (
            f"{self.kind} in {self.where} answered {response.status_code}: {response.text[:300]}"
        )
        errors = response.json()["errors"] if response.status_code == 400 else []
        if self.kind in ("surrogate", "nul", "nul-query") and errors and errors[0]["code"] == "parse_error":
            # The parser (or the request guard, for the query) names where it refused the request.
            assert self.where is None or errors[0]["attr"] == self.where, errors


def refused_somewhere(data) -> bool:
    """Return whether data (a generated body) already holds a value the parsers refuse."""
    try:
        refuse_unstorable(data)
    except ParseError:
        return True
    return False


def make_hostile(case) -> Hostile | None:
    """Swap one valid value of some cases for one the API must refuse (see the module docstring)."""
    roll = _roll(case, "hostile")
    # The coverage phase also sends other methods to a path (to see 405s); those never read the body.
    if roll >= HOSTILE_PERCENT or case.method.upper() != case.operation.method.upper():
        return None
    media_type = (case.media_type or "").split(";")[0]
    sent_as = [value for name, value in (case.headers or {}).items() if name.lower() == "content-type"]
    if sent_as and str(sent_as[0]).split(";")[0].strip() != media_type:
        return None  # the header, not media_type, decides how the body is read: a mismatch is another test
    body = case.body
    if isinstance(body, dict) and _positive(case, ParameterLocation.BODY):
        strings = sorted(name for name, value in body.items() if isinstance(value, str))
        kinds = ["nul", "deep", "huge"] if media_type == "application/json" else ["nul"]
        if media_type == "application/json":
            kinds.append("surrogate")  # a form cannot carry one: its bytes must be UTF-8
        kind = kinds[roll % len(kinds)]
        # A valid generated body may carry extra properties holding a NUL already; the parser then names
        # that place first (rightly), so only the refusal is checked for such a case.
        already = refused_somewhere(body)
        if kind == "nul" and strings:
            field = strings[roll % len(strings)]
            body[field] += "\x00"
            return Hostile(kind, None if already else field)
        # Sent as raw JSON text: schemathesis cannot validate (or write) a lone surrogate or such depth
        # itself, and takes a raw body as invalid data, which must be refused.
        if kind == "surrogate" and strings:
            field = strings[roll % len(strings)]
            case.body = json.dumps({**body, field: "\ud800"}).encode()  # ASCII: the surrogate as \ud800
            return Hostile(kind, None if already else field)
        if kind == "deep":
            case.body = DEEP_JSON
            return Hostile(kind, "body")
        if kind == "huge":
            body["padding"] = "x" * django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return Hostile(kind, "body", (413,))
    if isinstance(case.query, dict) and case.query and _positive(case, ParameterLocation.QUERY):
        name = sorted(case.query)[roll % len(case.query)]
        case.query[name] = "\x00"
        return Hostile("nul-query", name, (400,))
    return None


def aim_at_seeded_rows(case, rows: dict) -> None:
    """Swap some valid generated ids and values for seeded ones (see the module docstring)."""
    roll = {purpose: _roll(case, purpose) for purpose in ("row", "if_match", "key", "coherent")}
    kind = next((part for part in case.path.split("/") if part in rows), None)
    pk = case.path_parameters.get("id")
    # The coverage phase sends ids as strings ("0"), the fuzzing phase as integers.
    if kind and str(pk).isdigit() and _positive(case, ParameterLocation.PATH) and roll["row"] < 75:
        pk = rows[kind][roll["row"] % len(rows[kind])]
        case.path_parameters["id"] = pk if isinstance(case.path_parameters["id"], int) else str(pk)
        model = MODELS.get(kind)
        if_match = case.headers.get("If-Match")
        if model and isinstance(if_match, str) and _positive(case, ParameterLocation.HEADER) and roll["if_match"] < 75:
            version = model.objects.filter(pk=pk).values_list("version", flat=True).first()
            case.headers["If-Match"] = f'"{version or 1}"'
    # Generated keys repeat ("0" again and again): most would replay or answer 422, never create.
    key = case.headers.get("Idempotency-Key")
    if isinstance(key, str) and _positive(case, ParameterLocation.HEADER) and roll["key"] < 75:
        case.headers["Idempotency-Key"] = f"schemathesis-{next(FRESH_KEYS)}"
    if isinstance(case.query, dict) and _positive(case, ParameterLocation.QUERY) and roll["row"] < 75:
        for name in ("patient", "subject"):
            if isinstance(case.query.get(name), str):
                case.query[name] = rows["registry_ids"][roll["row"] % len(rows["registry_ids"])]
    body = case.body
    if isinstance(body, dict) and _positive(case, ParameterLocation.BODY):
        if roll["row"] < 75:
            references = {"procedure": rows["procedure_ids"], "patient": rows["registry_ids"][:2]}
            for name, values in references.items():
                if isinstance(body.get(name), str):
                    body[name] = values[roll["row"] % len(values)]
            if isinstance(body.get("clinic"), str):
                body["clinic"] = rows["clinic_code"]
        on_resource = case.path.rstrip("/").split("/")[-1] in (kind, "{id}")
        if kind in COHERENT and on_resource and roll["coherent"] < 50:
            partial = case.method == "PATCH"
            body.update({k: v for k, v in COHERENT[kind].items() if not partial or k in body})


# Operations that revoke the token they are called with (logoutall: every token of its user). They get a
# fresh token of bob's each time, so alice's stays valid for every other operation (they all run in one test).
REVOKING = {("POST", "/api/v1/auth/logout/"), ("POST", "/api/v1/auth/logoutall/"),
            ("DELETE", "/api/v1/auth/tokens/{token_id}/")}  # fmt: skip


def token_for(case, api_token: str, bob) -> str:
    """Return the token to call ``case`` with: alice's, or a throwaway one for a revoking operation."""
    if (case.method.upper(), case.path) in REVOKING:
        return issue_api_token(bob)
    return api_token


@pytest.mark.django_db
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
def test_api_conforms_to_its_schema(case, api_token, bob, rows, case_count):
    aim_at_seeded_rows(case, rows)
    send_empty_form_fields_as_json(case)
    hostile = make_hostile(case)
    case_count.add(case, hostile)
    response = None
    try:
        response = case.call_and_validate(headers={"Authorization": f"Token {token_for(case, api_token, bob)}"},
                                          checks=CHECKS)  # fmt: skip
    except FailureGroup as group:
        if not all(_is_known_bug(failure) for failure in group.exceptions):
            raise
    if hostile is not None and response is not None:
        hostile.check(response)
