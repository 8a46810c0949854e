"""The incidence API: POST /api/v1/reports/incidence-runs/, GET .../{id}/ for status and rows."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from reports.choices import RunStatus
from reports.models import IncidenceRun

URL = "/api/v1/reports/incidence-runs/"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_a_clinician_starts_a_run_and_reads_its_results(
    alice, clinic_a, two_clinics, django_capture_on_commit_callbacks
):
    client = _client(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"cutoff_on": "2024-01-01", "outcomes": ["infection"]}, format="json")
    assert response.status_code == 202, response.content
    run_id = response.json()["id"]
    assert response.json()["clinic_ids"] == [clinic_a.pk]
    assert response["Location"].endswith(f"{URL}{run_id}/")
    body = client.get(f"{URL}{run_id}/").json()
    assert body["status"] == RunStatus.SUCCEEDED
    assert body["row_count"] == body["estimated_rows"] == len(body["results"])
    total = next(r for r in body["results"] if r["stratum"] == {"site": "ALL", "cell_type": "ALL"})
    assert (total["procedures"], total["cases"]) == (2, 1)  # clinic B's procedure is not in it
    assert set(total) >= {"proportion_ci_low", "rate_per_100py", "km_cuminc_30d", "km_cuminc_5y_ci_high"}


def test_a_queued_run_shows_its_status_and_no_rows(alice, two_clinics):
    client = _client(alice)
    run_id = client.post(URL, {"cutoff_on": "2024-01-01"}, format="json").json()["id"]
    body = client.get(f"{URL}{run_id}/").json()
    assert (body["status"], body["results"]) == (RunStatus.QUEUED, [])


def test_a_colleague_sees_the_run_and_a_clinician_elsewhere_gets_404(alice, bob, charlie, two_clinics):
    run_id = _client(alice).post(URL, {"cutoff_on": "2024-01-01"}, format="json").json()["id"]
    assert _client(bob).get(f"{URL}{run_id}/").status_code == 200
    assert _client(charlie).get(f"{URL}{run_id}/").status_code == 404
    assert _client(charlie).get(URL).json() == []


def test_a_clinician_never_sees_a_registry_wide_run(root, alice, two_clinics):
    run_id = _client(root).post(URL, {"cutoff_on": "2024-01-01"}, format="json").json()["id"]
    assert IncidenceRun.objects.get(pk=run_id).clinic_ids is None
    assert _client(alice).get(f"{URL}{run_id}/").status_code == 404
    assert [r["id"] for r in _client(root).get(URL).json()] == [run_id]


@pytest.mark.parametrize(
    "payload",
    [{"strata": ["site", "shoe_size"], "cutoff_on": "2024-01-01"}, {"cutoff_on": "yesterday"}, {}],
)
def test_it_rejects_a_bad_request_and_stores_nothing(alice, payload):
    response = _client(alice).post(URL, payload, format="json")
    assert response.status_code == 400
    assert not IncidenceRun.objects.exists()


def test_a_report_over_the_row_limit_is_refused_on_strata_and_stores_nothing(alice, two_clinics, settings):
    # Alice's clinic: knee x (bmac, adipose_svf) with margins = 6 groups x 13 outcomes = 78 rows.
    settings.REPORTS_MAX_RESULT_ROWS = 77
    response = _client(alice).post(URL, {"cutoff_on": "2024-01-01"}, format="json")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["attr"] == "strata"
    assert "78 rows (6 strata and margins x 13 outcomes), more than the limit of 77" in error["detail"]
    assert not IncidenceRun.objects.exists()
    settings.REPORTS_MAX_RESULT_ROWS = 78
    accepted = _client(alice).post(URL, {"cutoff_on": "2024-01-01"}, format="json")
    assert (accepted.status_code, accepted.json()["estimated_rows"]) == (202, 78)


def test_a_retry_with_the_same_idempotency_key_returns_the_first_run_and_queues_nothing(alice, two_clinics):
    client = _client(alice)
    body = {"cutoff_on": "2024-01-01", "outcomes": ["infection"]}
    first = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="run-1")
    again = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="run-1")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert IncidenceRun.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_answers_422_and_queues_nothing(alice, two_clinics):
    client = _client(alice)
    client.post(URL, {"cutoff_on": "2024-01-01"}, format="json", HTTP_IDEMPOTENCY_KEY="run-2")
    other = client.post(URL, {"cutoff_on": "2023-01-01"}, format="json", HTTP_IDEMPOTENCY_KEY="run-2")
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert list(IncidenceRun.objects.values_list("cutoff_on", flat=True)) == [dt.date(2024, 1, 1)]


def test_a_refused_request_does_not_use_up_its_idempotency_key(alice, two_clinics):
    client = _client(alice)
    bad = client.post(URL, {"cutoff_on": "yesterday"}, format="json", HTTP_IDEMPOTENCY_KEY="run-3")
    assert bad.status_code == 400 and not IncidenceRun.objects.exists()
    good = client.post(URL, {"cutoff_on": "2024-01-01"}, format="json", HTTP_IDEMPOTENCY_KEY="run-3")
    assert good.status_code == 202 and IncidenceRun.objects.count() == 1


def test_the_schema_documents_the_idempotency_key_and_its_422_on_this_post(alice):
    schema = _client(alice).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    post = schema["paths"][URL]["post"]
    assert "Idempotency-Key" in {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert {"202", "400", "422"} <= set(post["responses"])


def test_anonymous_requests_are_refused(db):
    response = APIClient().post(URL, {"cutoff_on": "2024-01-01"}, format="json")
    assert response.status_code in (401, 403)
    assert not IncidenceRun.objects.exists()
