"""The run's charts on a random registry: Kaplan-Meier curves that meet the stored horizons, the forest plot."""

from __future__ import annotations

import io

import pytest
from django.db import transaction
from PIL import Image

from reports.choices import HORIZONS, MARGIN
from reports.documents import charts
from reports.documents.curves import km_curves, stratum_label
from reports.engine import km_curves as engine_km_curves
from reports.engine.stats import control_limits, poisson_limit
from reports.selectors import results_of_run
from reports.services import incidence_run_execute, incidence_run_start, run_params
from tests.reports.documents_data import CUTOFF
from tests.reports.generated_registry import build_generated_registry


@pytest.fixture(scope="module")
def generated_runs(django_db_setup, django_db_blocker):
    """A random registry (day-0 events, ties, withdrawals, deaths, retractions) and two runs of it."""
    with django_db_blocker.unblock(), transaction.atomic():
        clinics = build_generated_registry(procedures=900)
        runs = []
        for kwargs in (
            {"strata": ["site", "cell_type"]},
            {"strata": ["clinic"], "outcomes": ["infection", "serious"], "onset_window_days": 60},
        ):
            run = incidence_run_start(actor=None, cutoff_on=CUTOFF, **kwargs)
            runs.append(incidence_run_execute(run_id=run.pk, task_id=f"gen-{run.pk}"))
        yield clinics, runs
        transaction.set_rollback(True)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.size


@pytest.mark.django_db
@pytest.mark.parametrize("which", [0, 1])
def test_the_curves_pass_through_every_stored_kaplan_meier_figure(generated_runs, which):
    run = generated_runs[1][which]
    checked = 0
    for outcome in run.outcomes[:4]:
        rows = [r for r in results_of_run(run) if r.outcome == outcome]
        curves = engine_km_curves(params=run_params(run), outcome=outcome, strata=[r.stratum for r in rows])
        for row, curve in zip(rows, curves, strict=True):
            assert curve.procedures == row.procedures
            for label, day in HORIZONS:
                stored = getattr(row, f"km_cuminc_{label}")
                if stored is not None:
                    assert curve.at(day) == pytest.approx(stored, abs=1e-12), (outcome, row.stratum, label)
                    checked += 1
    assert checked >= 32  # every row, every horizon: 4 rows x 2 outcomes x 4 at the least


@pytest.mark.django_db
def test_the_default_curves_are_every_finest_stratum_and_the_overall_one(generated_runs):
    run = generated_runs[1][0]
    curves = km_curves(run, outcome="any")
    finest = {
        stratum_label(r.stratum)
        for r in results_of_run(run)
        if r.outcome == "any" and all(v != MARGIN for v in r.stratum.values())
    }
    assert {c.label for c in curves} == finest | {"All procedures"}
    overall = next(c for c in curves if c.label == "All procedures")
    margin = next(r for r in results_of_run(run) if r.outcome == "any" and set(r.stratum.values()) == {MARGIN})
    assert overall.procedures == margin.procedures
    assert all(b >= a for a, b in zip(overall.cuminc, overall.cuminc[1:], strict=False))  # a cumulative incidence


@pytest.mark.django_db
@pytest.mark.parametrize("which", [0, 1])
def test_the_stored_curves_are_the_engines_curves_of_the_run(generated_runs, which):
    run = generated_runs[1][which]
    for outcome in run.outcomes:
        assert km_curves(run, outcome=outcome) == engine_km_curves(params=run_params(run), outcome=outcome)


@pytest.mark.django_db
def test_the_forest_plot_shows_every_site_by_cell_type_stratum_and_renders(generated_runs):
    run = generated_runs[1][0]
    results = list(results_of_run(run))
    figure = charts.forest_figure(results, outcome="any", strata=run.strata)
    labels = " ".join(charts.figure_labels(figure))
    for site in ("knee", "hip", "shoulder", "spine"):
        for cell_type in ("bmac", "adipose_svf", "umbilical_cord_msc"):
            assert f"{site} / {cell_type} (n=" in labels
    assert "All procedures (n=" in labels
    width, height = png_size(charts.png(figure))
    assert width >= 1200 and height >= 600


@pytest.mark.django_db
def test_the_kaplan_meier_chart_names_its_strata_and_renders(generated_runs):
    run = generated_runs[1][1]
    figure = charts.km_figure(km_curves(run, outcome="infection"), outcome="infection")
    labels = " ".join(charts.figure_labels(figure))
    assert all(f"GEN-{i} (n=" in labels for i in range(3))
    assert "All, Kaplan-Meier (n=" in labels and "1y" in labels
    assert "All, Aalen-Johansen (death competing)" in labels
    width, height = png_size(charts.png(figure))
    assert width >= 1200 and height >= 600


def test_the_funnel_limits_are_exact_poisson_quantiles_with_spiegelhalters_interpolation():
    from scipy import stats

    # At an integer quantile with no interpolation needed the limit is the Poisson quantile itself.
    for mu in (0.5, 3.0, 12.0, 80.0):
        for p in (0.001, 0.025, 0.975, 0.999):
            r = stats.poisson.ppf(p, mu)
            limit = float(poisson_limit(mu, p))
            assert r - 1 <= limit <= r
    # The funnel narrows as person-years grow, and the 99.8 % funnel holds the 95 % one.
    limits = control_limits(10.0, [1.0, 10.0, 100.0, 1000.0])
    high95, high998 = limits["95"][1], limits["99.8"][1]
    assert list(high95) == sorted(high95, reverse=True)
    assert all(high998 > high95)
    # ... and approaches the normal approximation pooled + 1.96 sqrt(expected) / PY where many cases are expected.
    assert high95[-1] == pytest.approx(10.0 + 1.96 * (10.0 / 100 * 1000) ** 0.5 / 1000 * 100, rel=0.01)


@pytest.mark.django_db
@pytest.mark.parametrize("which", [0, 1])
def test_the_stored_aalen_johansen_curves_pass_through_every_stored_aj_figure(generated_runs, which):
    run = generated_runs[1][which]
    checked = 0
    for outcome in run.outcomes:
        rows = {stratum_label(r.stratum): r for r in results_of_run(run) if r.outcome == outcome}
        for curve in km_curves(run, outcome=outcome):
            row = rows[curve.label]
            assert len(curve.aj) == len(curve.days)
            # Death competes: the Aalen-Johansen curve never exceeds the Kaplan-Meier one.
            assert all(a <= k + 1e-12 for a, k in zip(curve.aj, curve.cuminc, strict=True))
            for label, day in HORIZONS:
                stored = getattr(row, f"aj_cuminc_{label}")
                if stored is not None:
                    assert curve.at(day, aj=True) == pytest.approx(stored, abs=1e-12), (outcome, curve.label)
                    checked += 1
    assert checked >= 32
