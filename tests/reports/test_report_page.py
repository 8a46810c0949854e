"""The run's report page a committee reads: outcome tabs, a strata filter, pagination, numbers for people,
curves only where there are late events, the frozen definitions and methods (the provider comparison, empty
cells and the downloads: test_documents_providers)."""

from __future__ import annotations

import math
import random
import re
from html import unescape

import pytest
from django.db import transaction

from reports.choices import MARGIN
from reports.documents import formatting as fmt
from reports.documents.definitions import KM_VS_AJ
from reports.models import RunCurve
from reports.services import incidence_run_execute, incidence_run_start
from tests.reports.documents_data import CUTOFF, logged_in, report_page, table_head, table_rows, three_figures
from tests.reports.generated_registry import build_generated_registry

# --- Numbers for people (no database) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (36500.0, "36500"),
        (36512.3, "36500"),
        (3.65e4, "36500"),
        (0.000123, "0.000123"),
        (0.000123456, "0.000123"),
        (0.00123, "0.00123"),
        (1.23456, "1.23"),
        (249.4, "249"),
        (99.96, "100"),
        (12.0, "12"),
        (0.1, "0.1"),
        (0.0, "0"),
        (7, "7"),
        (-0.0456, "-0.0456"),
        (1.5e9, "1500000000"),
        (None, "-"),
        (float("nan"), "-"),
    ],
)
def test_rates_have_three_significant_figures_and_never_an_exponent(value, text):
    assert fmt.significant(value) == text


def test_three_significant_figures_over_twenty_orders_of_magnitude():
    rng = random.Random(11)
    for _ in range(2000):
        value = 10 ** rng.uniform(-9, 11)
        text = fmt.significant(value)
        assert "e" not in text.lower(), text
        # Independently: round to 3 significant figures by the decimal exponent.
        digits = 2 - math.floor(math.log10(value))
        assert float(text) == pytest.approx(round(value, digits), rel=1e-9), (value, text)
        assert len(text.replace("0.", "").lstrip("0").replace(".", "").rstrip("0")) <= 3, text


@pytest.mark.parametrize(
    ("share", "text"),
    [(0.123, "12.3 %"), (0.1234, "12.3 %"), (0.0006, "0.1 %"), (0.0, "0.0 %"), (1.0, "100.0 %"), (None, "-")],
)
def test_shares_are_percent_with_one_decimal(share, text):
    assert fmt.percent(share) == text


def test_intervals_and_counts_read_as_people_write_them():
    assert fmt.percent_interval(0.25, 0.1, 0.5) == "25.0 % (10.0 to 50.0 %)"
    assert fmt.with_interval(36512.3, 31234.0, 42001.0) == "36500 (31200 to 42000)"
    assert fmt.with_interval(None, 1.0, 2.0) == "-"
    assert fmt.count(1234567) == "1,234,567"
    assert fmt.person_years(1234.56) == "1,234.6"
    assert fmt.p_value(0.00001) == "<0.0001" and fmt.p_value(0.0345) == "0.035"


def test_the_tests_rounding_agrees_by_hand():
    assert [three_figures(v) for v in (36512.3, 0.000123456, 1.23456, 99.96, 0.1)] == [
        "36500",
        "0.000123",
        "1.23",
        "100",
        "0.1",
    ]


# --- A random registry: tabs, filter, pagination, curves --------------------------------------------

OUTCOMES = ["injection_site_reaction", "infection", "neoplasm", "any"]


@pytest.fixture(scope="module")
def generated_run(django_db_setup, django_db_blocker):
    """A random registry of 600 procedures and one run by site x cell type x clinic with the registry's
    windows: injection-site reaction 0-7 and infection 0-90 (acute), neoplasm 180-open and any 0-open."""
    with django_db_blocker.unblock(), transaction.atomic():
        build_generated_registry(procedures=600)
        run = incidence_run_start(
            actor=None,
            cutoff_on=CUTOFF,
            strata=["site", "cell_type", "clinic"],
            outcomes=OUTCOMES,
            windows_mode="registry",
        )
        yield incidence_run_execute(run_id=run.pk, task_id=f"page-{run.pk}")
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_the_page_shows_one_outcome_a_page_of_fifty_rows_at_a_time(generated_run, root):
    run, client = generated_run, logged_in(root)
    # 4 sites x 3 cell types x 3 clinics, every subset with margins: (4+1) x (3+1) x (3+1) = 80 rows an outcome.
    assert run.results.filter(outcome="any").count() == 80
    first = report_page(client, run, outcome="any")
    assert len(table_rows(first, "results")) == 50
    assert "Rows 1 to 50 of 80, page 1 of 2" in first
    assert 'href="?outcome=any&amp;page=2" rel="next"' in first
    second = report_page(client, run, outcome="any", page=2)
    assert len(table_rows(second, "results")) == 30
    assert "Rows 51 to 80 of 80, page 2 of 2" in second
    # The rows of the two pages are the outcome's stored rows in report order, each once.
    shown = [tuple(r[:3]) for r in table_rows(first, "results") + table_rows(second, "results")]
    stored = [tuple(r.stratum[s] for s in run.strata) for r in run.results.filter(outcome="any").order_by("position")]
    assert shown == stored


