"""Interval estimators (reports.engine.stats): a proportion's limits never leave [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

from reports.engine import stats


@pytest.mark.parametrize("method", ["wilson", "clopper-pearson"])
def test_every_proportion_interval_lies_within_zero_and_one(method):
    n = np.arange(1, 2001)
    for cases in (np.zeros_like(n), n, n // 2):
        low, high = stats.proportion_interval(cases=cases, n=n, method=method)
        assert (low >= 0.0).all() and (high <= 1.0).all() and (low <= high).all()


def test_the_wilson_lower_limit_of_no_cases_is_exactly_zero():
    # Unclipped, rounding gives -8.7e-19 for some n (printed as a negative proportion).
    low, high = stats.wilson_interval(cases=np.zeros(5000), n=np.arange(1, 5001))
    assert (low == 0.0).all() and (high > 0).all()
    unclipped_center = (1.96**2 / (2 * 7)) / (1 + 1.96**2 / 7)
    assert high[6] == pytest.approx(2 * unclipped_center, rel=1e-3)


def test_an_empty_denominator_keeps_an_empty_interval():
    low, high = stats.proportion_interval(cases=[0], n=[0], method="wilson")
    assert np.isnan(low[0]) and np.isnan(high[0])
