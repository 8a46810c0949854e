"""The words every document of a run carries: counting rules, interval methods, provenance."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from reports.choices import OUTCOME_LABELS, CIMethod
from reports.documents.provider import METHOD as FUNNEL_METHOD
from reports.models import IncidenceRun

COUNTING_RULES: tuple[str, ...] = (
    "Unit: the procedure; time zero is the procedure date (performed on).",
    "Only non-retracted adverse events count, as outcomes and as contacts.",
    "Last contact = latest of the procedure date, completed follow-up visits, adverse-event onsets, death date.",
    "Observation end = earliest of last contact, withdrawal date, data cut-off date.",
    "Procedures performed after the data cut-off are not in the report at all.",
    "Retracted procedures, procedures of retracted patients and retracted follow-up visits are not in the "
    "report at all.",
    "A case is a procedure whose first qualifying event has onset on or before its observation end; "
    "later events of the same outcome on that procedure add nothing.",
    "Days at risk = (first qualifying onset for a case, else observation end) - procedure date; "
    "person-years = days / 365.25.",
    "Strata: every combination of the chosen columns, plus margins (totals) marked ALL.",
)
KM_METHOD = (
    "Kaplan-Meier cumulative incidence 1 - S(t) at 30 days, 1, 2 and 5 years (days 30, 365, 730, 1826, "
    "inclusive), censoring at observation end (an event and a censoring on the same day: the event first); "
    "95 % interval: Greenwood with the log(-log) transform. Curves are drawn from per-day counts of events "
    "and censorings computed in the database from the same per-procedure data, so they pass through the "
    "stored horizon values."
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


def proportion_method(run: IncidenceRun) -> str:
    label = CIMethod(run.ci_method).label
    return f"Proportion = cases / procedures, 95 % {label} interval."


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
    pairs += [(f"Counting rule {i}", rule) for i, rule in enumerate(COUNTING_RULES, 1)]
    pairs += [
        ("Proportion interval", proportion_method(run)),
        ("Rate interval", RATE_METHOD),
        ("Kaplan-Meier", KM_METHOD),
        ("Provider comparison", FUNNEL_METHOD),
        ("Line listing", LINE_LISTING.format(k=settings.DEIDENTIFIED_MIN_K)),
        ("Generated by", user.get_username()),
        ("Generated at", timezone.localtime(generated_at).strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
    return pairs
