"""Run options: risk windows (open or the registry's definitions, frozen in the run) and the unit of the report."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.test import Client
from rest_framework.test import APIClient

from reports.choices import OUTCOME_LABELS, OUTCOMES, RunStatus, Trigger, Unit, WindowsMode
from reports.engine import iter_incidence
from reports.models import IncidenceRun
from reports.services import incidence_run_execute, incidence_run_start, outcome_definition_save, run_params

ADD = "/admin/reports/incidencerun/add/"
API = "/api/v1/reports/incidence-runs/"
CUTOFF = dt.date(2024, 1, 1)
# DESIGN 2b's default windows of the outcomes these tests ask for.
INFECTION, NEOPLASM, ANY = (0, 90), (180, None), (0, None)


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _used(code, window, version):
    start, end = window
    return {
        "code": code,
        "label": OUTCOME_LABELS[code],
        "qualifies": code,
        "window_start_day": start,
        "window_end_day": end,
        "version": version,
    }


def _table(rows):
    return [(dict(r.stratum), r.outcome, r.procedures, r.cases, r.person_days) for _, r in rows]


# --- where runs start ----------------------------------------------------------------------------------


def test_a_run_from_the_admin_form_uses_the_registrys_definitions_by_default(alice, two_clinics):
    form = _admin(alice).get(ADD)
    assert form.context["form"]["windows_mode"].initial == WindowsMode.REGISTRY
    assert "registry's outcome definitions" in form.context["form"].fields["windows_mode"].help_text
    response = _admin(alice).post(
        ADD,
        {"strata": ["site"], "outcomes": ["infection", "neoplasm"], "cutoff_on": "2024-01-01", "ci_method": "wilson"},
    )
    assert response.status_code == 302
    run = IncidenceRun.objects.get()
    assert (run.trigger, run.windows_mode, run.unit) == (Trigger.ADMIN, WindowsMode.REGISTRY, Unit.PROCEDURE)
    assert run.outcome_definitions == [_used("infection", INFECTION, 1), _used("neoplasm", NEOPLASM, 1)]
    page = _admin(alice).get(response["Location"]).content.decode()
    assert "Outcome definitions used" in page and "day 180 to open" in page and "day 0 to day 90" in page


def test_the_admin_form_takes_the_patient_unit_and_open_windows(alice, two_clinics):
    _admin(alice).post(
        ADD,
        {
            "strata": ["site"],
            "outcomes": ["neoplasm"],
            "cutoff_on": "2024-01-01",
            "ci_method": "wilson",
            "windows_mode": "open",
            "unit": "patient",
        },
    )
    run = IncidenceRun.objects.get()
    assert (run.windows_mode, run.unit) == (WindowsMode.OPEN, Unit.PATIENT)
    assert run.outcome_definitions == [_used("neoplasm", (0, None), None)]


@pytest.mark.parametrize(("field", "value"), [("unit", "household"), ("windows_mode", "weekly")])
def test_the_admin_form_refuses_a_bad_option_on_its_field(alice, field, value):
    response = _admin(alice).post(
        ADD, {"strata": ["site"], "cutoff_on": "2024-01-01", "ci_method": "wilson", field: value}
    )
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert not IncidenceRun.objects.exists()


def test_a_run_from_the_api_uses_the_registrys_definitions_and_says_so(alice, two_clinics):
    response = _api(alice).post(API, {"cutoff_on": "2024-01-01", "outcomes": ["any", "infection"]}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["windows_mode"], body["unit"]) == ("registry", "procedure")
    assert body["outcome_definitions"] == [_used("any", ANY, 1), _used("infection", INFECTION, 1)]
    run = IncidenceRun.objects.get(pk=body["id"])
    assert (run.windows_mode, run.unit, run.outcome_definitions) == (
        WindowsMode.REGISTRY,
        Unit.PROCEDURE,
        body["outcome_definitions"],
    )
    assert _api(alice).get(f"{API}{run.pk}/").json()["outcome_definitions"] == body["outcome_definitions"]


def test_the_api_takes_the_patient_unit(alice, two_clinics):
    response = _api(alice).post(API, {"cutoff_on": "2024-01-01", "unit": "patient"}, format="json")
    assert response.status_code == 202, response.content
    assert IncidenceRun.objects.get().unit == Unit.PATIENT


@pytest.mark.parametrize(("field", "value"), [("unit", "household"), ("windows_mode", "weekly")])
def test_the_api_refuses_a_bad_option_with_a_field_error(alice, field, value):
    response = _api(alice).post(API, {"cutoff_on": "2024-01-01", field: value}, format="json")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["attr"] == field
    assert not IncidenceRun.objects.exists()


def test_the_nightly_run_uses_the_registrys_definitions(db, django_capture_on_commit_callbacks):
    from reports.tasks import incidence_nightly_task

    run = IncidenceRun.objects.get(pk=incidence_nightly_task())
    assert (run.trigger, run.windows_mode, run.unit) == (Trigger.BEAT, WindowsMode.REGISTRY, Unit.PROCEDURE)
    assert [d["code"] for d in run.outcome_definitions] == list(OUTCOMES)
    assert {d["version"] for d in run.outcome_definitions} == {1}


def test_the_service_defaults_to_open_windows_as_the_command_line_does(root):
    run = incidence_run_start(actor=root, cutoff_on=CUTOFF, outcomes=["neoplasm"])
    assert (run.windows_mode, run.unit) == (WindowsMode.OPEN, Unit.PROCEDURE)
    assert run.outcome_definitions == [_used("neoplasm", (0, None), None)]


@pytest.mark.parametrize(("field", "value"), [("unit", "household"), ("windows_mode", "weekly")])
def test_the_service_refuses_a_bad_option_on_its_field(root, field, value):
    with pytest.raises(ValidationError) as err:
        incidence_run_start(actor=root, cutoff_on=CUTOFF, **{field: value})
    assert list(err.value.message_dict) == [field]
    assert not IncidenceRun.objects.exists()


# --window N ends every window on day N and keeps each start day (DESIGN 2b): neoplasm 180-30 has no time at risk.
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("registry", [("infection", (0, 30), 1), ("neoplasm", (180, 30), 1)]),
        ("open", [("infection", (0, 30), None), ("neoplasm", (0, 30), None)]),
    ],
)
def test_an_onset_window_ends_every_frozen_window(root, mode, expected):
    run = incidence_run_start(
        actor=root, cutoff_on=CUTOFF, outcomes=["infection", "neoplasm"], onset_window_days=30, windows_mode=mode
    )
    assert run.outcome_definitions == [_used(code, window, version) for code, window, version in expected]
    params = run_params(run)
    assert params.windows == tuple(window for _, window, _ in expected)
    assert params.onset_window_days == 30


# --- a run keeps the definitions it started with -------------------------------------------------------


def test_editing_a_definition_after_the_run_does_not_change_its_parameters(root, alice, two_clinics):
    run = incidence_run_start(
        actor=alice, cutoff_on=CUTOFF, outcomes=["infection"], windows_mode=WindowsMode.REGISTRY, unit=Unit.PATIENT
    )
    before = run_params(run)
    assert (before.windows, before.unit) == ((INFECTION,), Unit.PATIENT)
    outcome_definition_save(
        actor=root, code="infection", label="Infection", window_start_day=0, window_end_day=2, based_on_version=1
    )
    run.refresh_from_db()
    assert run_params(run) == before
    assert run.outcome_definitions == [_used("infection", INFECTION, 1)]
    # A run started now uses version 2.
    later = incidence_run_start(actor=alice, cutoff_on=CUTOFF, outcomes=["infection"], windows_mode="registry")
    assert later.outcome_definitions == [_used("infection", (0, 2), 2)]


def test_a_run_recomputed_after_an_edit_gives_the_same_numbers(root, alice, two_clinics):
    """Alice's clinic: a1 infection on day 3, visit on day 30; a2 no event, visit on day 400 (conftest.two_clinics).

    Infection window 0-90 (version 1): a1 is a case (3 days at risk), a2 (observed to the cut-off, day 351) is
    followed to day 90: 1 case of 2, 93 days. Window 0-2 (version 2): a1's day-3 infection falls outside, each
    is followed to day 2: 0 cases, 4 days.
    """
    run = incidence_run_start(
        actor=alice, cutoff_on=CUTOFF, strata=[], outcomes=["infection"], windows_mode=WindowsMode.REGISTRY
    )
    first = _table(iter_incidence(params=run_params(run)))
    assert first == [({}, "infection", 2, 1, 93)]
    outcome_definition_save(
        actor=root, code="infection", label="Infection", window_start_day=0, window_end_day=2, based_on_version=1
    )
    run.refresh_from_db()
    assert _table(iter_incidence(params=run_params(run))) == first
    later = incidence_run_start(
        actor=alice, cutoff_on=CUTOFF, strata=[], outcomes=["infection"], windows_mode="registry"
    )
    assert _table(iter_incidence(params=run_params(later))) == [({}, "infection", 2, 0, 4)]


def test_a_run_made_before_definitions_existed_keeps_open_windows(root):
    # As migration 0005 leaves older runs: open windows, procedure unit, no frozen definitions.
    run = IncidenceRun.objects.create(
        strata=["site"], outcomes=["infection", "neoplasm"], cutoff_on=CUTOFF, trigger=Trigger.COMMAND
    )
    assert (run.windows_mode, run.unit, run.outcome_definitions) == (WindowsMode.OPEN, Unit.PROCEDURE, [])
    params = run_params(run)
    assert (params.windows, params.unit) == (((0, None), (0, None)), Unit.PROCEDURE)


def test_the_run_stores_aalen_johansen_beside_kaplan_meier(alice, two_clinics):
    """Hand-worked (DESIGN 2b) on alice's clinic, infection 0-90: at day 3, n = 2 at risk, one case, no deaths:
    AJ(30) = S(3-) * d1 / n = 1 * 1/2 = 0.5; with no competing death it equals Kaplan-Meier's 1 - S at every
    horizon (nobody is followed past day 90, so both say the same of 1, 2 and 5 years)."""
    run = incidence_run_start(
        actor=alice, cutoff_on=CUTOFF, strata=[], outcomes=["infection"], windows_mode=WindowsMode.REGISTRY
    )
    run = incidence_run_execute(run_id=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    (row,) = run.results.all()
    assert row.aj_cuminc_30d == row.km_cuminc_30d == 0.5
    assert (row.aj_cuminc_1y, row.aj_cuminc_2y, row.aj_cuminc_5y) == (
        row.km_cuminc_1y,
        row.km_cuminc_2y,
        row.km_cuminc_5y,
    )
    body = _api(alice).get(f"{API}{run.pk}/").json()
    assert body["results"][0]["aj_cuminc_30d"] == 0.5


@pytest.mark.parametrize(
    ("field", "value"),
    [("windows_mode", WindowsMode.OPEN), ("unit", Unit.PATIENT), ("outcome_definitions", [])],
)
def test_the_database_keeps_a_runs_options_and_definitions_frozen(root, field, value):
    run = incidence_run_start(actor=root, cutoff_on=CUTOFF, outcomes=["infection"], windows_mode=WindowsMode.REGISTRY)
    with pytest.raises(DatabaseError), transaction.atomic():
        IncidenceRun.objects.filter(pk=run.pk).update(**{field: value})
    run.refresh_from_db()
    assert (run.windows_mode, run.unit, run.outcome_definitions) == (
        WindowsMode.REGISTRY,
        Unit.PROCEDURE,
        [_used("infection", INFECTION, 1)],
    )
