"""The one SQL statement behind an incidence report.

Pipeline (CTEs), all in PostgreSQL, one scan of each table:

``ev``      per procedure: latest onset of any counting (non-retracted) event, and the
            first onset per outcome (``min(onset_on) FILTER (WHERE <outcome>)``).
``vis``     per procedure: latest completed (non-retracted) follow-up visit.
            (Both materialised on their own, so PostgreSQL may aggregate them with
            parallel workers without every worker rebuilding them for a join.)
``base``    per procedure (materialised once): stratum values; ``e`` = observation end
            - performed_on in days (floored at 0); ``t<k>`` = days to the first
            qualifying onset of outcome k when that procedure is a case, else NULL.
            The observation end is computed once per row (OFFSET 0 fence).
``fine``    GROUP BY finest strata and ``LEAST(e, KM_MAX_DAY + 1)``: procedures, and per
            outcome cases, days at risk (``t`` for a case, else ``e``), and ``x<k>`` =
            cases of k (with onset <= KM_MAX_DAY) among them.
``counts``  GROUP BY CUBE(strata) over ``fine``: the margins of those sums.
``ends``    GROUP BY CUBE(strata), day over ``fine``: procedures whose time without an
            event ends that day (beyond the last horizon only "still at risk" matters,
            so days are capped at KM_MAX_DAY + 1), and the ``x<k>``.
``event_days`` GROUP BY CUBE(strata), outcome, day: first qualifying onsets of cases
            (at the finest strata first, one GROUPING SET per outcome: one pass over
            ``base``, no per-outcome unpivot of procedures).
``km_events``/``km_ends`` the Kaplan-Meier input, per stratum (and outcome), as compact
            comma-separated integers: "day,events" pairs, and "day,ends,x0,x1,..."
            tuples. reports.engine.km turns them into n(t) and S(t).

The rows come one group (stratum or margin) after another, in report order, the end
days on the group's first row only, so Python reads them through a server-side cursor
a few groups at a time: memory stays flat however many rows the report has
(reports.engine.compute). How many rows that is, ``build_estimate_sql`` tells before
anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from reports.choices import AGE_BANDS, KM_MAX_DAY, OUTCOME_ANY, OUTCOME_GRADE_3_PLUS, OUTCOME_SERIOUS
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
_NEEDS_CLINIC = {"clinic", "country"}


def outcome_predicate(outcome: str, index: int, args: dict) -> str | None:
    """Return the SQL condition on events ``e`` selecting the events of ``outcome`` (None: every event)."""
    if outcome == OUTCOME_ANY:
        return None
    if outcome == OUTCOME_SERIOUS:
        return "e.serious"
    if outcome == OUTCOME_GRADE_3_PLUS:
        return "e.grade >= 3"
    args[f"cat{index}"] = outcome
    return f"e.category = %(cat{index})s"


def _outcome_filter(outcome: str, index: int, args: dict) -> str:
    """Return the FILTER clause (or '') selecting the events of ``outcome``."""
    predicate = outcome_predicate(outcome, index, args)
    return "" if predicate is None else f" FILTER (WHERE {predicate})"


def _procedures(params: IncidenceParams, args: dict) -> tuple[str, str]:
    """Return (joins, where) selecting the report's procedures: in scope, performed by the cut-off, and
    neither the procedure nor its patient retracted (entered in error: in no statistic)."""
    args["cutoff"] = params.cutoff_on
    where = "p.performed_on <= %(cutoff)s::date AND p.retracted_at IS NULL AND pt.retracted_at IS NULL"
    if params.clinic_ids is not None:
        args["scope"] = sorted(params.clinic_ids)
        where += " AND p.clinic_id = ANY(%(scope)s)"
    joins = " JOIN registry_patient pt ON pt.id = p.patient_id"
    if _NEEDS_CLINIC & set(params.strata):
        joins += " JOIN registry_clinic c ON c.id = p.clinic_id"
    return joins, where


def _stratum_columns(params: IncidenceParams) -> str:
    # Byte order ("C") for the grouping keys: memcmp is cheaper, and it is Python's str order.
    return "".join(f'({STRATUM_SQL[name]}) COLLATE "C" AS s{i}, ' for i, name in enumerate(params.strata))


def _report_order(params: IncidenceParams, alias: str) -> list[str]:
    """Return the ORDER BY keys of the groups: per stratum, values before the margin (ALL);
    age bands in age order, years numerically, anything else in byte order."""
    n = len(params.strata)
    keys = []
    for j, name in enumerate(params.strata):
        column = f"{alias}.s{j}"
        keys.append(f"({alias}.g >> {n - 1 - j}) & 1")
        if name == "age_band":
            whens = " ".join(f"WHEN '{label}' THEN {i}" for i, (label, _, _) in enumerate(AGE_BANDS))
            keys.append(f"CASE {column} {whens} ELSE 99 END")
        elif name == "year":
            keys.append(f"NULLIF({column}, '')::int")
        keys.append(column)
    return keys


# The observation end of procedure p (DESIGN.md 2), over the contact CTEs ev and vis.
OBSERVATION_END = (
    "LEAST(GREATEST(p.performed_on, vis.last_visit, ev.last_onset, pt.death_date), pt.withdrawn_on, %(cutoff)s::date)"
)


def _contact_ctes(params: IncidenceParams, args: dict) -> str:
    """Return the CTEs ``ev`` and ``vis`` (without WITH): per procedure, the counting events' latest
    onset and first onset per outcome (f0, f1, ...), and the latest completed visit."""
    scope_ev = scope_vis = ""
    if params.clinic_ids is not None:
        args["scope"] = sorted(params.clinic_ids)
        scoped = "(SELECT sp.id FROM registry_procedure sp WHERE sp.clinic_id = ANY(%(scope)s))"
        scope_ev = f"AND e.procedure_id IN {scoped}"
        scope_vis = f"AND v.procedure_id IN {scoped}"
    firsts = ", ".join(
        f"min(e.onset_on){_outcome_filter(outcome, k, args)} AS f{k}" for k, outcome in enumerate(params.outcomes)
    )
    return f"""ev AS MATERIALIZED (
    SELECT e.procedure_id, max(e.onset_on) AS last_onset, {firsts}
    FROM events_adverseevent e
    WHERE e.retracted_at IS NULL {scope_ev}
    GROUP BY e.procedure_id
),
vis AS MATERIALIZED (
    SELECT v.procedure_id, max(v.completed_on) AS last_visit
    FROM registry_followupvisit v
    WHERE v.completed_on IS NOT NULL AND v.retracted_at IS NULL {scope_vis}
    GROUP BY v.procedure_id
)"""  # noqa: S608 - fixed fragments; values are bound


def _per_procedure_ctes(params: IncidenceParams, args: dict) -> str:
    """Return ``WITH ev, vis, base``: the per-procedure table every figure of a report is counted from.

    ``base`` has, per procedure of the report, the stratum values s0.., ``e`` = days from
    time zero to the observation end (floored at 0) and ``t<k>`` = days to the first
    qualifying onset of outcome k when the procedure is a case of it, else NULL.
    """
    args["window"] = params.onset_window_days
    joins, where = _procedures(params, args)
    ks = range(len(params.outcomes))

    def each(template: str) -> str:
        return ", ".join(template.format(k=k) for k in ks)

    return f"""WITH {_contact_ctes(params, args)},
