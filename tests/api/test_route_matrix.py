"""Role x route x clinic matrix: no route returns or writes another clinic's rows.

Every route of the URLconf is enumerated; a route missing from ROUTES fails the test,
so a new endpoint cannot ship without saying how it is isolated. For each route and
each attacker persona (a clinician of clinic B aiming at clinic A, a coordinator of
clinic A aiming at clinic B) the test sends GET and every unsafe method, with URL
arguments and request bodies naming the victim clinic's rows, and asserts that the
response never shows a victim row and that no clinical table, API token or authenticator changed.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from events.models import AdverseEvent, FollowUpReport, MedicalReview
from events.services import follow_up_report_create, medical_review_record
from registry.models import Clinic, ContactAttempt, FollowUpVisit, Membership, Patient, Procedure
from tests.conftest import PASSWORD, confirmed_device
from tests.factories import AdverseEventFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

UNSAFE = ("post", "put", "patch", "delete")

# route name -> which victim object fills its URL (None: the route takes no object).
# Every route of the project must be listed here.
ROUTES: dict[str, str | None] = {
    # REST API
    "api-root": None,
    "clinic-list": None,
    "clinic-detail": "clinic",
    "patient-list": None,
    "patient-detail": "patient",
    "patient-retract": "patient",
    "patient-restore": "patient",
    "procedure-list": None,
    "procedure-detail": "procedure",
    "procedure-retract": "procedure",
    "procedure-restore": "procedure",
    "procedure-lost-to-follow-up": "procedure",
    "followupvisit-list": None,
    "followupvisit-detail": "visit",
    "followupvisit-retract": "visit",
    "followupvisit-restore": "visit",
    "followupvisit-contact-attempts": "visit",
    "adverseevent-list": None,
    "adverseevent-detail": "ae",
    "adverseevent-retract": "ae",
    "adverseevent-restore": "ae",
    "api-token": None,
    "api-token-list": None,
    "api-token-detail": "token_key",
    "api-logout": None,
    "api-logoutall": None,
    "api-auth-login": None,
    "api-schema": None,
    "api-docs": None,
    "fhir-adverseevent-read": "ae",
    "fhir-adverseevent-search": None,
    "reports:incidence-run-list": None,
    "reports:incidence-run-detail": "run",
    "reports:incidence-run-report-xlsx": "run",
    "reports:incidence-run-report-pdf": "run",
    "export-adverse-events-csv": None,
    "export-adverse-events-deidentified-csv": None,
    "export-adverse-events-fhir": None,
    "export-overdue-visits-csv": None,
    "rest_framework:login": None,
    "rest_framework:logout": None,
    # admin site
    "admin:index": None,
    "admin:login": None,
    "admin:logout": None,
    "admin:password_change": None,
    "admin:password_change_done": None,
    "admin:jsi18n": None,
    "admin:autocomplete": None,
    "admin:app_list": "app_label",
    "admin:view_on_site": "view_on_site",
    "admin:": "catch_all",
    "admin:reports_incidencerun_csv": "run",
    "admin:reports_incidencerun_report": "run",
    "admin:reports_incidencerun_chart": "run",
    "admin:reports_incidencerun_xlsx": "run",
    "admin:reports_incidencerun_pdf": "run",
    "admin:reports_exportlog_overdue_visits": None,
    "admin:auth_user_password_change": "user",
    "admin:two_factor_enrol": None,
    "admin:otp_totp_totpdevice_config": "device",
    "admin:otp_totp_totpdevice_qrcode": "device",
    # The MedDRA term search of the event form (dictionary terms only, no clinical rows; GET only).
    "admin:events_adverseevent_meddra_terms": None,
    # Signals are registry-wide: only registry administrators (and safety reviewers) reach them (issue 11).
    "admin:signals_signalrun_review": "nothing",
    "admin:signals_signalrun_run_now": None,
    # Issue 10 (events): a case's follow-ups and reviews, in the API and on the event's admin page.
    "adverseevent-follow-ups": "ae",
    "adverseevent-reviews": "ae",
    "admin:events_adverseevent_add_follow_up": "ae",
    "admin:events_adverseevent_record_review": "ae",
    # Issue 10 (safety): due reports, submissions, CIOMS I forms and figures. The CIOMS form names the
    # victim's event; the due-report pages' own isolation is tested in tests/safety/test_admin.py.
    "admin:safety_duereport_cioms": "ae",
    "admin:safety_duereport_submit": "nothing",
    "admin:safety_duereport_withdraw": "nothing",
    "admin:safety_duereport_figures": None,
    "admin:safety_duereport_figures_pdf": None,
    # Issue 12 (patients): links and reports (isolation per clinic in tests/patients/); the patient pages
    # take a token, never a row id.
    "admin:patients_patientlink_revoke": "nothing",
    "admin:patients_patientreport_confirm": "nothing",
    "admin:patients_patientreport_reject": "nothing",
    "patients:home": None,
    "patients:diary": None,
    "patients:diary_saved": None,
    "patients:problem": None,
    "patients:problem_sent": None,
    # Issue 12 (public): no login, published runs only.
    "admin:public_publication_withdraw": "nothing",
    "public:index": None,
    "public:publication": "nothing",
    "public:csv": "nothing",
    "public:json": "nothing",
}
# admin:<app>_<model>_<view> for every registered ModelAdmin, with the victim object it targets.
ADMIN_MODELS = {
    "registry_clinic": "clinic",
    "registry_membership": "membership",
    "registry_patient": "patient",
    "registry_procedure": "procedure",
    "registry_followupvisit": "visit",
    "events_adverseevent": "ae",
    "reports_incidencerun": "run",
    "reports_exportlog": "nothing",
    "reports_outcomedefinition": "nothing",
    "auth_user": "user",
    "auth_group": "group",
    "knox_authtoken": "token",
    "otp_totp_totpdevice": "device",
    "axes_accessattempt": "nothing",
    "axes_accesslog": "nothing",
    "axes_accessfailurelog": "nothing",
    "pghistory_events": "nothing",
    "signals_signalrun": "nothing",
    # Issue 10 (events): reference data (registry-wide) and the read-only lists of follow-ups and reviews.
    "events_referencesafetyinformation": "nothing",
    "events_followupreport": "follow_up",
    "events_medicalreview": "review",
    "safety_reportingrule": "nothing",
    "safety_duereport": "nothing",
    "patients_patientlink": "nothing",
    "patients_patientreport": "nothing",
    "public_publication": "nothing",
}
ADMIN_VIEWS = ("changelist", "add", "change", "delete", "history")
for _model, _obj in ADMIN_MODELS.items():
    for _view in ADMIN_VIEWS:
        ROUTES[f"admin:{_model}_{_view}"] = None if _view in ("changelist", "add") else _obj
# Retraction and restore pages of the retractable rows, and the procedure's lost-to-follow-up button.
for _model in ("registry_patient", "registry_procedure", "registry_followupvisit", "events_adverseevent"):
    for _view in ("retract", "restore"):
        ROUTES[f"admin:{_model}_{_view}"] = ADMIN_MODELS[_model]
ROUTES["admin:registry_procedure_lost_to_follow_up"] = "procedure"


def all_routes():
    """Return (name, pattern, kwargs names) for every route, format-suffix variants folded in."""

    def walk(patterns, prefix="", ns=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                inner = f"{ns}{p.namespace}:" if p.namespace else ns
                yield from walk(p.url_patterns, prefix + str(p.pattern), inner)
            elif isinstance(p, URLPattern):
                yield f"{ns}{p.name or ''}", prefix + str(p.pattern), tuple(p.pattern.regex.groupindex)

    seen = {}
    for name, pattern, kwargs in walk(get_resolver().url_patterns):
        if "format" in kwargs:
            continue  # DRF's .json suffix variant of a route listed without it
        seen.setdefault(name, (pattern, kwargs))
    return seen


def test_every_route_has_a_matrix_entry():
    missing = sorted(set(all_routes()) - set(ROUTES))
    assert not missing, f"Routes without an isolation entry in ROUTES: {missing}"


@pytest.fixture
def victims(clinic_a, clinic_b, alice, bob, charlie, dora, root):
    """Return, per clinic, its rows and the strings that would betray them."""
    out = {}
    for clinic, owner, label in ((clinic_a, alice, "A"), (clinic_b, charlie, "B")):
        ae = AdverseEventFactory(
            procedure=ProcedureFactory(patient__clinic=clinic, product_lot=f"LOT-SECRET-{label}"),
            term=f"Secret term {label}",
        )
        run = None
        try:
            from reports.services import incidence_run_start

            run = incidence_run_start(actor=owner, strata=["site"], outcomes=["any"], cutoff_on=ae.onset_on)
        except ImportError:  # pragma: no cover - reports not installed
            pass
        follow_up = follow_up_report_create(
            actor=owner, event=ae, received_on=ae.aware_on, narrative=f"Secret follow-up {label}", changes={}
        )
        review = medical_review_record(
            actor=root, event=ae, serious=False, causality_procedure="possible", causality_product="possible",
            expectedness="unexpected", comment=f"Secret review {label}",
        )  # fmt: skip
        out[label] = {
            "clinic": clinic,
            "ae": ae,
            "follow_up": follow_up,
            "review": review,
            "procedure": ae.procedure,
            "patient": ae.procedure.patient,
            "visit": ae.procedure.visits.first(),
            "membership": Membership.objects.get(user=owner),
            "user": owner,
            "run": run,
            "token": AuthToken.objects.create(user=owner)[0],
            "device": confirmed_device(owner),
            "markers": [
                confirmed_device(owner).key,
                clinic.name,
                ae.external_id,
                ae.term,
                ae.procedure.external_id,
                ae.procedure.patient.registry_id,
                ae.procedure.product_lot,
                follow_up.narrative,
                review.comment,
            ],
        }
    return out


def snapshot(attacker: str):
    tables = (Clinic, Patient, Procedure, FollowUpVisit, ContactAttempt, AdverseEvent, Membership, TOTPDevice,
              FollowUpReport, MedicalReview)  # fmt: skip
    rows = {m.__name__: list(m.objects.order_by("pk").values()) for m in tables}
    # The attacker may revoke their own API tokens (logout), nobody else's.
    rows["AuthToken"] = list(AuthToken.objects.exclude(user__username=attacker).order_by("pk").values())
    return rows


def url_for(name, pattern, kwargs, victim):
    kind = ROUTES[name]
    values = {}
    if kind in ("app_label",):
        values = {"app_label": "registry"}
    elif kind == "view_on_site":
        ae = victim["ae"]
        values = {"content_type_id": ContentType.objects.get_for_model(ae).pk, "object_id": ae.pk}
    elif kind == "catch_all":
        values = {"url": "registry/unknown/"}
    elif kind == "token_key":
        values = dict.fromkeys(kwargs, victim["token"].token_key)
    elif kind is not None:
        obj = {
            "group": Group.objects.get(name="Clinician"),
            "nothing": None,
        }.get(kind, victim.get(kind))
        pk = obj.pk if obj is not None else 999999
        values = dict.fromkeys(kwargs, pk)
    path = "/" + pattern.replace("^", "").replace("\\Z", "").replace("$", "")
    for key, value in values.items():
        path = re.sub(rf"(<(\w+:)?{key}>|\(\?P<{key}>[^)]*\))", str(value), path)
    return path.replace("\\", "")


def body_for(victim):
    """Return a request body naming the victim's rows by every spelling the API and admin use."""
    ae, procedure, patient = victim["ae"], victim["procedure"], victim["patient"]
    return {
        "procedure": procedure.external_id,
        "patient": patient.registry_id,
        "clinic": victim["clinic"].code,
        "category": "infection",
        "term": "Injected by the attacker",
        "onset_on": procedure.performed_on.isoformat(),
        "grade": 1,
        "outcome": "recovered",
        "reason": "attacker retraction",
        "completed_on": procedure.performed_on.isoformat(),
        "attempted_on": procedure.performed_on.isoformat(),
        "contact_method": "phone",
        "sex": "F",
        "birth_year": 1970,
        "enrolled_on": "2023-01-10",
        "performed_on": "2023-01-15",
        "site": "knee",
        "laterality": "left",
        "cell_source": "autologous",
        "cell_type": "bmac",
        "strata": ["site"],
        "outcomes": ["any"],
        "cutoff_on": "2024-01-01",
        "user": victim["user"].pk,
        "role": "clinician",
        "_selected_action": [ae.pk],
        "action": "retract_selected",
        "apply": "1",
        "post": "yes",
    }


