"""The adverse-event line listing: GET /api/v1/exports/adverse-events.csv (streaming; a limited data set)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from urllib.parse import urlencode

import pytest
from django.http import StreamingHttpResponse

from core.dates import today
from events import services as event_services
from reports.choices import ExportKind
from reports.exports.listing import LINE_LISTING_COLUMNS
from reports.exports.models import ExportLog
from tests.api import conftest as api_conftest
from tests.api.conftest import api_client_for
from tests.conftest import PASSWORD
from tests.factories import AdverseEventFactory, PatientFactory, ProcedureFactory

pytestmark = pytest.mark.django_db
world = api_conftest.world  # one event at clinic A, one at clinic B (tests/api/conftest.py)

PURPOSE = "Quarterly safety review for the ethics committee"
URL = "/api/v1/exports/adverse-events.csv?purpose=Quarterly+safety+review+for+the+ethics+committee"
BARE_URL = "/api/v1/exports/adverse-events.csv"


def read_csv(response) -> tuple[list[str], list[dict]]:
    """Return the header and the rows of a streamed CSV response."""
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content).decode()
    reader = csv.reader(io.StringIO(body))
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


def export(user, query: str = ""):
    return read_csv(api_client_for(user).get(URL + query.replace("?", "&")))


def test_it_streams_exactly_the_documented_columns(world, root):
    response = api_client_for(root).get(URL)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, rows = read_csv(response)
    assert header == list(LINE_LISTING_COLUMNS)
    assert header == [
        "registry_id", "birth_year", "sex", "clinic", "country", "procedure_id", "performed_on", "site",
        "laterality", "cell_source", "cell_type", "event_id", "category", "term", "meddra_code", "onset_on",
        "days_from_procedure", "grade", "serious", "serious_criteria", "causality_procedure", "causality_product",
        "outcome", "resolved_on",
    ]  # fmt: skip
    assert len(rows) == 2


def test_a_row_carries_the_event_procedure_and_pseudonymous_patient(clinic_a, root):
    procedure = ProcedureFactory(patient__clinic=clinic_a, performed_on=dt.date(2023, 3, 1), site="hip")
    event = AdverseEventFactory(
        procedure=procedure,
        category="infection",
        term='Septic arthritis, "deep", drained\nsecond line',
        meddra_code="10003963",
        onset_on=dt.date(2023, 3, 11),
        grade=3,
        serious=True,
        serious_hospitalisation=True,
        serious_medically_important=True,
        causality_procedure="probable",
        causality_product="possible",
        outcome="recovered",
        resolved_on=dt.date(2023, 4, 2),
    )
    _, rows = export(root)
    assert rows == [
        {
            "registry_id": procedure.patient.registry_id,
            "birth_year": "1970",
            "sex": "F",
            "clinic": "A-MAD",
            "country": "ES",
            "procedure_id": procedure.external_id,
            "performed_on": "2023-03-01",
            "site": "hip",
            "laterality": "left",
            "cell_source": "autologous",
            "cell_type": "bmac",
            "event_id": event.external_id,
            "category": "infection",
            "term": 'Septic arthritis, "deep", drained\nsecond line',
            "meddra_code": "10003963",
            "onset_on": "2023-03-11",
            "days_from_procedure": "10",
            "grade": "3",
            "serious": "true",
            "serious_criteria": "hospitalisation;medically_important",
            "causality_procedure": "probable",
            "causality_product": "possible",
            "outcome": "recovered",
            "resolved_on": "2023-04-02",
        }
    ]


def test_it_never_exports_identity_or_free_text_beyond_the_term(clinic_a, root):
    procedure = ProcedureFactory(patient__clinic=clinic_a, operator="DR-SECRET-7", indication="Secret indication")
    AdverseEventFactory(procedure=procedure, reporter="Nurse Secret")
    body = b"".join(api_client_for(root).get(URL).streaming_content).decode()
    for secret in ("DR-SECRET-7", "Secret indication", "Nurse Secret", procedure.product_lot):
        assert secret not in body


@pytest.mark.parametrize(("age_this_year", "top_coded"), [(90, True), (104, True), (89, False), (45, False)])
def test_the_birth_year_is_top_coded_from_age_90_in_the_export_year(clinic_a, root, age_this_year, top_coded):
    birth_year = today().year - age_this_year
    patient = PatientFactory(clinic=clinic_a, birth_year=birth_year)
    AdverseEventFactory(procedure=ProcedureFactory(patient=patient, performed_on=dt.date(2023, 1, 15)))
    _, rows = export(root)
    assert [row["birth_year"] for row in rows] == ["90+" if top_coded else str(birth_year)]


def test_a_patient_top_coded_once_is_top_coded_on_every_row(clinic_a, root):
    # 88 at the first procedure, 90 at the second: one birth year shown on one row and "90+" on
    # the next, under the same registry id, would give the year away.
    patient = PatientFactory(clinic=clinic_a, birth_year=today().year - 90, enrolled_on=dt.date(today().year - 2, 1, 1))
    for performed_on in (dt.date(today().year - 2, 1, 15), today()):
        AdverseEventFactory(
            procedure=ProcedureFactory(patient=patient, performed_on=performed_on), onset_on=performed_on
        )
    _, rows = export(root)
    assert [row["registry_id"] for row in rows] == [patient.registry_id] * 2
    assert [row["birth_year"] for row in rows] == ["90+", "90+"]


def test_retracted_events_are_left_out_unless_asked_for(world, root):
    event_services.adverse_event_retract(actor=root, event=world["b"], reason="Entered twice")
    header, rows = export(root)
    assert RETRACTED not in header
    assert [row["event_id"] for row in rows] == [world["a"].external_id]

    header, rows = export(root, "?include_retracted=true")
    assert header[-1] == RETRACTED
    assert {row["event_id"]: row[RETRACTED] for row in rows} == {
        world["a"].external_id: "false",
        world["b"].external_id: "true",
    }


RETRACTED = "retracted"


def test_it_applies_the_adverse_event_api_filters(clinic_a, root):
    mild = AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), grade=1, category="infection")
    severe = AdverseEventFactory(
        procedure=ProcedureFactory(patient__clinic=clinic_a, site="hip"), grade=3, category="infection"
    )
    _, rows = export(root, "?grade_min=3")
    assert [row["event_id"] for row in rows] == [severe.external_id]
    _, rows = export(root, "?site=knee&category=infection")
    assert [row["event_id"] for row in rows] == [mild.external_id]
    _, rows = export(root, "?category=neoplasm")
    assert rows == []


def test_an_invalid_filter_answers_400_and_logs_nothing(world, root):
    client = api_client_for(root)
    assert client.get(URL + "&grade_min=high").status_code == 400
    assert client.get(URL + "&include_retracted=maybe").status_code == 400
    assert client.get(URL + "&clinic=A%00").status_code == 400
    assert not ExportLog.objects.exists()


@pytest.mark.parametrize(
    "path", ["/api/v1/exports/adverse-events.csv", "/api/v1/exports/adverse-events.deidentified.csv"]
)
def test_a_filter_no_row_can_match_gives_the_header_and_no_rows(world, root, path):
    # grade_min beyond PostgreSQL's integer range makes Django compile the filter to "nothing" (EmptyResultSet),
    # which once answered 500 (found by schemathesis).
    response = api_client_for(root).get(path + "?purpose=Audit&grade_min=1048576")
    header, rows = read_csv(response)
    assert response.status_code == 200
    assert header and rows == []


def test_a_clinician_exports_only_her_own_clinic(world, alice):
    _, rows = export(alice)
    assert [row["event_id"] for row in rows] == [world["a"].external_id]
    assert {row["clinic"] for row in rows} == {"A-MAD"}


def test_asking_for_another_clinic_by_code_gives_no_rows(world, charlie, dora):
    _, rows = export(charlie, "?clinic=A-MAD")
    assert rows == []
    _, rows = export(dora, "?clinic=B-BER")
    assert rows == []


def test_the_registry_administrator_exports_both_clinics(world, root):
    _, rows = export(root)
    assert sorted(row["clinic"] for row in rows) == ["A-MAD", "B-BER"]


def test_a_user_without_a_role_gets_403(world):
    from tests.factories import UserFactory

    response = api_client_for(UserFactory(username="nobody")).get(URL)
    assert response.status_code == 403


def test_an_anonymous_request_is_refused(world, client):
    assert client.get(URL).status_code in (401, 403)


def test_session_and_token_authentication_both_work(world, alice, client):
    from rest_framework.test import APIClient

    from tests.factories import issue_api_token

    assert client.login(username="alice", password=PASSWORD)
    _, rows = read_csv(client.get(URL))
    assert len(rows) == 1
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(alice)}")
    _, rows = read_csv(api.get(URL, HTTP_ACCEPT="text/csv"))
    assert len(rows) == 1


def test_the_export_is_logged_with_filters_scope_and_row_count(world, alice, clinic_a):
    response = api_client_for(alice).get(URL + "&category=injection_site_reaction")
    log = ExportLog.objects.get()
    assert log.row_count is None  # nothing streamed yet
    assert response["X-Export-Log"] == str(log.pk)
    _, rows = read_csv(response)
    log.refresh_from_db()
    assert log.user == alice
    assert log.kind == ExportKind.LINE_LISTING_CSV
    assert log.filters == {"category": "injection_site_reaction"}  # the purpose has its own column
    assert log.purpose == PURPOSE
    assert log.clinic_ids == [clinic_a.pk]
    assert log.row_count == len(rows) == 1
    assert log.finished_at is not None


def test_the_row_count_counts_rows_not_lines(clinic_a, root):
    AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), term="line one\nline two\nline three")
    _, rows = export(root)
    assert len(rows) == 1
    assert ExportLog.objects.get().row_count == 1


@pytest.mark.parametrize("purpose", [None, "", "   ", "Safety\u202e review", "x" * 1001])
def test_a_limited_data_set_needs_a_stated_purpose_else_400_on_purpose_and_nothing_logged(world, root, purpose):
    query = "" if purpose is None else "?" + urlencode({"purpose": purpose})
    response = api_client_for(root).get(BARE_URL + query)
    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == ["purpose"]
    assert not ExportLog.objects.exists()


def test_a_clinic_exports_its_own_limited_listing_with_a_purpose_and_nothing_of_another(world, charlie):
    response = api_client_for(charlie).get(BARE_URL + "?purpose=Our+own+follow-up+audit")
    _, rows = read_csv(response)
    assert [row["event_id"] for row in rows] == [world["b"].external_id]
    log = ExportLog.objects.get()
    assert (log.user, log.purpose, log.kind) == (charlie, "Our own follow-up audit", ExportKind.LINE_LISTING_CSV)


def test_the_admin_changelist_asks_for_the_purpose_and_offers_the_deidentified_listing(world, root):
    from django.test import Client

    client = Client()
    client.force_login(root)
    page = client.get("/admin/events/adverseevent/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'action="{BARE_URL}"' in html and 'name="purpose" required' in html
    assert 'href="/api/v1/exports/adverse-events.deidentified.csv"' in html
    _, rows = read_csv(client.get(BARE_URL, {"purpose": "Monthly signal review"}))  # what submitting the form sends
    assert len(rows) == 2
    assert ExportLog.objects.get().purpose == "Monthly signal review"