base AS MATERIALIZED (
    SELECT {"".join(f"s{i}, " for i in range(len(params.strata)))}GREATEST(end_raw, 0) AS e,
           {each("CASE WHEN f{k} <= LEAST(end_raw, %(window)s::int) THEN f{k} END AS t{k}")}
    FROM (
        SELECT {_stratum_columns(params)}
               {OBSERVATION_END} - p.performed_on AS end_raw,
               {each("ev.f{k} - p.performed_on AS f{k}")}
        FROM registry_procedure p
        {joins}
        LEFT JOIN ev ON ev.procedure_id = p.id
        LEFT JOIN vis ON vis.procedure_id = p.id
        WHERE {where}
        OFFSET 0
    ) q
)"""  # noqa: S608 - fixed fragments and validated indexes; values are bound


def build_incidence_sql(params: IncidenceParams) -> tuple[str, dict]:
    """Return (sql, args) computing the incidence rows for ``params``, one group after another.

    Columns: g (GROUPING bitmask, bit set = that stratum is a margin; the first stratum
    is the highest bit), s0..s{k-1}, k (index into params.outcomes), n, cases,
    person_days, event days ("day,events" pairs), end days (on the group's first row,
    k = 0, only: "day,ends,x0,x1,..." tuples), groups (how many groups there are).
    Groups come in report order, each with its outcomes in order: the report position
    of the row of group i and outcome k is k * groups + i.
    """
    args: dict = {}
    strata = [f"s{i}" for i in range(len(params.strata))]
    ks = list(range(len(params.outcomes)))
    cap = KM_MAX_DAY + 1

    def each(template: str, sep: str = ", ") -> str:
        return sep.join(template.format(k=k) for k in ks)

    if strata:
        grouping = f"GROUPING({', '.join(strata)})"
        cube = f"CUBE ({', '.join(strata)})"
        cube_and = f"{cube}, "
    else:
        grouping, cube, cube_and = "0", "()", ""
    sel = "".join(f"COALESCE({s}, '') AS {s}, " for s in strata)
    plain = "".join(f"{s}, " for s in strata)
    part = ", ".join(["g", *strata])

    order = "".join(f"{key}, " for key in _report_order(params, "c"))

    def join_on(alias: str) -> str:
        return " AND ".join(f"{alias}.{c} = c.{c}" for c in ["g", *strata])

    sql = f"""
{_per_procedure_ctes(params, args)},
fine AS MATERIALIZED (
    SELECT {plain}LEAST(e, {cap}) AS t, count(*) AS ne,
           {
        each(
            "count(t{k}) AS c{k}, sum(COALESCE(t{k}, e)) AS d{k}, "
            f"count(*) FILTER (WHERE t{{k}} <= {KM_MAX_DAY}) AS x{{k}}"
        )
    }
    FROM base
    GROUP BY {plain}LEAST(e, {cap})
),
counts AS (
    SELECT {grouping} AS g, {sel}COALESCE(sum(ne), 0)::bigint AS n,
           {each("sum(c{k})::bigint AS c{k}, sum(d{k})::bigint AS d{k}")}
    FROM fine
    GROUP BY {cube}
),
ends AS (
    SELECT {grouping} AS g, {sel}t, sum(ne)::int AS ne, {each("sum(x{k})::int AS x{k}")}
    FROM fine
    GROUP BY {cube_and}t
),
event_days AS (
    SELECT {grouping} AS g, {sel}k, t, sum(d)::int AS d
    FROM (
        SELECT {plain}CASE {each("WHEN GROUPING(t{k}) = 0 THEN {k}", " ")} END AS k,
               CASE {each("WHEN GROUPING(t{k}) = 0 THEN t{k}", " ")} END AS t,
               count(*) AS d
        FROM base
        WHERE LEAST({each("t{k}")}) <= {KM_MAX_DAY}
        GROUP BY GROUPING SETS ({each("(" + plain + "t{k})")})
    ) u
    WHERE t <= {KM_MAX_DAY}
    GROUP BY {cube_and}k, t
),
km_events AS (
    SELECT {part}, k, string_agg(t || ',' || d, ',') AS days
    FROM event_days
    GROUP BY {part}, k
),
km_ends AS (
    SELECT {part}, string_agg(concat_ws(',', t, ne, {each("x{k}")}), ',') AS days
    FROM ends
    GROUP BY {part}
),
total AS (
    SELECT count(*) AS groups FROM counts
)
SELECT c.g, {"".join(f"c.{s}, " for s in strata)}o.k, c.n, o.cases, o.days AS person_days,
       ke.days AS event_days, kn.days AS end_days, total.groups
