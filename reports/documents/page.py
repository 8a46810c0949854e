"""The run's report page as a reader navigates it: one outcome at a time (tabs), strata filtered and
paginated, numbers formatted for people, empty cells saying why, the provider comparison by clinic,
country or GMP certification, the methods and the frozen outcome definitions.

Everything here reads only what the run stored (its rows, curves and comparisons), through
plain links (?outcome=, one ?<stratum>= per stratum column, ?page=, ?grouping=): no JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models.fields.json import KeyTextTransform

from reports import selectors
from reports.choices import HORIZONS, MARGIN, Stratum
from reports.documents import formatting as fmt
from reports.documents.curves import outcomes_with_late_events
from reports.documents.definitions import (
    KM_VS_AJ,
    MIN_UNITS,
    OutcomeDefinition,
    outcome_definitions,
    unit_word,
)
from reports.documents.provider import GROUPINGS, Comparison, GroupRow, provider_comparisons
from reports.documents.solicited import share_text, solicited_table
from reports.models import IncidenceResult, IncidenceRun

PAGE_SIZE = 50
NO_PERSON_TIME = "no person-time"
LATE_DAY = 30  # curves are drawn for outcomes with events after this day of the risk window


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, and whether the text says why the figure is missing."""

    text: str
    empty: bool = False


def chart_outcome(run: IncidenceRun, requested: str | None) -> str:
    """Return the outcome shown: the requested one if the run has it, else its first."""
    return requested if requested in run.outcomes else run.outcomes[0]


def chart_grouping(requested: str | None) -> str:
    """Return the provider grouping shown: the requested one if it is one, else clinic."""
    return requested if requested in GROUPINGS else next(iter(GROUPINGS))


def few_units(run: IncidenceRun) -> str:
    return f"fewer than {MIN_UNITS} {unit_word(run)}"


def _horizon_cell(value, *, label: str) -> Cell:
    if value is None:
        return Cell(f"no follow-up to {label}", empty=True)
    return Cell(fmt.percent(value))


def result_cells(run: IncidenceRun, r: IncidenceResult, definition: OutcomeDefinition) -> dict:
    """Return the formatted cells of stored row ``r``: the acute (proportion) or the long-term (rate,
    Kaplan-Meier beside Aalen-Johansen) figures, or why they are empty. ``few`` holds the reason when the
    stratum has fewer than MIN_UNITS units: it then stands, once, for every figure with an interval."""
    few = few_units(run) if r.procedures < MIN_UNITS else ""
    cells = {
        "stratum": [r.stratum.get(s, "") for s in run.strata],
        "margin": any(r.stratum.get(s) == MARGIN for s in run.strata) or not run.strata,
        "procedures": fmt.count(r.procedures),
        "cases": fmt.count(r.cases),
        "person_years": fmt.person_years(r.person_years),
        "few": few,
    }
    if few:
        return cells
    if definition.acute:
        cells["proportion"] = Cell(fmt.percent_interval(r.proportion, r.proportion_ci_low, r.proportion_ci_high))
        return cells
    if not r.person_days:
        cells["rate"] = Cell(NO_PERSON_TIME, empty=True)
    else:
        cells["rate"] = Cell(fmt.with_interval(r.rate_per_100py, r.rate_ci_low, r.rate_ci_high))
    cells["horizons"] = [
        (
            _horizon_cell(getattr(r, f"km_cuminc_{label}"), label=label),
            _horizon_cell(getattr(r, f"aj_cuminc_{label}"), label=label),
        )
        for label, _ in HORIZONS
    ]
    return cells


def _link(**params) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def strata_choices(run: IncidenceRun, outcome: str) -> dict[str, list[str]]:
    """Return {stratum column: its values among the outcome's rows, the margin ALL first}."""
    rows = selectors.results_of_run(run).filter(outcome=outcome)
    out = {}
    for s in run.strata:
        values = rows.annotate(v=KeyTextTransform(s, "stratum")).order_by("v").values_list("v", flat=True).distinct()
        values = [v for v in values if v is not None]
        out[s] = ([MARGIN] if MARGIN in values else []) + [v for v in values if v != MARGIN]
    return out


@dataclass(frozen=True)
class ProviderView:
    comparison: Comparison
    rows: list[dict]
    basis_text: str


def _provider_row(r: GroupRow) -> dict:
    completeness = r.completeness
    return {
        "group": r.label,
        "procedures": fmt.count(r.procedures),
        "observed": fmt.count(r.observed),
        "person_years": fmt.person_years(r.person_years),
        "expected": fmt.significant(r.expected),
        "sir": Cell(fmt.with_interval(r.sir, r.sir_ci_low, r.sir_ci_high))
        if r.sir is not None
        else Cell("no cases expected", empty=True),
        "p_high": fmt.p_value(r.p_high),
        "p_low": fmt.p_value(r.p_low),
        "direction": r.direction,
        "severe": r.severe,
        "flag_text": r.flag_text,
        "completeness": Cell(
            f"{fmt.percent(completeness)} ({fmt.count(r.followup_completed)} of {fmt.count(r.followup_due)} visits due)"
        )
        if completeness is not None
        else Cell("no visit due by the cut-off", empty=True),
    }


