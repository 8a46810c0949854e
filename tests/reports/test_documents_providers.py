"""The provider comparison adjusted for case mix on a registry whose clinics share one case mix (hand-worked
expected counts and follow-up, tests.reports.documents_data.build_provider_registry): the page's table and
funnel, the flags both ways and the follow-up completeness beside a low flag; empty cells that say why; the
XLSX and PDF in step with the page; and a run from before all this, which still renders."""

from __future__ import annotations

import io
import math
import re
import subprocess
import zipfile
from html import unescape
from pathlib import Path

import pytest
from django.db import transaction
from openpyxl import load_workbook
from pgtrigger import ignore
from scipy import stats

from registry.models import FollowUpVisit
from reports.documents import charts
from reports.documents.definitions import KM_VS_AJ, NO_COMPARISON, NO_DEFINITIONS, NOT_FROZEN
from reports.documents.provider import LOW_TEXT, provider_comparisons, sir_limits
from reports.engine.providers import compare_providers
from reports.engine.stats import poisson_limit
from reports.models import IncidenceRun, RunProviderComparison, RunProviderRate
from reports.services import incidence_run_execute, incidence_run_start, run_params
from reports.snapshot import followup_completeness
from tests.factories import ClinicFactory
from tests.reports.documents_data import (
    CUTOFF,
    build_hot_registry,
    build_provider_registry,
    finished_run,
    logged_in,
    report_page,
    table_head,
    table_rows,
    three_figures,
)

# --- A registry whose clinics differ after adjustment for case mix ------------------------------------


@pytest.fixture(scope="module")
def provider_run(django_db_setup, django_db_blocker):
    """The provider registry (tests.reports.documents_data) and a run by site with the registry's windows."""
    with django_db_blocker.unblock(), transaction.atomic():
        clinic_a = ClinicFactory(code="A-MAD", name="Clinic A Madrid", country="ES", city="Madrid")
        clinic_b = ClinicFactory(code="B-BER", name="Clinic B Berlin", country="DE", city="Berlin")
        build_provider_registry(clinic_a, clinic_b)
        run = incidence_run_start(
            actor=None, cutoff_on=CUTOFF, strata=["site"], outcomes=["infection", "any"], windows_mode="registry"
        )
        yield incidence_run_execute(run_id=run.pk, task_id=f"providers-{run.pk}")
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_empty_cells_say_why(provider_run, root):
    client = logged_in(root)
    rows = {r[0]: r for r in table_rows(report_page(client, provider_run, outcome="any"), "results")}
    # 3 shoulder procedures: too few for a rate or a cumulative incidence, whose counts are still shown.
    assert rows["shoulder"][1:3] == ["3", "0"]
    assert rows["shoulder"][4:] == ["fewer than 10 procedures"]  # one cell for the rate, KM and AJ
    # 12 spine procedures performed on the cut-off day: in the denominator with no day at risk.
    assert rows["spine"][1:4] == ["12", "0", "0.0"]
    assert rows["spine"][4] == "no person-time"
    assert rows["spine"][5:] == ["0.0 %"] * 8
    acute = {r[0]: r for r in table_rows(report_page(client, provider_run, outcome="infection"), "results")}
    assert acute["shoulder"][3] == "fewer than 10 procedures"
    # knee: 35 procedures, 10 infections; Wilson 95 % interval as statsmodels computes it, by hand here.
    z = stats.norm.ppf(0.975)
    p, n = 10 / 35, 35
    centre, half = (
        (p + z**2 / (2 * n)) / (1 + z**2 / n),
        z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n),
    )
    assert acute["knee"][3] == f"{p * 100:.1f} % ({(centre - half) * 100:.1f} to {(centre + half) * 100:.1f} %)"


def _completeness_by_hand(clinic_code: str) -> tuple[int, int]:
    """Visits due by the cut-off (not after death or withdrawal) and completed by it, counted in Python."""
    due = completed = 0
    for v in FollowUpVisit.objects.filter(procedure__clinic__code=clinic_code).select_related("procedure__patient"):
        patient = v.procedure.patient
        if v.retracted_at or v.procedure.retracted_at or patient.retracted_at or v.due_on > CUTOFF:
            continue
        if any(d is not None and d < v.due_on for d in (patient.death_date, patient.withdrawn_on)):
            continue
        due += 1
        completed += v.completed_on is not None and v.completed_on <= CUTOFF
    return due, completed


