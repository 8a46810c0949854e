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

- Unit: the procedure; time zero ``performed_on``; procedures performed after the
  cut-off are not in the report at all.
- Entered in error: a retracted procedure, any procedure of a retracted patient and a
  retracted follow-up visit are not in the report at all (as unit, contact or event).
- Counting events: only non-retracted events (``retracted_at IS NULL``) exist for the
  report, both as outcomes and as contacts.
- Last contact = latest of performed_on, completed follow-up visit dates, onsets of
  (non-retracted) adverse events of any category, and the death date, whatever their
  date (a visit or event after the cut-off or after withdrawal is still a contact;
  the observation end below caps it).
- Observation end = earliest of last contact, withdrawal date, cut-off date.
- Outcomes: ``any`` (every event), ``serious`` (``serious`` is true), ``grade_3_plus``
  (CTCAE grade >= 3), and each category. A procedure is a case when its first
  qualifying event has onset on or before its observation end; repeated events add
  nothing. An event after withdrawal or after the cut-off is therefore never a case.
- Onset window N (optional): an event qualifies only if ``onset_on - performed_on <= N``
  (inclusive, in days). Observation time is not truncated at N; only which events
  qualify changes.
- Days at risk = (first qualifying onset for a case, else observation end) -
  performed_on; an event on the procedure day gives a case with 0 days. Should the
  patient have withdrawn before the procedure (observation end earlier than time
  zero) the procedure counts with 0 days and no case. Person-years = days / 365.25.
- Proportion = cases / procedures with the 95 % Wilson score interval, or
  Clopper-Pearson ("clopper-pearson"). Rate per 100 person-years with the exact Poisson
  (Garwood) interval chi2.ppf(0.025, 2k)/2 and chi2.ppf(0.975, 2k+2)/2 events over
  person-years (lower limit 0 when k = 0); rate and interval empty when there is no
  person-time.
- Kaplan-Meier: time = days at risk, event = case, censoring at observation end. On
  a day with both, events come first (everyone whose time is >= t is at risk at t).
  Reported as cumulative incidence 1 - S(t) at t = 30, 365, 730 and 1826 days,
  inclusive (an event on day 30 counts at 30 days). S(t) is lifelines'
  ``survival_function_at_times(t)``: exp(sum over event days u <= t of
  log(n_u - d_u) - log(n_u)). 95 % interval: Greenwood with the log(-log) transform
  ("exponential Greenwood", lifelines' default):
  S^exp(+-1.96 sqrt(V) / log S) with V = sum d_u / (n_u (n_u - d_u)) over days with
  n_u > d_u, mapped to 1 - S; (0, 0) while S = 1 and (1, 1) once S = 0, as lifelines.
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