ATTACKS = [("charlie", "A", "B"), ("dora", "B", "A")]


@pytest.mark.parametrize(("attacker", "victim_label", "own_label"), ATTACKS, ids=["clinician_B", "coordinator_A"])
def test_no_route_shows_or_changes_another_clinics_rows(client, victims, attacker, victim_label, own_label):
    from rest_framework.test import APIClient

    victim = victims[victim_label]
    api = APIClient()
    assert api.login(request=__import__("django").http.HttpRequest(), username=attacker, password=PASSWORD)
    assert client.login(username=attacker, password=PASSWORD)
    checked = 0
    for name, (pattern, kwargs) in sorted(all_routes().items()):
        if name in ("admin:logout", "rest_framework:logout"):
            continue  # would end the session the rest of the loop needs; they show no data
        url = url_for(name, pattern, kwargs, victim)
        for method in ("get", *UNSAFE):
            before = snapshot(attacker)
            http = api if not name.startswith("admin:") else client
            headers = {"HTTP_IF_MATCH": f'"{victim["ae"].version}"'}
            if method == "get":
                response = http.get(url, follow=False, **headers)
            elif name.startswith("admin:"):
                response = getattr(http, method)(url, body_for(victim), **headers)
            else:
                response = getattr(http, method)(url, body_for(victim), format="json", **headers)
            content = b"".join(response.streaming_content) if response.streaming else response.content
            body = content.decode(errors="replace")
            for marker in victim["markers"]:
                assert marker not in body, f"{attacker} {method.upper()} {url} ({name}) shows {marker!r}"
            assert snapshot(attacker) == before, f"{attacker} {method.upper()} {url} ({name}) changed data"
            checked += 1
    assert checked > 4 * len(ROUTES) // 2


def test_the_matrix_can_see_a_leak(client, victims):
    """Positive control: the registry administrator's lists do show both clinics' rows."""
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(user=victims["A"]["user"].__class__.objects.get(username="root"))
    body = api.get("/api/v1/adverse-events/").content.decode()
    assert victims["A"]["ae"].external_id in body
    assert victims["B"]["ae"].external_id in body