@pytest.mark.django_db
def test_follow_up_completeness_is_the_share_of_due_visits_completed_by_the_cut_off(provider_run):
    assert {code: _completeness_by_hand(code) for code in ("A-MAD", "B-BER", "C-HOT")} == {
        "A-MAD": (180, 90),
        "B-BER": (194, 32),
        "C-HOT": (60, 0),
    }
    params = run_params(provider_run)
    assert followup_completeness(params, "clinic") == {"A-MAD": (180, 90), "B-BER": (194, 32), "C-HOT": (60, 0)}
    assert followup_completeness(params, "gmp") == {"true": (374, 122), "false": (60, 0)}
    stored = {
        (r.group, r.outcome): (r.followup_due, r.followup_completed)
        for r in provider_run.provider_comparisons.filter(grouping="clinic")
    }
    assert stored[("A-MAD", "infection")] == stored[("A-MAD", "any")] == (180, 90)


@pytest.mark.django_db
def test_the_provider_comparison_is_adjusted_for_case_mix_and_flags_both_ways(provider_run, root):
    comparisons = {c.grouping: c for c in provider_comparisons(provider_run, outcome="infection")}
    assert set(comparisons) == {"clinic", "country", "gmp"}
    clinics = {r.group: r for r in comparisons["clinic"].rows}
    # Hand-worked (documents_data.build_provider_registry): p = 2/7 in the knee and hip strata.
    expected = {"A-MAD": 60 / 7, "B-BER": 60 / 7, "C-HOT": 20 / 7}
    observed = {"A-MAD": 0, "B-BER": 10, "C-HOT": 10}
    for code, row in clinics.items():
        assert row.basis == "proportion"
        assert row.expected == pytest.approx(expected[code], rel=1e-12)
        assert row.observed == observed[code]
        assert row.p_high == pytest.approx(stats.poisson.sf(observed[code] - 1, expected[code]), rel=1e-9)
        assert row.p_low == pytest.approx(stats.poisson.cdf(observed[code], expected[code]), rel=1e-9)
    assert {code: r.flag for code, r in clinics.items()} == {
        "A-MAD": "below 99.8 %",
        "B-BER": "",
        "C-HOT": "above 99.8 %",
    }
    assert {r.label for r in comparisons["gmp"].rows} == {"GMP certified", "not GMP certified"}

    client = logged_in(root)
    html = report_page(client, provider_run, outcome="infection")
    table = {r[0]: r for r in table_rows(html, "provider-table")}
    low, high = stats.chi2.ppf(0.025, 20) / 2 / (20 / 7), stats.chi2.ppf(0.975, 22) / 2 / (20 / 7)
    assert table["C-HOT"][4:6] == ["2.86", f"3.5 ({three_figures(low)} to {three_figures(high)})"]
    assert table["C-HOT"][8] == "more than expected (above 99.8 % limit)"
    assert (table["A-MAD"][2], table["A-MAD"][4]) == ("0", "8.57")
    assert (
        table["A-MAD"][8]
        == f"{LOW_TEXT} (below 99.8 % limit)"
        == ("fewer than expected: safer care or under-reporting (below 99.8 % limit)")
    )
    # ... beside the clinic's follow-up completeness.
    assert table["A-MAD"][9] == "50.0 % (90 of 180 visits due)"
    assert table["B-BER"][9] == "16.5 % (32 of 194 visits due)"
    assert table["C-HOT"][9] == "0.0 % (0 of 60 visits due)"
    assert (
        f"/admin/reports/incidencerun/{provider_run.pk}/chart/funnel.png?outcome=infection&amp;grouping=clinic" in html
    )
    assert "Compared on proportions" in html
    # The country and GMP comparisons are one link away.
    gmp = report_page(client, provider_run, outcome="infection", grouping="gmp")
    assert {r[0] for r in table_rows(gmp, "provider-table")} == {"GMP certified", "not GMP certified"}
    assert "grouping=gmp" in gmp and 'data-grouping="gmp" class="current"' in gmp
    image = client.get(
        f"/admin/reports/incidencerun/{provider_run.pk}/chart/funnel.png?outcome=infection&grouping=country"
    )
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


