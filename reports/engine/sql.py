"""The one SQL statement behind an incidence report.

Pipeline (CTEs), all in PostgreSQL, one scan of each table:

``ev``      per procedure: latest onset of any counting (non-retracted) event, and the
            first onset per outcome (``min(onset_on) FILTER (WHERE <outcome>)``).
``vis``     per procedure: latest completed follow-up visit.
``base``    per procedure (materialised once): stratum values; ``e`` = observation end
            - performed_on in days (floored at 0); ``t<k>`` = days to the first
            qualifying onset of outcome k when that procedure is a case, else NULL.
``counts``  GROUP BY CUBE(strata): procedures, and per outcome cases, days at risk
            (``t`` for a case, else ``e``) and the longest follow-up.
``ends``    GROUP BY CUBE(strata), day: how many procedures' observation ends that day
            (days capped at KM_MAX_DAY + 1: beyond the last horizon only "still at
            risk" matters).
``case_days`` GROUP BY CUBE(strata), outcome, day, over cases only: events that day,
            and cases whose observation ended that day.
``km_steps`` number at risk on each event day. With ``e`` the censoring day had
            there been no event, n(t) = #{e >= t} - #{cases with onset < t <= e}; the
            first term is a window over ``ends`` per stratum, the second a window over
            ``case_days`` per stratum and outcome. Only cases are unpivoted per outcome,
            so the work grows with events, not with procedures x outcomes.
``km``      per stratum and outcome and horizon: sum of log(n - d) - log(n), whether
            some day had d = n (S fell to 0), and the Greenwood sum d / (n (n - d)).

Events come before censorings on the same day because n(t) counts everyone whose
time is >= t. Python receives one row per stratum and outcome.
"""

from __future__ import annotations

from reports.choices import AGE_BANDS, HORIZONS, KM_MAX_DAY, OUTCOME_ANY, OUTCOME_GRADE_3_PLUS, OUTCOME_SERIOUS
from reports.engine.params import IncidenceParams


def _age_band_sql() -> str:
    age = "(EXTRACT(YEAR FROM p.performed_on)::int - pt.birth_year)"
    whens = []
    for label, _low, high in AGE_BANDS[:-1]:
        whens.append(f"WHEN {age} <= {int(high)} THEN '{label}'")
    return f"(CASE {' '.join(whens)} ELSE '{AGE_BANDS[-1][0]}' END)"


STRATUM_SQL: dict[str, str] = {
    "site": "p.site::text",
    "cell_type": "p.cell_type::text",
    "cell_source": "p.cell_source::text",
    "clinic": "c.code::text",
    "country": "c.country::text",
    "sex": "pt.sex::text",
    "age_band": _age_band_sql(),
    "year": "to_char(p.performed_on, 'YYYY')",
}


def _outcome_filter(outcome: str, index: int, args: dict) -> str:
    """Return the FILTER clause (or '') selecting the events of ``outcome``."""
    if outcome == OUTCOME_ANY:
        return ""
    if outcome == OUTCOME_SERIOUS:
        return " FILTER (WHERE e.serious)"
    if outcome == OUTCOME_GRADE_3_PLUS:
        return " FILTER (WHERE e.grade >= 3)"
    args[f"cat{index}"] = outcome
    return f" FILTER (WHERE e.category = %(cat{index})s)"


