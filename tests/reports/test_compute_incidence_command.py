"""manage.py compute_incidence: CSV on stdout with fixed columns, the same numbers as a stored run."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from registry.models import Procedure
from reports.exports.incidence_csv import write_csv
from reports.services import incidence_run_execute, incidence_run_start
from tests.factories import ProcedureFactory
from tests.reports.conftest import add_event

LEADING = [
    *("outcome", "procedures", "cases", "proportion", "proportion_ci_low", "proportion_ci_high"),
    *("person_years", "rate_per_100py", "rate_ci_low", "rate_ci_high"),
    *("km_cuminc_30d", "km_cuminc_1y", "km_cuminc_2y", "km_cuminc_5y"),
]


def _run(*args) -> str:
    out = io.StringIO()
    call_command("compute_incidence", *args, stdout=out)
    return out.getvalue()


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_it_writes_the_stratum_columns_then_the_documented_measures(two_clinics):
    text = _run("--by", "site,cell_type", "--cutoff", "2024-01-01")
    header = text.splitlines()[0].split(",")
    assert header[: 2 + len(LEADING)] == ["site", "cell_type", *LEADING]


def test_it_marks_margins_all_and_writes_full_precision(two_clinics):
    rows = _rows(_run("--by", "site,cell_type", "--cutoff", "2024-01-01", "--outcome", "infection"))
    assert {r["outcome"] for r in rows} == {"infection"}
    total = next(r for r in rows if r["site"] == "ALL" and r["cell_type"] == "ALL")
    assert (total["procedures"], total["cases"]) == ("3", "2")
    assert total["proportion"] == repr(2 / 3)
    # Times: 0 and 3 (cases), 400 (censored): S(30) = 2/3 * 1/2, S(365) likewise; nobody reached
    # 2 years, so 2 and 5 years carry the last value forward, as lifelines does.
    assert float(total["km_cuminc_30d"]) == pytest.approx(2 / 3, rel=1e-12)
    assert total["km_cuminc_2y"] == total["km_cuminc_5y"] == total["km_cuminc_1y"] == total["km_cuminc_30d"]


def test_without_an_outcome_it_reports_every_outcome(two_clinics):
    rows = _rows(_run("--by", "site", "--cutoff", "2024-01-01"))
    assert len({r["outcome"] for r in rows}) == 13


def test_it_gives_the_same_numbers_as_a_stored_run(root, two_clinics):
    run = incidence_run_start(actor=root, cutoff_on=dt.date(2024, 1, 1), onset_window_days=10)
    run = incidence_run_execute(run_id=run.pk)
    stored = io.StringIO()
    write_csv(stored, strata=run.strata, records=run.results.order_by("position").values())
    assert _run("--by", "site,cell_type", "--cutoff", "2024-01-01", "--window", "10") == stored.getvalue()


def test_clopper_pearson_can_be_asked_for(two_clinics):
    wilson = _rows(_run("--by", "", "--cutoff", "2024-01-01", "--outcome", "any"))
    exact = _rows(_run("--by", "", "--cutoff", "2024-01-01", "--outcome", "any", "--ci", "clopper-pearson"))
    assert wilson[0]["proportion"] == exact[0]["proportion"]
    assert wilson[0]["proportion_ci_low"] != exact[0]["proportion_ci_low"]


def test_a_clinicians_command_never_includes_another_clinics_procedures(alice, charlie, two_clinics):
    mine = _rows(_run("--by", "clinic", "--cutoff", "2024-01-01", "--outcome", "any", "--user", "charlie"))
    assert {r["clinic"] for r in mine} == {"B-BER", "ALL"}
    assert next(r for r in mine if r["clinic"] == "ALL")["procedures"] == "1"


def test_it_rejects_an_unknown_stratum_or_a_bad_date(db):
    with pytest.raises(CommandError, match="shoe_size"):
        _run("--by", "site,shoe_size", "--cutoff", "2024-01-01")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        _run("--cutoff", "01/01/2024")


def test_it_refuses_a_report_over_the_row_limit_before_computing_it(two_clinics, settings):
    settings.REPORTS_MAX_RESULT_ROWS = 100
    with pytest.raises(CommandError, match=r"strata: This report would have at least [\d,]+ rows"):
        _run("--by", "site,cell_type,cell_source,clinic,country,sex,age_band,year", "--cutoff", "2024-01-01")
    assert _rows(_run("--by", "site", "--cutoff", "2024-01-01", "--outcome", "any,infection"))  # within it


def test_every_outcome_comes_in_report_order_whatever_order_the_engine_streams(two_clinics):
    rows = _rows(_run("--by", "site,cell_type", "--cutoff", "2024-01-01", "--outcome", "any,infection,neoplasm"))
    outcomes = [r["outcome"] for r in rows]
    assert outcomes == sorted(outcomes, key=["any", "infection", "neoplasm"].index)
    per_outcome = [(r["site"], r["cell_type"]) for r in rows if r["outcome"] == "any"]
    assert per_outcome == [(r["site"], r["cell_type"]) for r in rows if r["outcome"] == "neoplasm"]
    assert per_outcome[-1] == ("ALL", "ALL")  # margins last


def test_the_aalen_johansen_columns_come_after_the_existing_ones(two_clinics):
    header = _run("--by", "site", "--cutoff", "2024-01-01").splitlines()[0].split(",")
    assert header[-4:] == ["aj_cuminc_30d", "aj_cuminc_1y", "aj_cuminc_2y", "aj_cuminc_5y"]
    assert header[1 : 1 + len(LEADING)] == LEADING


def test_registry_windows_and_a_window_end_person_time(two_clinics):
    def total(*extra):
        rows = _rows(_run("--by", "", "--cutoff", "2024-01-01", "--outcome", "infection,neoplasm", *extra))
        return {r["outcome"]: r for r in rows}

    open_ = total()
    # Infection: A1 case day 3, A2 followed to the cut-off (day 351), B1 case day 0 (and a neoplasm on day 5).
    assert (open_["infection"]["procedures"], open_["infection"]["cases"]) == ("3", "2")
    assert float(open_["infection"]["person_years"]) == pytest.approx((3 + 351 + 0) / 365.25)
    registry = total("--windows", "registry")
    # Infection's window is 0-90: A2 is at risk to day 90 only.
    assert float(registry["infection"]["person_years"]) == pytest.approx((3 + 90 + 0) / 365.25)
    # Neoplasm's is 180-open: B1's neoplasm on day 5 is prevalent (out), A1 ended on day 30 (< 180: out),
    # A2 is at risk from day 180 to day 351, without a case.
    assert (registry["neoplasm"]["procedures"], registry["neoplasm"]["cases"]) == ("1", "0")
    assert float(registry["neoplasm"]["person_years"]) == pytest.approx(171 / 365.25)
    window = total("--window", "2")
    assert (window["infection"]["cases"], float(window["infection"]["person_years"])) == (
        "1",
        pytest.approx((2 + 2 + 0) / 365.25),
    )


def test_the_patient_unit_counts_a_patient_once_from_the_first_procedure(two_clinics):
    a2 = two_clinics["a2"]
    # A second procedure of A2's patient, 100 days after the first, with an infection 10 days later.
    later = ProcedureFactory(patient=a2.patient, performed_on=a2.performed_on + dt.timedelta(days=100))
    add_event(later, 10)
    assert Procedure.objects.filter(patient=a2.patient).count() == 2
    by_procedure = _rows(_run("--by", "", "--cutoff", "2024-01-01", "--outcome", "infection"))[0]
    by_patient = _rows(_run("--by", "", "--cutoff", "2024-01-01", "--outcome", "infection", "--unit", "patient"))[0]
    assert (by_procedure["procedures"], by_procedure["cases"]) == ("4", "3")
    # Patients: A1 (case day 3), A2 (case on day 110 of the first procedure), B1 (case day 0).
    assert (by_patient["procedures"], by_patient["cases"]) == ("3", "3")
    assert float(by_patient["person_years"]) == pytest.approx((3 + 110 + 0) / 365.25)


def test_an_unknown_unit_or_windows_mode_is_refused(two_clinics):
    with pytest.raises(CommandError):
        _run("--by", "", "--cutoff", "2024-01-01", "--unit", "household")
    with pytest.raises(CommandError):
        _run("--by", "", "--cutoff", "2024-01-01", "--windows", "sometimes")