def basis_text(basis: str) -> str:
    if basis == "proportion":
        return (
            "Compared on proportions (a closed risk window: an acute outcome compared on person-time would flag "
            "groups for short follow-up rather than for harm)."
        )
    return "Compared on person-time (an open risk window): expected cases from the strata's rates per person-year."


def provider_view(run: IncidenceRun, *, outcome: str, grouping: str) -> ProviderView | None:
    comparison = next(
        (c for c in provider_comparisons(run, outcome=outcome) if c.grouping == grouping),
        None,
    )
    if comparison is None:
        return None
    return ProviderView(
        comparison=comparison,
        rows=[_provider_row(r) for r in comparison.rows],
        basis_text=basis_text(comparison.basis),
    )


def report_context(run: IncidenceRun, query) -> dict:
    """Return the template context of the report page of ``run`` for the request's GET ``query``."""
    definitions = outcome_definitions(run)
    by_code = {d.code: d for d in definitions}
    outcome = chart_outcome(run, query.get("outcome"))
    definition = by_code[outcome]
    grouping = chart_grouping(query.get("grouping"))

    choices = strata_choices(run, outcome)
    filters: dict[str, str] = {}
    rows = selectors.results_of_run(run).filter(outcome=outcome)
    for s in run.strata:
        chosen = query.get(s, "")
        if chosen in choices[s]:
            filters[s] = chosen
            rows = rows.alias(**{f"filter_{s}": KeyTextTransform(s, "stratum")}).filter(**{f"filter_{s}": chosen})
    paginator = Paginator(rows, PAGE_SIZE)
    page = paginator.get_page(query.get("page"))

    def page_link(number: int) -> str:
        return _link(outcome=outcome, **filters, grouping=query.get("grouping"), page=number)

    late = outcomes_with_late_events(run, after_day=LATE_DAY)
    return {
        "outcome": outcome,
        "definition": definition,
        "definitions": definitions,
        "tabs": [
            {
                "code": d.code,
                "label": d.label,
                "kind": "acute" if d.acute else "long-term",
                "url": _link(outcome=d.code, **filters, grouping=query.get("grouping")),
                "current": d.code == outcome,
            }
            for d in definitions
        ],
        "strata_filter": [
            {
                "name": s,
                "label": Stratum(s).label if s in Stratum.values else s,
                "values": choices[s],
                "chosen": filters.get(s, ""),
            }
            for s in run.strata
        ],
        "filters": filters,
        "filter_reset_url": _link(outcome=outcome, grouping=query.get("grouping")),
        "page": page,
        "page_links": {
            "first": page_link(1) if page.has_previous() else "",
            "previous": page_link(page.previous_page_number()) if page.has_previous() else "",
            "next": page_link(page.next_page_number()) if page.has_next() else "",
            "last": page_link(paginator.num_pages) if page.has_next() else "",
        },
        "results": [result_cells(run, r, definition) for r in page.object_list],
        "horizons": [label for label, _ in HORIZONS],
        "long_term_figures": 1 + 2 * len(HORIZONS),  # rate, then KM and AJ at each horizon
        "units": unit_word(run),
        "min_units": MIN_UNITS,
        "show_curves": outcome in late,
        "late_day": LATE_DAY,
        "km_vs_aj": KM_VS_AJ,
        "grouping": grouping,
        "grouping_label": GROUPINGS[grouping],
        "grouping_tabs": [
            {
                "code": g,
                "label": label,
                "url": _link(outcome=outcome, **filters, grouping=g) + "#providers",
                "current": g == grouping,
            }
            for g, label in GROUPINGS.items()
        ],
        "provider": provider_view(run, outcome=outcome, grouping=grouping),
        # Counted events by MedDRA primary SOC and PT, when events are coded (stored with the run).
        "meddra_counts": list(run.meddra_counts.order_by("position")),
        "solicited": solicited_context(run),
        # Issue 10: the clinics' safety-reporting figures, stored with the run.
        "safety_header": fmt.SAFETY_FIGURE_HEADER,
        "safety_figures": [fmt.safety_figure_cells(f) for f in run.safety_figures.order_by("position")],
    }


def solicited_context(run: IncidenceRun) -> dict | None:
    """Return the solicited-reactions table (issue 12) formatted for the page, or None without diaries."""
    table = solicited_table(run)
    if table is None:
        return None
    return {
        "table": table,
        "days": list(range(len(table.entries))),
        "symptoms": [(r.label, [share_text(v) for v in r.shares]) for r in table.symptoms],
        "pain": [(r.label, [share_text(v) for v in r.shares]) for r in table.pain],
    }
