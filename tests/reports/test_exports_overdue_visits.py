"""The overdue follow-up report: GET /api/v1/exports/overdue-visits.csv and its admin summary."""

from __future__ import annotations

import datetime as dt

import pytest

from core.dates import today
from registry.models import FollowUpVisit
from reports.choices import ExportKind
from reports.exports.listing import OVERDUE_COLUMNS
from reports.exports.models import ExportLog
from tests.api.conftest import api_client_for
from tests.conftest import PASSWORD
from tests.factories import ProcedureFactory
from tests.reports.test_exports_line_listing import read_csv

pytestmark = pytest.mark.django_db

URL = "/api/v1/exports/overdue-visits.csv"


@pytest.fixture
def schedules(clinic_a, clinic_b, alice, charlie, dora, root):
    """Return a procedure at each clinic; at A every visit but day 2 is completed, at B none is."""
    a = ProcedureFactory(patient__clinic=clinic_a, performed_on=dt.date(2023, 1, 15))
    b = ProcedureFactory(patient__clinic=clinic_b, performed_on=dt.date(2023, 1, 15))
    FollowUpVisit.objects.filter(procedure=a).exclude(visit="day_2").update(completed_on=dt.date(2023, 1, 16))
    return {"a": a, "b": b}


def expected_overdue(procedure) -> list[FollowUpVisit]:
    return list(FollowUpVisit.objects.overdue().filter(procedure=procedure).order_by("window_end"))


def test_it_lists_every_overdue_visit_with_the_documented_columns(schedules, root):
    response = api_client_for(root).get(URL)
    header, rows = read_csv(response)
    assert header == list(OVERDUE_COLUMNS)
    assert header == [
        "clinic", "registry_id", "procedure_id", "performed_on", "visit", "due_on", "window_end", "days_overdue",
        "contact_attempts", "last_attempt_on", "last_attempt_outcome",
    ]  # fmt: skip
    visits = expected_overdue(schedules["a"]) + expected_overdue(schedules["b"])
    assert len(rows) == len(visits) >= 2
    day_2 = next(row for row in rows if row["clinic"] == "A-MAD")
    visit = expected_overdue(schedules["a"])[0]
    assert day_2 == {
        "clinic": "A-MAD",
        "registry_id": schedules["a"].patient.registry_id,
        "procedure_id": schedules["a"].external_id,
        "performed_on": "2023-01-15",
        "visit": "day_2",
        "due_on": visit.due_on.isoformat(),
        "window_end": visit.window_end.isoformat(),
        "days_overdue": str((today() - visit.window_end).days),
        "contact_attempts": "0",
        "last_attempt_on": "",
        "last_attempt_outcome": "",
    }


def test_completed_and_still_open_visits_are_not_overdue(schedules, root):
    _, rows = read_csv(api_client_for(root).get(URL + "?clinic=A-MAD"))
    assert [row["visit"] for row in rows] == ["day_2"]
    future = ProcedureFactory(patient__clinic=schedules["a"].clinic, performed_on=today())
    _, rows = read_csv(api_client_for(root).get(URL + f"?procedure={future.external_id}"))
    assert rows == []


def test_a_coordinator_chases_only_her_own_clinic(schedules, dora, charlie):
    _, rows = read_csv(api_client_for(dora).get(URL))
    assert {row["clinic"] for row in rows} == {"A-MAD"}
    _, rows = read_csv(api_client_for(dora).get(URL + "?clinic=B-BER"))
    assert rows == []
    _, rows = read_csv(api_client_for(charlie).get(URL))
    assert {row["clinic"] for row in rows} == {"B-BER"}


def test_the_overdue_export_is_logged(schedules, dora):
    _, rows = read_csv(api_client_for(dora).get(URL))
    log = ExportLog.objects.get()
    assert (log.kind, log.row_count) == (ExportKind.OVERDUE_CSV, len(rows))


def test_the_admin_summary_counts_overdue_visits_per_visible_clinic(schedules, client, dora, root):
    assert client.login(username="root", password=PASSWORD)
    response = client.get("/admin/reports/exportlog/overdue-visits/")
    assert response.status_code == 200
    rows = {row["code"]: row["overdue"] for row in response.context["rows"]}
    assert rows == {"A-MAD": 1, "B-BER": len(expected_overdue(schedules["b"]))}

    assert client.login(username="dora", password=PASSWORD)
    response = client.get("/admin/reports/exportlog/overdue-visits/")
    assert response.status_code == 200
    assert [row["code"] for row in response.context["rows"]] == ["A-MAD"]
    assert "B-BER" not in response.content.decode()


def test_each_overdue_visit_shows_the_chase_so_far(schedules, root):
    from registry.models import ContactAttempt

    visit = expected_overdue(schedules["a"])[0]
    for day, outcome in ((1, "no_answer"), (3, "message_left")):
        ContactAttempt.objects.create(
            visit=visit, attempted_on=visit.window_end + dt.timedelta(days=day), method="phone", outcome=outcome
        )

    _, rows = read_csv(api_client_for(root).get(URL + "?clinic=A-MAD"))

    row = next(row for row in rows if row["visit"] == visit.visit)
    assert (row["contact_attempts"], row["last_attempt_outcome"]) == ("2", "message_left")
    assert row["last_attempt_on"] == (visit.window_end + dt.timedelta(days=3)).isoformat()