@pytest.mark.django_db
def test_the_strata_filter_narrows_the_rows_per_stratum_column(generated_run, root):
    run, client = generated_run, logged_in(root)
    knee = report_page(client, run, outcome="infection", site="knee")
    rows = table_rows(knee, "results")
    assert len(rows) == 16  # knee x (3 cell types + ALL) x (3 clinics + ALL)
    assert {r[0] for r in rows} == {"knee"}
    both = report_page(client, run, outcome="infection", site="knee", cell_type=MARGIN)
    assert [tuple(r[:3]) for r in table_rows(both, "results")] == [
        ("knee", MARGIN, "GEN-0"),
        ("knee", MARGIN, "GEN-1"),
        ("knee", MARGIN, "GEN-2"),
        ("knee", MARGIN, MARGIN),
    ]
    assert '<option value="knee" selected>' in both and '<option value="ALL" selected>ALL (total)</option>' in both
    # A value the run does not have is no filter at all; the tabs keep the filter.
    assert len(table_rows(report_page(client, run, outcome="infection", site="elbow"), "results")) == 50
    assert 'href="?outcome=any&amp;site=knee&amp;cell_type=ALL"' in both


@pytest.mark.django_db
def test_each_outcome_has_a_tab_and_acute_outcomes_are_proportions_within_their_window(generated_run, root):
    run, client = generated_run, logged_in(root)
    html = report_page(client, run, outcome="infection")
    for code in OUTCOMES:
        assert f'href="?outcome={code}" data-outcome="{code}"' in html
    assert re.search(r'data-outcome="infection" class="current"', html)
    acute = table_head(html, "results")
    assert acute == ["site", "cell_type", "clinic", "procedures", "cases", "proportion within the window (95% CI)"]
    assert "Risk window day 0 to day 90" in html and 'id="km-vs-aj"' not in html
    long_term = report_page(client, run, outcome="neoplasm")
    head = table_head(long_term, "results")
    assert head[5:] == [
        "person-years",
        "rate /100 PY (95% CI)",
        *(f"{m} {h}" for h in ("30d", "1y", "2y", "5y") for m in ("KM", "AJ")),
    ]
    assert "Risk window day 180 to the end of follow-up (open)" in long_term
    assert f'<p id="km-vs-aj">{KM_VS_AJ}</p>' in long_term


@pytest.mark.django_db
def test_numbers_on_the_page_are_for_people(generated_run, root):
    run, client = generated_run, logged_in(root)
    html = report_page(client, run, outcome="any", site=MARGIN)
    rows = table_rows(html, "results")
    stored = {
        tuple(r.stratum[s] for s in run.strata): r for r in run.results.filter(outcome="any", stratum__site=MARGIN)
    }
    for cells in rows:
        r = stored[tuple(cells[:3])]
        if r.procedures < 10:
            assert cells[6] == "fewer than 10 procedures"
            continue
        # Rate: three significant figures with its interval; KM and AJ: percent with one decimal.
        rate = f"{three_figures(r.rate_per_100py)} ({three_figures(r.rate_ci_low)} to {three_figures(r.rate_ci_high)})"
        assert cells[6] == rate
        for i, label in enumerate(("30d", "1y", "2y", "5y")):
            km, aj = getattr(r, f"km_cuminc_{label}"), getattr(r, f"aj_cuminc_{label}")
            assert cells[7 + 2 * i] == f"{km * 100:.1f} %"
            assert cells[8 + 2 * i] == f"{aj * 100:.1f} %"
    assert not re.search(r"\de[+-]\d", " ".join(c for r in rows for c in r))


@pytest.mark.django_db
def test_curves_are_drawn_only_for_outcomes_with_events_after_day_30(generated_run, root):
    run, client = generated_run, logged_in(root)
    late = {
        o
        for o in OUTCOMES
        if any(day > 30 for curve in RunCurve.objects.filter(run=run, outcome=o) for day in curve.days)
    }
    # Injection-site reactions end on day 7: no event after day 30; the open windows have late events.
    assert "injection_site_reaction" not in late and {"neoplasm", "any"} <= late
    for outcome in OUTCOMES:
        html = report_page(client, run, outcome=outcome)
        assert ('id="chart-km"' in html) == (outcome in late), outcome
        assert ('id="no-curves"' in html) == (outcome not in late), outcome
        if outcome in late:
            assert f"/admin/reports/incidencerun/{run.pk}/chart/km.png?outcome={outcome}" in html


@pytest.mark.django_db
def test_the_page_prints_the_frozen_outcome_definitions_and_the_methods(generated_run, root):
    run, client = generated_run, logged_in(root)
    html = report_page(client, run)
    definitions = table_rows(html, "definitions-table")
    frozen = {d["code"]: d for d in run.outcome_definitions}
    assert (
        [row[0] for row in definitions]
        == list(run.outcomes)
        == [
            "any",
            "injection_site_reaction",
            "infection",
            "neoplasm",
        ]
    )
    for code, label, qualifies, window, version, shown_as in definitions:
        d = frozen[code]
        assert (label, qualifies) == (d["label"], d["qualifies"])
        end = d["window_end_day"]
        assert window == (
            f"day {d['window_start_day']} to the end of follow-up (open)"
            if end is None
            else f"day {d['window_start_day']} to day {end}"
        )
        assert version == f"version {d['version']}"
        assert shown_as.startswith("acute" if end is not None and end <= 90 else "long-term")
    assert [d[3] for d in definitions] == [
        "day 0 to the end of follow-up (open)",
        "day 0 to day 7",
        "day 0 to day 90",
        "day 180 to the end of follow-up (open)",
    ]
    methods = unescape(html.split('id="methods"', 1)[1])
    for words in (
        "Unit: the procedure",
        "at-risk start A = T + start day",
        "prevalent case",
        "Wilson",
        "Garwood",
        "Greenwood",
        "Aalen-Johansen",
        KM_VS_AJ,
        "fewer than 10 procedures",
        "Follow-up completeness",
    ):
        assert words in methods, words