FROM counts c
CROSS JOIN total
CROSS JOIN LATERAL (VALUES {each("({k}, c.c{k}, c.d{k})")}) AS o(k, cases, days)
LEFT JOIN km_events ke ON {join_on("ke")} AND ke.k = o.k
LEFT JOIN km_ends kn ON {join_on("kn")} AND o.k = 0
ORDER BY {order}o.k
"""  # noqa: S608 - only fixed fragments and validated stratum/outcome indexes are interpolated; values are bound
    return sql, args


def build_estimate_sql(params: IncidenceParams, *, exact: bool) -> tuple[str, dict]:
    """Return (sql, args) sizing the report before it runs, on the same procedures as the report.

    ``exact`` False: one row (f, d0, .., d{k-1}): the number of non-empty finest strata and
    the distinct values of each stratum (cheap: one grouping of the procedures).
    ``exact`` True: one row (groups): the number of non-empty groups of GROUP BY CUBE, which
    is the report's number of rows per outcome (its cost grows with 2^strata x f).
    """
    args: dict = {}
    joins, where = _procedures(params, args)
    strata = [f"s{i}" for i in range(len(params.strata))]
    columns = _stratum_columns(params).rstrip(", ") or "1 AS one"
    group = ", ".join(strata) or "()"
    finest = f"SELECT {columns} FROM registry_procedure p {joins} WHERE {where} GROUP BY {group}"  # noqa: S608
    if exact:
        cube = f"CUBE ({', '.join(strata)})" if strata else "()"
        sql = f"SELECT count(*) FROM (SELECT 1 FROM ({finest}) f GROUP BY {cube}) g"  # noqa: S608 - fixed fragments
    else:
        distinct = "".join(f", count(DISTINCT {s})" for s in strata)
        sql = f"SELECT count(*){distinct} FROM ({finest}) f"  # noqa: S608 - fixed fragments
    return sql, args


def build_curve_points_sql(params: IncidenceParams, *, outcomes: Sequence[str] | None = None) -> tuple[str, dict]:
    """Return (sql, args) giving the Kaplan-Meier input of ``outcomes`` (default all) at the finest strata.

    Rows (k, s0..s{n-1}, day, events, censored), k the outcome's index in params.outcomes,
    ordered by k, stratum and day: per finest stratum and day, the first qualifying onsets of
    cases (events) and the observation ends of the others (censored), from the very ``base``
    the incidence rows are counted from (materialised once, read once per outcome).
    """
    args: dict = {}
    ks = [params.outcomes.index(o) for o in (outcomes or params.outcomes)]
    strata = "".join(f"COALESCE(s{i}, '') AS s{i}, " for i in range(len(params.strata)))
    plain = "".join(f"s{i}, " for i in range(len(params.strata)))
    branches = "\nUNION ALL\n".join(
        f"SELECT {k} AS k, {strata}COALESCE(t{k}, e) AS day, count(t{k}) AS events, "  # noqa: S608 - indexes
        f"count(*) - count(t{k}) AS censored FROM base GROUP BY {plain}COALESCE(t{k}, e)"
        for k in ks
    )
    sql = f"""
{_per_procedure_ctes(params, args)}
SELECT * FROM (
{branches}
) points
ORDER BY k, {plain}day
"""  # noqa: S608 - fixed fragments and validated outcome indexes; values are bound
    return sql, args


def build_counted_events_sql(params: IncidenceParams) -> tuple[str, dict]:
    """Return (sql, args) selecting the events that count for the report of ``params``.

    Rows (event_id, clinic_id, onset_on), in onset order: non-retracted events of the
    report's procedures that qualify for at least one of its outcomes, with onset on or
    before the procedure's observation end and within the onset window: the events a
    case is made of (and their repeats, which add no case). Same procedures, contacts
    and observation end as build_incidence_sql.
    """
    args: dict = {"window": params.onset_window_days}
    joins, where = _procedures(params, args)
    predicates = [outcome_predicate(o, k, args) for k, o in enumerate(params.outcomes)]
    qualifies = "" if None in predicates else f"AND ({' OR '.join(predicates)})"
    sql = f"""
WITH {_contact_ctes(params, args)},
proc AS MATERIALIZED (
    SELECT p.id, p.clinic_id, p.performed_on, {OBSERVATION_END} - p.performed_on AS end_raw
    FROM registry_procedure p
    {joins}
    LEFT JOIN ev ON ev.procedure_id = p.id
    LEFT JOIN vis ON vis.procedure_id = p.id
    WHERE {where}
)
SELECT e.id AS event_id, proc.clinic_id, e.onset_on
FROM events_adverseevent e
JOIN proc ON proc.id = e.procedure_id
WHERE e.retracted_at IS NULL
  AND e.onset_on - proc.performed_on <= LEAST(proc.end_raw, %(window)s::int) {qualifies}
ORDER BY e.onset_on, e.id
"""  # noqa: S608 - fixed fragments and validated indexes; values are bound
    return sql, args
