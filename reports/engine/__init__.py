"""The incidence engine: SQL does the counting, Python only the interval arithmetic.

``iter_incidence(params=...)`` is the single code path behind stored runs (the
Celery task, started from the admin, the API or the nightly schedule) and
``manage.py compute_incidence``, so they give the same numbers; it streams the rows
in report order with flat memory. ``km_curves`` (the Kaplan-Meier step curves) and
``counted_events_sql`` (the events a report's cases are made of) are built from the
same per-procedure CTEs (reports.engine.sql), so documents never restate a rule.
``estimate_result_rows`` tells how many rows a report will have before it runs, so
that too large a report is refused up front.

Conventions (DESIGN.md 2 to the letter; where it leaves a choice, the choice is here):

- Unit (DESIGN 2b): the procedure (time zero ``performed_on``), or with ``unit="patient"``
  the patient (time zero: the first non-retracted procedure on or before the cut-off, ties
  broken by id; contacts and qualifying events over all the patient's non-retracted
  procedures, those after the cut-off included; site, cell type, cell source, age band and
  year from that first procedure, clinic and country from the patient's clinic). Units
  performed after the cut-off are not in the report at all.
- Entered in error: a retracted procedure, any procedure of a retracted patient and a
  retracted follow-up visit are not in the report at all (as unit, contact or event).
- Counting events: only non-retracted events (``retracted_at IS NULL``) exist for the
  report, both as outcomes and as contacts.
- Last contact = latest of performed_on (every procedure of the unit), completed follow-up
  visit dates, onsets of (non-retracted) adverse events of any category, and the death
  date, whatever their date (a visit or event after the cut-off or after withdrawal is
  still a contact; the observation end below caps it).
- Observation end O = earliest of last contact, withdrawal date, cut-off date.
- Outcomes: ``any`` (every event), ``serious`` (``serious`` is true), ``grade_3_plus``
  (CTCAE grade >= 3), and each category.
- Risk windows (DESIGN 2b): each outcome has a window (start day s, end day e or open);
  ``--windows open`` (the default) gives every outcome 0-open, ``registry`` the stored
  outcome definitions (reports.outcomes), and ``--window N`` sets e = N for every outcome,
  keeping each s (an N below s leaves nobody at risk). At-risk start A = T + s, end
  B = O, or min(O, T + e). A qualifying event with onset before A (a prevalent case), or
  B < A, takes the unit out of that outcome's denominator; otherwise it is a case when its
  first qualifying onset F has F <= B (repeated events add nothing; an event after
  withdrawal, after the cut-off or after T + e is never a case). With every window open
  these are the rules of DESIGN 2, except that a unit whose observation ends before it
  begins (withdrawn before the procedure; entry refuses that now) leaves the denominator
  instead of counting with 0 days.
- Days at risk = F - A for a case, D - A for a competing death (a non-case whose death
  date D has A <= D <= B; on data entry accepts, D is then also the observation end), else
  B - A; a unit with B = A stays in with 0 days. Person-years = days / 365.25. The
  ``procedures`` column counts the units in the outcome's denominator.
- Proportion = cases / procedures with the 95 % Wilson score interval, or
  Clopper-Pearson ("clopper-pearson"). Rate per 100 person-years with the exact Poisson
  (Garwood) interval chi2.ppf(0.025, 2k)/2 and chi2.ppf(0.975, 2k+2)/2 events over
  person-years (lower limit 0 when k = 0); rate and interval empty when there is no
  person-time.
- Kaplan-Meier: time = days at risk from A, event = case, censoring at the end (a
  competing death is a censoring for Kaplan-Meier). On
  a day with both, events come first (everyone whose time is >= t is at risk at t).
  Reported as cumulative incidence 1 - S(t) at t = 30, 365, 730 and 1826 days,
  inclusive (an event on day 30 counts at 30 days). S(t) is lifelines'
  ``survival_function_at_times(t)``: exp(sum over event days u <= t of
  log(n_u - d_u) - log(n_u)). 95 % interval: Greenwood with the log(-log) transform
  ("exponential Greenwood", lifelines' default):
  S^exp(+-1.96 sqrt(V) / log S) with V = sum d_u / (n_u (n_u - d_u)) over days with
  n_u > d_u, mapped to 1 - S; (0, 0) while S = 1 and (1, 1) once S = 0, as lifelines.
- Aalen-Johansen (DESIGN 2b), death as the competing risk: at horizon h, the sum over
  days u <= h with cases of S(u-) d1(u) / n(u), n(u) the units whose days >= u, S(u-) the
  product over days v < u of (1 - (d1(v) + d2(v)) / n(v)); the CSV columns
  aj_cuminc_30d/1y/2y/5y after the existing ones. Kaplan-Meier, censoring the dead as if
  they could still have the event, overstates the cumulative incidence when deaths are
  common; Aalen-Johansen does not (lifelines' AalenJohansenFitter on tie-free data agrees
  to 1e-12, tests/reports/test_incidence_patient_unit.py).
- Beyond the data: past the longest follow-up in a stratum the estimate keeps its
  last value (the step function is carried forward), exactly as lifelines'
  ``survival_function_at_times`` and ``cumulative_density_at_times``; the interval too
  (``confidence_interval_cumulative_density_`` as of t). Read a 5-year figure together
  with the follow-up actually available.
- Strata: site, cell_type, cell_source, clinic (code), country (the clinic's), sex,
  age_band, year (calendar year of performed_on). Age = year of performed_on - birth
  year (only years are stored); bands <40, 40-49, 50-59, 60-69, 70-79, 80+. Margins:
  every subset of the chosen strata (GROUP BY CUBE); a margin carries "ALL".
- Scope: a user's report covers only the clinics the user may see, fixed when the run
  is started (reports.services.incidence_run_start).
"""

from django.db import connections

from reports.engine.compute import IncidenceRow, compute_incidence, iter_incidence
from reports.engine.curves import Curve, iter_km_curves, km_curves, stratum_label
from reports.engine.estimate import SizeEstimate, estimate_result_rows
from reports.engine.params import IncidenceParams
from reports.engine.sql import build_counted_events_sql


def counted_events_sql(*, params: IncidenceParams, using: str = "default") -> str:
    """Return the SELECT (values bound, ready to nest or COPY) of the events that count for ``params``.

    Columns event_id, clinic_id, onset_on; see reports.engine.sql.build_counted_events_sql.
    """
    sql, args = build_counted_events_sql(params)
    return connections[using].ops.compose_sql(sql, args)


__all__ = [
    "Curve",
    "IncidenceParams",
    "IncidenceRow",
    "SizeEstimate",
    "compute_incidence",
    "counted_events_sql",
    "estimate_result_rows",
    "iter_incidence",
    "iter_km_curves",
    "km_curves",
    "stratum_label",
]