@pytest.mark.django_db
def test_the_funnel_plots_sir_against_expected_within_exact_poisson_limits(provider_run):
    comparison = next(c for c in provider_comparisons(provider_run, outcome="infection") if c.grouping == "clinic")
    labels = charts.figure_labels(charts.funnel_figure(comparison))
    assert {"C-HOT (above 99.8 %)", "A-MAD (below 99.8 %)", "B-BER"} <= set(labels)
    assert {"SIR = 1 (as expected)", "95 % limits", "99.8 % limits"} <= set(labels)
    # The limits of O / E for O ~ Poisson(E): the (interpolated) Poisson quantiles over E.
    for e in (0.5, 20 / 7, 60 / 7, 40.0, 400.0):
        limits = sir_limits([e])
        for key, (lo, hi) in (("95", (0.025, 0.975)), ("99.8", (0.001, 0.999))):
            for side, p in ((0, lo), (1, hi)):
                r = stats.poisson.ppf(p, e)
                assert r - 1 <= limits[key][side][0] * e <= r
                assert limits[key][side][0] == pytest.approx(float(poisson_limit(e, p)) / e)
    # Where many cases are expected they approach the normal approximation 1 +- 1.96 / sqrt(E).
    low, high = (float(v[0]) for v in sir_limits([400.0])["95"])
    assert (low, high) == (pytest.approx(1 - 1.96 / 20, abs=0.01), pytest.approx(1 + 1.96 / 20, abs=0.01))
    # C-HOT lies above its 99.8 % upper limit, A-MAD below its lower one, B-BER within the 95 % ones.
    rows = {r.group: r for r in comparison.rows}
    for code, (key, side) in {"C-HOT": ("99.8", 1), "A-MAD": ("99.8", 0)}.items():
        limit = sir_limits([rows[code].expected])[key][side][0]
        assert (rows[code].sir > limit) if side else (rows[code].sir < limit)
    b_low, b_high = (float(v[0]) for v in sir_limits([rows["B-BER"].expected])["95"])
    assert b_low < rows["B-BER"].sir < b_high


@pytest.mark.django_db
def test_the_workbook_carries_definitions_methods_aj_and_the_adjusted_comparison(provider_run, root):
    response = logged_in(root).get(f"/admin/reports/incidencerun/{provider_run.pk}/xlsx/")
    assert response.status_code == 200
    wb = load_workbook(io.BytesIO(response.content))
    assert wb.sheetnames == [
        "Incidence",
        "Provider comparison",
        "Funnel data",
        "Funnel plots",
        "Line listing",
        "Outcome definitions",
        "Definitions",
    ]
    incidence = list(wb["Incidence"].iter_rows(values_only=True))
    assert list(incidence[0][-4:]) == ["aj_cuminc_30d", "aj_cuminc_1y", "aj_cuminc_2y", "aj_cuminc_5y"]
    stored = list(provider_run.results.order_by("position"))
    for row, r in zip(incidence[1:], stored, strict=True):
        aj = [getattr(r, f"aj_cuminc_{h}") for h in ("30d", "1y", "2y", "5y")]
        assert list(row[-4:]) == [None if v is None else pytest.approx(v, rel=1e-15) for v in aj]
    provider = list(wb["Provider comparison"].iter_rows(values_only=True))
    head = provider[0]
    rows = [dict(zip(head, r, strict=True)) for r in provider[1:]]
    assert len(rows) == provider_run.provider_comparisons.count() == 3 * 2 + 3 * 2 + 2 * 2
    hot = next(r for r in rows if r["group"] == "C-HOT" and r["outcome"] == "infection")
    assert hot["flag"] == "above 99.8 %" and hot["expected"] == pytest.approx(20 / 7, rel=1e-12)
    assert hot["sir_limit_99_8_high"] == pytest.approx(float(poisson_limit(20 / 7, 0.999)) / (20 / 7))
    low = next(r for r in rows if r["group"] == "A-MAD" and r["outcome"] == "infection")
    assert low["flag_meaning"].startswith(LOW_TEXT) and low["followup_completeness"] == pytest.approx(0.5)
    assert (low["followup_visits_due"], low["followup_visits_completed"]) == (180, 90)
    funnel = list(wb["Funnel data"].iter_rows(values_only=True))
    assert funnel[0] == (
        "outcome",
        "grouping",
        "expected",
        "limit_95_low",
        "limit_95_high",
        "limit_99_8_low",
        "limit_99_8_high",
    )
    assert len(funnel) - 1 == 60 * 6  # 2 outcomes x 3 groupings, 60 points each
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        charts_xml = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts_xml) == 6
        assert b"scatterChart" in archive.read(charts_xml[0])
    definitions = list(wb["Outcome definitions"].iter_rows(values_only=True))
    assert definitions[1][:6] == ("any", "Any adverse event", "any", 0, None, 1) and definitions[1][6] == "long-term"
    assert definitions[2][:6] == ("infection", "Infection", "infection", 0, 90, 1) and definitions[2][6] == "acute"
    terms = dict(list(wb["Definitions"].iter_rows(values_only=True))[1:])
    assert terms["Kaplan-Meier and Aalen-Johansen"] == KM_VS_AJ
    assert "Aalen-Johansen" in terms["Aalen-Johansen"] and "visits" in terms["Follow-up completeness"]
    assert "risk window day 0 to day 90" in terms["Outcome infection"]
    # No formula anywhere: every cell is a value.
    assert not any(cell.data_type == "f" for ws in wb.worksheets for row in ws.iter_rows() for cell in row)


