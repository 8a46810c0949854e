"""The Reports page in the admin: a form that starts a run, read-only runs limited by clinic."""

from __future__ import annotations

from django.test import Client

from reports.choices import RunStatus, Trigger
from reports.models import IncidenceRun

ADD = "/admin/reports/incidencerun/add/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_clinician_starts_a_run_from_the_form_and_reads_it(
    alice, clinic_a, two_clinics, django_capture_on_commit_callbacks
):
    client = _client(alice)
    assert client.get(ADD).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            ADD, {"strata": ["site"], "outcomes": ["infection"], "cutoff_on": "2024-01-01", "ci_method": "wilson"}
        )
    run = IncidenceRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/reports/incidencerun/{run.pk}/change/"
    assert (run.trigger, run.clinic_ids, run.strata, run.status) == (
        Trigger.ADMIN,
        [clinic_a.pk],
        ["site"],
        RunStatus.SUCCEEDED,
    )
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"Download CSV" in page.content and b"infection" in page.content
    assert b"Save" not in page.content  # read-only
    csv = client.get(f"/admin/reports/incidencerun/{run.pk}/csv/")
    assert csv.status_code == 200
    assert csv.content.decode().splitlines()[0].startswith("site,outcome,procedures,cases,proportion,")


def test_the_form_reports_a_missing_cut_off(alice):
    response = _client(alice).post(ADD, {"strata": ["site"], "ci_method": "wilson"})
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert not IncidenceRun.objects.exists()


def test_a_clinician_elsewhere_cannot_open_the_run_or_its_csv(alice, charlie, two_clinics):
    _client(alice).post(ADD, {"strata": ["site"], "cutoff_on": "2024-01-01", "ci_method": "wilson"})
    run = IncidenceRun.objects.get()
    other = _client(charlie)
    assert other.get(f"/admin/reports/incidencerun/{run.pk}/change/").status_code in (302, 404)
    assert other.get(f"/admin/reports/incidencerun/{run.pk}/csv/").status_code == 404
    listing = other.get("/admin/reports/incidencerun/")
    assert listing.status_code == 200
    assert f"/admin/reports/incidencerun/{run.pk}/change/".encode() not in listing.content


def test_the_form_refuses_a_report_over_the_row_limit_with_the_reason_on_strata(alice, two_clinics, settings):
    settings.REPORTS_MAX_RESULT_ROWS = 10
    response = _client(alice).post(
        ADD, {"strata": ["site", "cell_type"], "cutoff_on": "2024-01-01", "ci_method": "wilson"}
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["strata"]
    assert "78 rows" in errors["strata"][0] and "more than the limit of 10" in errors["strata"][0]
    assert not IncidenceRun.objects.exists()