def build_incidence_sql(params: IncidenceParams) -> tuple[str, dict]:
    """Return (sql, args) computing the aggregated incidence rows for ``params``.

    Columns: g (GROUPING bitmask, bit i set = stratum i is a margin), s0..s{k-1},
    k (index into params.outcomes), n, cases, days, maxt, then per horizon
    l_<h>, z_<h>, v_<h> (log-survival sum, reached-zero flag, Greenwood sum).
    """
    args: dict = {"cutoff": params.cutoff_on, "window": params.onset_window_days}
    strata = [f"s{i}" for i in range(len(params.strata))]
    outcomes = list(range(len(params.outcomes)))
    cap = KM_MAX_DAY + 1

    scope_p = scope_ev = scope_vis = ""
    if params.clinic_ids is not None:
        args["scope"] = sorted(params.clinic_ids)
        scope_p = "AND p.clinic_id = ANY(%(scope)s)"
        scoped = "(SELECT sp.id FROM registry_procedure sp WHERE sp.clinic_id = ANY(%(scope)s))"
        scope_ev = f"AND e.procedure_id IN {scoped}"
        scope_vis = f"AND v.procedure_id IN {scoped}"

    firsts = ",\n           ".join(
        f"min(e.onset_on){_outcome_filter(o, k, args)} AS f{k}" for k, o in enumerate(params.outcomes)
    )
    stratum_cols = "".join(f"{STRATUM_SQL[name]} AS s{i},\n           " for i, name in enumerate(params.strata))
    case_days = ",\n           ".join(
        f"CASE WHEN ev.f{k} - p.performed_on <= LEAST(x.end_raw, %(window)s::int) "
        f"THEN ev.f{k} - p.performed_on END AS t{k}"
        for k in outcomes
    )
    tmin = f"LEAST({', '.join(f'b.t{k}' for k in outcomes)})"

    if strata:
        grouping = f"GROUPING({', '.join(strata)})"
        cube = f"CUBE ({', '.join(strata)})"
        cube_and = f"{cube}, "
    else:
        grouping, cube, cube_and = "0", "()", ""
    sel_strata = "".join(f"COALESCE({s}, '') AS {s}, " for s in strata)
    plain = "".join(f"{s}, " for s in strata)
    part = ", ".join(["g", *strata])
    join_on = " AND ".join(f"km.{c} = c.{c}" for c in ["g", *strata])

    per_outcome_counts = ",\n           ".join(
        f"count(t{k}) AS c{k}, sum(COALESCE(t{k}, e)) AS d{k}, max(COALESCE(t{k}, e)) AS m{k}" for k in outcomes
    )
    unpivot_cases = ", ".join(f"({k}, b.t{k})" for k in outcomes)
    unpivot_counts = ", ".join(f"({k}, c.c{k}, c.d{k}, c.m{k})" for k in outcomes)
    km_aggs = []
    km_cols = []
    for label, day in HORIZONS:
        cond = f"d > 0 AND t <= {int(day)}"
        km_aggs.append(
            f"sum(CASE WHEN n > d THEN ln((n - d)::float8) - ln(n::float8) END) FILTER (WHERE {cond}) AS l_{label}, "
            f"bool_or(n = d) FILTER (WHERE {cond}) AS z_{label}, "
            f"sum(CASE WHEN n > d THEN d::float8 / (n::float8 * (n - d)::float8) END) "
            f"FILTER (WHERE {cond}) AS v_{label}"
        )
        km_cols.append(f"km.l_{label}, km.z_{label}, km.v_{label}")

    sql = f"""
WITH ev AS (
    SELECT e.procedure_id,
           max(e.onset_on) AS last_onset,
           {firsts}
    FROM events_adverseevent e
    WHERE e.retracted_at IS NULL {scope_ev}
    GROUP BY e.procedure_id
),
vis AS (
    SELECT v.procedure_id, max(v.completed_on) AS last_visit
    FROM registry_followupvisit v
    WHERE v.completed_on IS NOT NULL {scope_vis}
    GROUP BY v.procedure_id
),
base AS MATERIALIZED (
    SELECT {stratum_cols}GREATEST(x.end_raw, 0) AS e,
           {case_days}
    FROM registry_procedure p
    JOIN registry_patient pt ON pt.id = p.patient_id
    JOIN registry_clinic c ON c.id = p.clinic_id
    LEFT JOIN ev ON ev.procedure_id = p.id
    LEFT JOIN vis ON vis.procedure_id = p.id
    CROSS JOIN LATERAL (
        SELECT LEAST(GREATEST(p.performed_on, vis.last_visit, ev.last_onset, pt.death_date),
                     pt.withdrawn_on, %(cutoff)s::date) - p.performed_on AS end_raw
    ) x
    WHERE p.performed_on <= %(cutoff)s::date {scope_p}
),
counts AS (
    SELECT {grouping} AS g, {sel_strata}count(*) AS n,
           {per_outcome_counts}
    FROM base
    GROUP BY {cube}
),
ends AS (
    SELECT {grouping} AS g, {sel_strata}LEAST(e, {cap}) AS t, count(*)::int AS ne
    FROM base
    GROUP BY {cube_and}LEAST(e, {cap})
),
case_days AS (
    SELECT {grouping} AS g, {sel_strata}k, t, sum(d)::int AS d, sum(x)::int AS x
    FROM (
        SELECT {plain}o.k, z.t, z.d, z.x
        FROM base b
        CROSS JOIN LATERAL (VALUES {unpivot_cases}) AS o(k, t)
        CROSS JOIN LATERAL (VALUES (o.t, 1, 0), (b.e, 0, 1)) AS z(t, d, x)
        WHERE {tmin} <= {KM_MAX_DAY}
          AND o.t <= {KM_MAX_DAY} AND z.t <= {KM_MAX_DAY}
    ) u
    GROUP BY {cube_and}k, t
),
steps AS (
    SELECT {part}, k, t, d, x, 0 AS ne FROM case_days
    UNION ALL
    SELECT {part}, -1, t, 0, 0, ne FROM ends
),
risk AS (
    SELECT {part}, k, t, d, x,
           sum(ne) OVER (PARTITION BY {part})
           - COALESCE(sum(ne) OVER (PARTITION BY {part} ORDER BY t
                                    RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS a
    FROM steps
),
km_steps AS (
    SELECT {part}, k, t, d,
           (a - (sum(d) OVER w - d) + (sum(x) OVER w - x))::bigint AS n
    FROM risk
    WHERE k >= 0
    WINDOW w AS (PARTITION BY {part}, k ORDER BY t)
),
km AS (
    SELECT {part}, k,
           {", ".join(km_aggs)}
    FROM km_steps
    GROUP BY {part}, k
)
SELECT c.g, {"".join(f"c.{s}, " for s in strata)}o.k, c.n, o.cases, o.days, o.maxt,
       {", ".join(km_cols)}
FROM counts c
CROSS JOIN LATERAL (VALUES {unpivot_counts}) AS o(k, cases, days, maxt)
LEFT JOIN km ON {join_on} AND km.k = o.k
"""  # noqa: S608 - only fixed fragments and validated stratum/outcome indexes are interpolated; values are bound
    return sql, args