@pytest.mark.django_db
def test_the_pdf_carries_definitions_methods_aj_and_the_adjusted_comparison(provider_run, root, tmp_path: Path):
    response = logged_in(root).get(f"/admin/reports/incidencerun/{provider_run.pk}/pdf/?outcome=infection")
    assert response.status_code == 200
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    text = subprocess.run(["/usr/bin/pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", " ", text)
    for words in (
        "Outcome definitions (frozen with the run)",
        "day 0 to day 90",
        "Aalen-Johansen",
        "Why KM and AJ differ",
        "AJ 1y",
        "fewer than 10 procedures",
        "no person-time",
        "Provider comparison adjusted for case mix, by clinic",
        "Provider comparison adjusted for case mix, by country",
        "Provider comparison adjusted for case mix, by GMP certification",
        "fewer than expected: safer care or under-reporting",
        "50.0 % (90 of 180 visits)",
        "more than expected (above 99.8 % limit)",
        "Follow-up completeness",
    ):
        assert words in flat, words
    assert not re.search(r"\de[+-]\d", flat)


# --- A run from before any of this ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_from_before_comparisons_and_definitions_still_renders_and_says_so(root, clinic_a, clinic_b):
    build_hot_registry(clinic_a, clinic_b)
    run = finished_run(actor=root, strata=("site",), outcomes=["infection", "any"])
    with ignore(
        "reports.IncidenceRun:incidencerun_succeeded_is_immutable",
        "reports.IncidenceRun:incidencerun_parameters_frozen",
        "reports.RunProviderComparison:runprovidercomparison_snapshot_immutable",
    ):
        RunProviderComparison.objects.filter(run=run).delete()
        IncidenceRun.objects.filter(pk=run.pk).update(outcome_definitions=[])
    run.refresh_from_db()
    assert not RunProviderRate.objects.filter(run=run).exists()  # new runs store no crude rates any more
    client = logged_in(root)
    html = unescape(report_page(client, run, outcome="infection"))
    assert NO_COMPARISON in html and NO_DEFINITIONS in html and NOT_FROZEN not in html
    assert "day 0 to the end of follow-up (open)" in html
    for document in ("xlsx/", "pdf/", "chart/funnel.png?grouping=gmp", "chart/km.png"):
        assert client.get(f"/admin/reports/incidencerun/{run.pk}/{document}").status_code == 200, document


@pytest.mark.django_db
def test_the_stored_comparison_is_compare_providers_by_clinic_country_and_gmp(provider_run):
    params = run_params(provider_run)
    stored = list(provider_run.provider_comparisons.order_by("position").values())
    for grouping in ("clinic", "country", "gmp"):
        engine = compare_providers(params=params, group=grouping, adjust=("site", "cell_type", "age_band", "sex"))
        rows = [r for r in stored if r["grouping"] == grouping]
        assert len(rows) == len(engine)
        for row, expected in zip(rows, engine, strict=True):
            for key, value in expected.items():
                assert row[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key


@pytest.mark.django_db
def test_a_patient_unit_run_says_patients_and_groups_completeness_by_the_patients_clinic(provider_run, root):
    run = incidence_run_execute(
        run_id=incidence_run_start(
            actor=None,
            cutoff_on=CUTOFF,
            strata=["site"],
            outcomes=["infection"],
            windows_mode="registry",
            unit="patient",
        ).pk,
        task_id="patient-unit",
    )
    html = report_page(logged_in(root), run, outcome="infection")
    assert table_head(html, "results")[1] == "patients"
    assert {r[0]: r[3] for r in table_rows(html, "results")}["shoulder"] == "fewer than 10 patients"
    assert "Unit: the patient; time zero T is the patient&#x27;s first procedure" in html
    # Every patient here has one procedure: the same visits, grouped by the patient's clinic.
    stored = {
        r.group: (r.followup_due, r.followup_completed) for r in run.provider_comparisons.filter(grouping="clinic")
    }
    assert stored == {"A-MAD": (180, 90), "B-BER": (194, 32), "C-HOT": (60, 0)}
