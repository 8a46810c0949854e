"""The words every document of a run carries: counting rules, risk windows, the unit, interval methods,
the frozen outcome definitions, provenance.

The report page, the PDF and the XLSX's Definitions sheet print the same texts (``methods``), so
the three documents of a run never explain it differently.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from reports.choices import OUTCOME_LABELS, CIMethod, Unit
from reports.documents.provider import COMPLETENESS
from reports.documents.provider import METHOD as PROVIDER_METHOD
from reports.models import IncidenceRun

# An outcome whose risk window ends on day 90 or earlier is an acute risk: the documents show it as a
# proportion within the window; later or open windows are long-term risks, shown as rates and cumulative
# incidence (issue 11).
ACUTE_MAX_DAYS = 90
# Figures with an interval (proportion, rate, cumulative incidence) of a stratum with fewer units than
# this are not printed on the page or in the PDF (the counts are; the XLSX and CSV keep every figure).
MIN_UNITS = 10

_UNIT_RULES = {
    Unit.PROCEDURE: (
        "Unit: the procedure; time zero T is the procedure date (performed on).",
        "Last contact = latest of the procedure date, completed follow-up visits, adverse-event onsets, death date.",
    ),
    Unit.PATIENT: (
        "Unit: the patient; time zero T is the patient's first procedure on or before the cut-off (later "
        "procedures do not reset it). Site, cell type, cell source, age band and year come from that first "
        "procedure, clinic and country from the patient.",
        "Last contact = latest of the patient's procedure dates, completed follow-up visits and adverse-event "
        "onsets (over all the patient's procedures, those after the cut-off included) and the death date.",
    ),
}
_COMMON_RULES: tuple[str, ...] = (
    "Only non-retracted adverse events count, as outcomes and as contacts.",
    "Observation end O = earliest of last contact, withdrawal date, data cut-off date.",
    "Procedures performed after the data cut-off are not in the report at all (as units).",
    "Retracted procedures, procedures of retracted patients and retracted follow-up visits are not in the "
    "report at all.",
    "Risk window of an outcome (its frozen definition): at-risk start A = T + start day; at-risk end "
    "B = O, or the earlier of O and T + end day when the window ends.",
    "A unit with a qualifying event before A is a prevalent case and leaves that outcome's denominator; so does "
    "a unit whose B is before A (no time at risk). Otherwise it is in the denominator, and a case when its "
    "first qualifying onset F has A <= F <= B; later events of the same outcome add nothing.",
    "Days at risk = (F for a case, else B) - A; person-years = days / 365.25. Competing risk: a non-case who "
    "died between A and B leaves the risk set on the day of death.",
    "The 'procedures' column counts the units in that outcome's denominator.",
    "Strata: every combination of the chosen columns, plus margins (totals) marked ALL.",
)
KM_METHOD = (
    "Kaplan-Meier (KM) cumulative incidence 1 - S(t) at 30 days, 1, 2 and 5 years (days 30, 365, 730, 1826 after "
    "the start of the risk window, inclusive), censoring at the end of the time at risk (an event and a "
    "censoring on the same day: the event first); 95 % interval: Greenwood with the log(-log) transform. Curves "
    "are drawn from per-day counts of events and censorings computed in the database from the same per-unit "
    "data, so they pass through the stored horizon values."
)
AJ_METHOD = (
    "Aalen-Johansen (AJ) cumulative incidence at the same horizons, with death as a competing event: the sum "
    "over days u up to the horizon of S(u-) x cases(u) / at risk(u), where S is the probability of having had "
    "neither the outcome nor death."
)
KM_VS_AJ = (
    "Why KM and AJ differ: Kaplan-Meier treats a death as censoring, as if the patient could still have the "
    "outcome later, and so overstates the cumulative incidence when deaths are common; Aalen-Johansen counts "
    "death as a competing event that ends the risk, and gives the share of units that actually had the outcome."
)
RATE_METHOD = "Rate per 100 person-years, 95 % exact Poisson (Garwood) interval."
LINE_LISTING = (
    "Line listing: the events that counted for the run, as they stood when it succeeded: non-retracted events "
    "of the run's procedures (none of them or their patients retracted) with onset on or before the "
    "procedure's observation end (so on or before the cut-off and the patient's withdrawal), within the onset "
    "window if any, that qualify for one of the run's outcomes; earliest onsets first, at most "
    "REPORTS_MAX_RESULT_ROWS of them. De-identified: patient, procedure and event appear under pseudonyms "
    "drawn afresh for each download; no verbatim terms, notes, lots, clinic or dates (onset and resolution are "
    "days since the procedure); birth year top-coded per patient (90+ = aged 90 or more in the year of the "
    "download); birth year, sex, country and procedure period generalised so that every combination shown is "
    "shared by at least {k} patients, rows that cannot reach it left out."
)
NOT_FROZEN = (
    "This run was computed before report documents were frozen with their run, so it stored no line "
    "listing, curves or provider comparison: start the report again to get them."
)
NO_COMPARISON = (
    "This run was computed before the case-mix-adjusted provider comparison was stored with runs: start the "
    "report again to get it."
)
NO_DEFINITIONS = (
    "This run was computed before outcome definitions were frozen with runs: every risk window was open "
    "(day 0 to the end of follow-up)."
)


def unit_word(run: IncidenceRun, *, plural: bool = True) -> str:
    """Return "procedures" or "patients" (singular with ``plural`` False): what the run counts."""
    word = "patient" if run.unit == Unit.PATIENT else "procedure"
    return f"{word}s" if plural else word


def counting_rules(run: IncidenceRun) -> tuple[str, ...]:
    """Return the counting rules of ``run`` (DESIGN 2 and 2b) for its unit."""
    unit_rule, contact_rule = _UNIT_RULES[Unit(run.unit)]
    return (unit_rule, contact_rule, *_COMMON_RULES)


@dataclass(frozen=True)
class OutcomeDefinition:
    """An outcome as the run froze it: the events that qualify and the risk window."""

    code: str
    label: str
    qualifies: str
    start: int
    end: int | None
    version: int | None

    @property
    def acute(self) -> bool:
        """Return True for an acute risk: a window that ends on day ACUTE_MAX_DAYS or earlier."""
        return self.end is not None and self.end <= ACUTE_MAX_DAYS

    @property
    def window_text(self) -> str:
        if self.end is None:
            return f"day {self.start} to the end of follow-up (open)"
        return f"day {self.start} to day {self.end}"

    @property
    def presented_as(self) -> str:
        if self.acute:
            return "acute: proportion within the window"
        return "long-term: rate per 100 person-years and cumulative incidence (KM and AJ)"

    @property
    def version_text(self) -> str:
        return "open window (no stored definition)" if self.version is None else f"version {self.version}"


def outcome_definitions(run: IncidenceRun) -> list[OutcomeDefinition]:
    """Return the frozen definition of each outcome of ``run``, in report order; a run from before
    definitions were frozen (or an outcome it froze none for) has the open window 0-open."""
    frozen = {d.get("code"): d for d in run.outcome_definitions or []}
    out = []
    for code in run.outcomes:
        d = frozen.get(code, {})
        out.append(
            OutcomeDefinition(
                code=code,
                label=d.get("label") or OUTCOME_LABELS.get(code, code),
                qualifies=d.get("qualifies") or code,
                start=int(d.get("window_start_day") or 0),
                end=None if d.get("window_end_day") is None else int(d["window_end_day"]),
                version=d.get("version"),
            )
        )
    return out


def definitions_frozen(run: IncidenceRun) -> bool:
    """Return True when ``run`` froze its outcome definitions (runs from before they existed did not)."""
    return bool(run.outcome_definitions)


def empty_cells(run: IncidenceRun) -> str:
    units = unit_word(run)
    return (
        f"Empty cells say why: 'no person-time' when the stratum has no days at risk; 'fewer than {MIN_UNITS} "
        f"{units}' for a proportion, rate or cumulative incidence of a stratum with fewer than {MIN_UNITS} "
        f"{units} in the outcome's denominator (too few for the figure to mean much; its counts are shown, and "
        "the XLSX and CSV keep every figure); 'no follow-up to <horizon>' when nobody was followed that long. "
        "Percentages have one decimal; rates and ratios three significant figures."
    )


def risk_windows(run: IncidenceRun) -> str:
    if not definitions_frozen(run):
        return NO_DEFINITIONS
    return (
        f"{run.get_windows_mode_display()}: each outcome's risk window is that of the outcome definition the "
        "run froze when it started (listed with the outcome definitions), whatever was edited since."
    )


def presentation(run: IncidenceRun) -> str:
    return (
        f"Outcomes whose risk window ends on day {ACUTE_MAX_DAYS} or earlier are acute risks, shown as the "
        "proportion of units with the outcome within the window; outcomes with longer or open windows are "
        "long-term risks, shown as rates per 100 person-years and cumulative incidence (Kaplan-Meier beside "
        "Aalen-Johansen). Cumulative incidence curves are drawn for outcomes with events after day 30."
    )


def proportion_method(run: IncidenceRun) -> str:
    label = CIMethod(run.ci_method).label
    return f"Proportion = cases / units in the denominator, 95 % {label} interval."


def methods(run: IncidenceRun) -> list[tuple[str, str]]:
    """Return (term, text) pairs: how ``run`` counted and estimated (the page, the PDF and the XLSX)."""
    pairs = [(f"Counting rule {i}", rule) for i, rule in enumerate(counting_rules(run), 1)]
    pairs += [
        ("Unit", unit_word(run, plural=False)),
        ("Risk windows", risk_windows(run)),
        ("Presentation", presentation(run)),
        ("Proportion interval", proportion_method(run)),
        ("Rate interval", RATE_METHOD),
        ("Kaplan-Meier", KM_METHOD),
        ("Aalen-Johansen", AJ_METHOD),
        ("Kaplan-Meier and Aalen-Johansen", KM_VS_AJ),
        ("Empty cells", empty_cells(run)),
        ("Provider comparison", PROVIDER_METHOD),
        ("Follow-up completeness", COMPLETENESS),
    ]
    return pairs


def listing_definition(plan, *, run: IncidenceRun | None = None) -> str:
    """Return the line-listing definition with the generalisation ``plan`` (deidentified.Plan) applied,
    and, when ``run`` stored fewer events than counted (REPORTS_MAX_RESULT_ROWS), how many it kept."""
    text = LINE_LISTING.format(k=plan.min_k)
    shown = "none" if plan.k is None else str(plan.k)
    text = (
        f"{text} This listing: {plan.node.describe()}; smallest combination shown: {shown} patients; "
        f"{plan.suppressed_rows} of {plan.rows} rows left out."
    )
    if run is not None and run.listing_total is None:
        # A run that succeeded before report documents were frozen (issue 9) stored no listing,
        # curves or provider rates: its documents show its stored results only.
        text += " " + NOT_FROZEN
    elif run is not None:
        stored = run.listing_rows.count()
        if stored < run.listing_total:
            text += f" The run kept the {stored:,} earliest of its {run.listing_total:,} counted events."
    return text


def definitions(run: IncidenceRun, *, user, generated_at=None) -> list[tuple[str, str]]:
    """Return (term, text) pairs describing ``run`` and this document."""
    generated_at = generated_at or timezone.now()
    scope = "every clinic" if run.clinic_ids is None else f"{len(run.clinic_ids)} clinic(s) (ids {run.clinic_ids})"
    pairs = [
        (
            "Incidence run",
            f"#{run.pk}, {run.get_status_display()}, finished {run.finished_at:%Y-%m-%d %H:%M %Z}"
            if run.finished_at
            else f"#{run.pk}, {run.get_status_display()}",
        ),
        ("Data cut-off", run.cutoff_on.isoformat()),
        ("Strata", " x ".join(run.strata) or "overall"),
        ("Outcomes", "; ".join(f"{o} ({OUTCOME_LABELS.get(o, o)})" for o in run.outcomes)),
        ("Onset window", "none" if run.onset_window_days is None else f"{run.onset_window_days} days"),
        ("Clinics covered", scope),
        ("Requested by", str(run.requested_by or "the system")),
    ]
    pairs += [
        (
            f"Outcome {d.code}",
            f"{d.label}; qualifying events: {d.qualifies}; risk window {d.window_text}; "
            f"{d.version_text}; {d.presented_as}.",
        )
        for d in outcome_definitions(run)
    ]
    pairs += methods(run)
    pairs += [
        ("Line listing", LINE_LISTING.format(k=settings.DEIDENTIFIED_MIN_K)),
        ("Generated by", user.get_username()),
        ("Generated at", timezone.localtime(generated_at).strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
    return pairs
