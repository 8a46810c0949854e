"""The provider comparison: per-clinic rates against the pooled rate, in a funnel plot that flags outliers."""

from __future__ import annotations

import pytest

from reports.documents import charts
from reports.documents.provider import provider_comparison
from tests.reports.documents_data import build_hot_registry, finished_run
from tests.reports.test_documents_charts import png_size

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("strata", [("site",), ("clinic", "site")], ids=["computed", "stored"])
def test_the_funnel_plot_flags_the_clinic_far_above_the_pooled_rate(root, clinic_a, clinic_b, strata):
    build_hot_registry(clinic_a, clinic_b)
    run = finished_run(actor=root, strata=strata, outcomes=["infection", "any"])
    comparison = next(c for c in provider_comparison(run) if c.outcome == "infection")
    assert comparison.source == ("stored" if "clinic" in strata else "computed")
    flags = {c.clinic: c.flag for c in comparison.clinics}
    assert flags == {"A-MAD": "", "B-BER": "", "C-HOT": "alarm"}
    hot = next(c for c in comparison.clinics if c.clinic == "C-HOT")
    assert hot.rate > hot.limits["99.8"][1] >= hot.limits["95"][1]
    quiet = [c for c in comparison.clinics if c.clinic != "C-HOT"]
    assert all(c.limits["95"][0] <= c.rate <= c.limits["95"][1] for c in quiet)
    assert comparison.pooled_cases == 3 + 6
    figure = charts.funnel_figure(comparison)
    labels = charts.figure_labels(figure)
    assert (
        any(label.startswith("C-HOT") and label.endswith("(above 99.8 %)") for label in labels)
        and "A-MAD" in labels
        and "B-BER" in labels
    )
    assert any(label.startswith("Pooled rate") for label in labels)
    width, height = png_size(charts.png(figure))
    assert width >= 1200 and height >= 600
