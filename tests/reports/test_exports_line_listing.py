"""The adverse-event line listing: GET /api/v1/exports/adverse-events.csv (streaming, de-identified)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.http import StreamingHttpResponse

from events import services as event_services
from reports.choices import ExportKind
from reports.exportlog import ExportLog
from reports.exports.listing import LINE_LISTING_COLUMNS
from tests.api import conftest as api_conftest
from tests.api.conftest import api_client_for
from tests.conftest import PASSWORD
from tests.factories import AdverseEventFactory, PatientFactory, ProcedureFactory

pytestmark = pytest.mark.django_db
world = api_conftest.world  # one event at clinic A, one at clinic B (tests/api/conftest.py)

URL = "/api/v1/exports/adverse-events.csv"


def read_csv(response) -> tuple[list[str], list[dict]]:
    """Return the header and the rows of a streamed CSV response."""
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content).decode()
    reader = csv.reader(io.StringIO(body))
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


def export(user, query: str = ""):
    return read_csv(api_client_for(user).get(URL + query))


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


@pytest.mark.parametrize(("birth_year", "shown"), [(1933, "90+"), (1910, "90+"), (1934, "1934"), (1980, "1980")])
def test_the_birth_year_is_top_coded_from_age_90_at_the_procedure(clinic_a, root, birth_year, shown):
    patient = PatientFactory(clinic=clinic_a, birth_year=birth_year)
    AdverseEventFactory(procedure=ProcedureFactory(patient=patient, performed_on=dt.date(2023, 1, 15)))
    _, rows = export(root)
    assert [row["birth_year"] for row in rows] == [shown]


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
    assert client.get(URL + "?grade_min=high").status_code == 400
    assert client.get(URL + "?include_retracted=maybe").status_code == 400
    assert client.get(URL + "?clinic=A%00").status_code == 400
    assert not ExportLog.objects.exists()


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
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    assert client.login(username="alice", password=PASSWORD)
    _, rows = read_csv(client.get(URL))
    assert len(rows) == 1
    token = Token.objects.create(user=alice)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    _, rows = read_csv(api.get(URL, HTTP_ACCEPT="text/csv"))
    assert len(rows) == 1


def test_the_export_is_logged_with_filters_scope_and_row_count(world, alice, clinic_a):
    response = api_client_for(alice).get(URL + "?category=injection_site_reaction")
    log = ExportLog.objects.get()
    assert log.row_count is None  # nothing streamed yet
    assert response["X-Export-Log"] == str(log.pk)
    _, rows = read_csv(response)
    log.refresh_from_db()
    assert log.user == alice
    assert log.kind == ExportKind.LINE_LISTING_CSV
    assert log.filters == {"category": "injection_site_reaction"}
    assert log.clinic_ids == [clinic_a.pk]
    assert log.row_count == len(rows) == 1
    assert log.finished_at is not None


def test_the_row_count_counts_rows_not_lines(clinic_a, root):
    AdverseEventFactory(procedure=ProcedureFactory(patient__clinic=clinic_a), term="line one\nline two\nline three")
    _, rows = export(root)
    assert len(rows) == 1
    assert ExportLog.objects.get().row_count == 1
