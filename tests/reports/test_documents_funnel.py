"""The funnel plot compares clinics after adjustment for case mix: the "hot" clinic, far above the pooled
crude rate, treats only patients over 90, and no other clinic does; adjusted for age band (among site, cell
type and sex) it is as expected, while the comparison adjusted for site and cell type alone still flags it."""

from __future__ import annotations

import pytest
from scipy import stats

from reports.documents import charts
from reports.documents.provider import provider_comparisons
from reports.engine.providers import compare_providers
from reports.models import RunProviderRate
from reports.services import run_params
from tests.reports.documents_data import build_hot_registry, finished_run
from tests.reports.test_documents_charts import png_size

pytestmark = pytest.mark.django_db


def test_the_hot_clinics_crude_excess_is_its_case_mix(root, clinic_a, clinic_b):
    build_hot_registry(clinic_a, clinic_b)
    run = finished_run(actor=root, strata=("site",), outcomes=["infection", "any"])
    assert not RunProviderRate.objects.filter(run=run).exists()  # the crude rates are no longer stored
    comparison = next(c for c in provider_comparisons(run, outcome="infection") if c.grouping == "clinic")
    assert comparison.basis == "person_time"  # every window open
    rows = {r.group: r for r in comparison.rows}
    assert {code: r.observed for code, r in rows.items()} == {"A-MAD": 2, "B-BER": 1, "C-HOT": 6}
    # C-HOT's patients (born 1930, 80+) are the only ones of their age band: their stratum's reference rate is
    # their own, so expected = observed and SIR = 1.
    hot = rows["C-HOT"]
    assert hot.expected == pytest.approx(6.0, rel=1e-12) and hot.sir == pytest.approx(1.0, rel=1e-12)
    assert hot.p_high == pytest.approx(stats.poisson.sf(5, 6.0), rel=1e-9) and hot.flag == ""
    assert all(r.flag == "" for r in comparison.rows)
    figure = charts.funnel_figure(comparison)
    labels = charts.figure_labels(figure)
    assert {"A-MAD", "B-BER", "C-HOT", "SIR = 1 (as expected)", "95 % limits", "99.8 % limits"} <= set(labels)
    width, height = png_size(charts.png(figure))
    assert width >= 1200 and height >= 600

    # Adjusted for site and cell type alone, the hot clinic's 6 infections within days stand far above what
    # the others' rates per person-year predict for its few person-years.
    crude = {
        r["group"]: r
        for r in compare_providers(params=run_params(run), group="clinic", adjust=("site", "cell_type"))
        if r["outcome"] == "infection"
    }
    assert crude["C-HOT"]["flag"] == "above 99.8 %" and crude["C-HOT"]["expected"] < 0.1
