"""The one SQL statement behind an incidence report.

Pipeline (CTEs), all in PostgreSQL, one scan of each table:

``ev``      per unit (procedure, or patient for the patient unit: over all the patient's
            procedures): latest onset of any counting (non-retracted) event, and the first
            onset per outcome (``min(onset_on) FILTER (WHERE <outcome>)``).
``vis``     per unit: latest completed (non-retracted) follow-up visit (``lp``, patient
            unit only: the latest procedure and the first one on or before the cut-off).
            (Materialised on their own, so PostgreSQL may aggregate them with parallel
            workers without every worker rebuilding them for a join.)
``base``    per unit (materialised once): stratum values; per outcome k, with its risk
            window (s, e) (DESIGN 2b: A = T + s, B = the observation end, or T + e when
            earlier): ``d<k>`` = days at risk from A (first qualifying onset F for a case,
            the death day for a competing death, else B), NULL when the unit is not in the
            outcome's denominator (a qualifying onset before A, or B < A); ``y<k>`` = 1
            case, 2 competing death, 0 censored. The observation end is computed once per
            row (OFFSET 0 fence).
``fine``    GROUP BY finest strata and observation end (days from time zero, capped past the
            last horizon plus the latest window start): units, and per outcome the units in
            its denominator, cases, competing deaths, days at risk and ``x<k>`` = units not
            censored for it (cases, deaths, out of its denominator).
``counts``  GROUP BY CUBE(strata) over ``fine``: the margins of those sums.
``ends``    GROUP BY CUBE(strata), end day over ``fine``: units and the ``x<k>``.
``hits``/``event_days`` per outcome (one GROUPING SET each: one pass over ``base``) and
            day: cases and competing deaths, then GROUP BY CUBE(strata).
``km_events``/``km_ends`` the Kaplan-Meier and Aalen-Johansen input, per stratum (and
            outcome), as compact comma-separated integers: "day,cases,deaths" triples and
            "end,units,x0,x1,..." tuples. reports.engine.km turns them into n(t), S(t) and
            the cumulative incidence functions.

The rows come one group (stratum or margin) after another, in report order, so Python
reads them through a server-side cursor a few groups at a time: memory stays flat however many rows the report has
(reports.engine.compute). How many rows that is, ``build_estimate_sql`` tells before
anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from reports.choices import AGE_BANDS, KM_MAX_DAY, OUTCOME_ANY, OUTCOME_GRADE_3_PLUS, OUTCOME_SERIOUS, Unit
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


# Attributes a unit can be described by (the strata, and what the signal screen and the provider
# comparison group by), over the unit's first procedure p, its patient pt and clinic c.
ATTRIBUTE_SQL: dict[str, str] = {
    **STRATUM_SQL,
    "processing": "p.processing::text",
    "carrier": "p.carrier::text",
    "guidance": "p.guidance::text",
    "product_lot": "p.product_lot::text",
    "gmp": "CASE WHEN c.gmp_certified THEN 'true' ELSE 'false' END",
}
_CLINIC_ATTRIBUTES = {"clinic", "country", "gmp"}


def _contact_ctes(params: IncidenceParams, args: dict) -> str:
    """Return the CTEs ``ev`` and ``vis`` (without WITH): per unit (``uid``: procedure, or patient for the
    patient unit), the counting events' latest onset and first onset per outcome (f0, f1, ...), and
    the latest completed visit (and, per patient, the latest procedure: every procedure is a contact).

    For the patient unit these range over all the patient's non-retracted procedures, those after the
    cut-off included (DESIGN 2b); the observation end caps them as usual."""
    firsts = ", ".join(
        f"min(e.onset_on){_outcome_filter(outcome, k, args)} AS f{k}" for k, outcome in enumerate(params.outcomes)
    )
    if params.clinic_ids is not None:
        args["scope"] = sorted(params.clinic_ids)
    if params.unit == Unit.PATIENT:
        scope = " AND sp.clinic_id = ANY(%(scope)s)" if params.clinic_ids is not None else ""
        return f"""ev AS MATERIALIZED (
    SELECT sp.patient_id AS uid, max(e.onset_on) AS last_onset, {firsts}
    FROM events_adverseevent e
    JOIN registry_procedure sp ON sp.id = e.procedure_id
    WHERE e.retracted_at IS NULL AND sp.retracted_at IS NULL{scope}
    GROUP BY sp.patient_id
),
vis AS MATERIALIZED (
    SELECT sp.patient_id AS uid, max(v.completed_on) AS last_visit
    FROM registry_followupvisit v
    JOIN registry_procedure sp ON sp.id = v.procedure_id
    WHERE v.completed_on IS NOT NULL AND v.retracted_at IS NULL AND sp.retracted_at IS NULL{scope}
    GROUP BY sp.patient_id
),
lp AS MATERIALIZED (
    SELECT sp.patient_id AS uid, max(sp.performed_on) AS last_performed,
           (array_agg(sp.id ORDER BY sp.performed_on, sp.id)
                FILTER (WHERE sp.performed_on <= %(cutoff)s::date))[1] AS first_id
    FROM registry_procedure sp
    WHERE sp.retracted_at IS NULL{scope}
    GROUP BY sp.patient_id
)"""  # noqa: S608 - fixed fragments; values are bound
    scope_ev = scope_vis = ""
    if params.clinic_ids is not None:
        scoped = "(SELECT sp.id FROM registry_procedure sp WHERE sp.clinic_id = ANY(%(scope)s))"
        scope_ev = f"AND e.procedure_id IN {scoped}"
        scope_vis = f"AND v.procedure_id IN {scoped}"
    return f"""ev AS MATERIALIZED (
    SELECT e.procedure_id AS uid, max(e.onset_on) AS last_onset, {firsts}
    FROM events_adverseevent e
    WHERE e.retracted_at IS NULL {scope_ev}
    GROUP BY e.procedure_id
),
vis AS MATERIALIZED (
    SELECT v.procedure_id AS uid, max(v.completed_on) AS last_visit
    FROM registry_followupvisit v
    WHERE v.completed_on IS NOT NULL AND v.retracted_at IS NULL {scope_vis}
    GROUP BY v.procedure_id
)"""  # noqa: S608 - fixed fragments; values are bound


def _units_from(params: IncidenceParams, args: dict, attributes: Sequence[str]) -> tuple[str, str, str, str]:
    """Return (from_and_where, uid, time zero, observation end) SQL of the report's units, joined to
    their contacts: ``p`` is the unit's (first) procedure, ``pt`` its patient, ``c`` the clinic."""
    args["cutoff"] = params.cutoff_on
    clinic = bool(_CLINIC_ATTRIBUTES & set(attributes))
    if params.unit == Unit.PATIENT:
        where = "pt.retracted_at IS NULL"
        if params.clinic_ids is not None:
            where += " AND pt.clinic_id = ANY(%(scope)s)"
        sql = f"""FROM lp
        JOIN registry_procedure p ON p.id = lp.first_id
        JOIN registry_patient pt ON pt.id = p.patient_id
        {"JOIN registry_clinic c ON c.id = pt.clinic_id" if clinic else ""}
        LEFT JOIN ev ON ev.uid = pt.id
        LEFT JOIN vis ON vis.uid = pt.id
        WHERE {where}"""
        end = (
            "LEAST(GREATEST(p.performed_on, lp.last_performed, vis.last_visit, ev.last_onset, pt.death_date), "
            "pt.withdrawn_on, %(cutoff)s::date)"
        )
        return sql, "pt.id", "p.performed_on", end
    joins, where = _procedures(params, args)
    if clinic and "registry_clinic c" not in joins:
        joins += " JOIN registry_clinic c ON c.id = p.clinic_id"
    sql = f"""FROM registry_procedure p
        {joins}
        LEFT JOIN ev ON ev.uid = p.id
        LEFT JOIN vis ON vis.uid = p.id
        WHERE {where}"""
    return sql, "p.id", "p.performed_on", OBSERVATION_END


def _window_columns(params: IncidenceParams) -> str:
    """Per outcome k: ``d{k}`` days at risk counted from A (NULL: not in the outcome's denominator) and
    ``y{k}`` 1 case, 2 competing death, 0 censored (DESIGN 2b), over q's o, f{k} and dd (days from T)."""
    columns = []
    for k, (start, end) in enumerate(params.windows):
        a = int(start)
        b = "o" if end is None else f"LEAST(o, {int(end)})"
        inside = f"(f{k} IS NULL OR f{k} >= {a}) AND {b} >= {a}"
        columns.append(
            f"CASE WHEN NOT ({inside}) THEN NULL WHEN f{k} <= {b} THEN f{k} - {a} "
            f"WHEN dd BETWEEN {a} AND {b} THEN dd - {a} ELSE {b} - {a} END AS d{k}, "
            f"CASE WHEN NOT ({inside}) THEN NULL WHEN f{k} <= {b} THEN 1 "
            f"WHEN dd BETWEEN {a} AND {b} THEN 2 ELSE 0 END::smallint AS y{k}"
        )
    return ", ".join(columns)


def _unit_ctes(
    params: IncidenceParams, args: dict, *, attributes: Sequence[str] = (), keys: bool = False, ends: bool = False
) -> str:
    """Return ``WITH ev, vis[, lp], base``: the per-unit table every figure of a report is counted from.

    ``base`` has, per unit of the report (DESIGN 2b: procedure, or patient), the stratum values
    s0.., the ``attributes`` as a_<name>, and per outcome k ``d{k}`` (days at risk from A, NULL
    when the unit is not in the outcome's denominator) and ``y{k}`` (1 case, 2 competing death,
    0 censored). ``keys`` adds uid (procedure or patient id), t0 (time zero) and o (days from
    time zero to the observation end); ``ends`` adds o alone.
    """
    source, uid, t0, end = _units_from(params, args, [*params.strata, *attributes])
    ks = range(len(params.outcomes))
    strata = "".join(f"s{i}, " for i in range(len(params.strata)))
    extra = "".join(f"a_{name}, " for name in attributes)
    attribute_columns = "".join(f'({ATTRIBUTE_SQL[name]}) COLLATE "C" AS a_{name}, ' for name in attributes)
    key_columns = "uid, t0, o, " if keys else "o, " if ends else ""
    return f"""WITH {_contact_ctes(params, args)},
base AS MATERIALIZED (
    SELECT {strata}{extra}{key_columns}{_window_columns(params)}
    FROM (
        SELECT {_stratum_columns(params)}{attribute_columns}{uid} AS uid, {t0} AS t0,
               {end} - {t0} AS o, pt.death_date - {t0} AS dd,
               {", ".join(f"ev.f{k} - {t0} AS f{k}" for k in ks)}
        {source}
        OFFSET 0
    ) q
)"""  # noqa: S608 - fixed fragments and validated indexes and window days; values are bound


def build_units_sql(params: IncidenceParams, columns: Sequence[str] = ()) -> tuple[str, dict]:
    """Return (sql, args): one row per unit of the report with the ``columns`` (attributes, aliased
    a_<name>: see ATTRIBUTE_SQL) and, per outcome k of params.outcomes, ``d{k}`` (days at risk from A,
    NULL when the unit is not in that outcome's denominator) and ``y{k}`` (1 case, 2 competing
    death, 0 censored), under the rules of DESIGN 2b. Aggregate over it in SQL; never fetch it whole.
    """
    unknown = [c for c in columns if c not in ATTRIBUTE_SQL]
    if unknown:
        raise ValueError(f"Unknown unit attributes: {', '.join(unknown)}")
    args: dict = {}
    ks = range(len(params.outcomes))
    sql = f"""{_unit_ctes(params, args, attributes=columns)}
SELECT {"".join(f"a_{c}, " for c in columns)}{", ".join(f"d{k}, y{k}" for k in ks)} FROM base
"""  # noqa: S608 - fixed fragments
    return sql, args


def build_incidence_sql(params: IncidenceParams) -> tuple[str, dict]:
    """Return (sql, args) computing the incidence rows for ``params``, one group after another.

    Columns: g (GROUPING bitmask, bit set = that stratum is a margin; the first stratum
    is the highest bit), s0..s{k-1}, k (index into params.outcomes), n (units in the
    outcome's denominator), cases, deaths (competing), person_days, event days
    ("day,cases,deaths" triples, days from the start of the risk window, up to KM_MAX_DAY,
    in no particular order), end days (on the group's first row, k = 0, only:
    "end,units,x0,x1,..." tuples: per observation end (days from time zero, capped past the
    last horizon plus the latest window start), the units, and x<k> = those of them that are
    not censored for outcome k: cases, competing deaths, and units out of its denominator),
    groups (how many groups there are). Groups come in report order, each with its outcomes
    in order: the report position of the row of group i and outcome k is k * groups + i.
    reports.engine.km turns ends and event days into the numbers at risk.
    """
    args: dict = {}
    strata = [f"s{i}" for i in range(len(params.strata))]
    ks = list(range(len(params.outcomes)))
    cap = end_cap(params)

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

    # Cases and competing deaths by day, one GROUPING SET per outcome: one pass over the units that
    # have one (no per-outcome unpivot of units).
    sets = ", ".join(f"({plain}y{k}, d{k})" for k in ks)
    pick = " ".join(f"WHEN GROUPING(y{k}, d{k}) = 0 THEN {k}" for k in ks)
    pick_y = " ".join(f"WHEN GROUPING(y{k}, d{k}) = 0 THEN y{k}" for k in ks)
    pick_t = " ".join(f"WHEN GROUPING(y{k}, d{k}) = 0 THEN d{k}" for k in ks)
    sql = f"""
{_unit_ctes(params, args, ends=True)},
fine AS MATERIALIZED (
    SELECT {plain}GREATEST(LEAST(o, {cap}), -1) AS e, count(*) AS ne,
           {
        each(
            "count(d{k}) AS n{k}, count(*) FILTER (WHERE y{k} = 1) AS c{k}, "
            "count(*) FILTER (WHERE y{k} = 2) AS z{k}, sum(d{k}) AS d{k}, "
            "count(*) FILTER (WHERE y{k} IS DISTINCT FROM 0) AS x{k}"
        )
    }
    FROM base
    GROUP BY {plain}GREATEST(LEAST(o, {cap}), -1)
),
counts AS (
    SELECT {grouping} AS g, {sel}
           {
        each(
            "COALESCE(sum(n{k}), 0)::bigint AS n{k}, COALESCE(sum(c{k}), 0)::bigint AS c{k}, "
            "COALESCE(sum(z{k}), 0)::bigint AS z{k}, COALESCE(sum(d{k}), 0)::bigint AS d{k}"
        )
    }
    FROM fine
    GROUP BY {cube}
),
ends AS (
    SELECT {grouping} AS g, {sel}e, sum(ne)::int AS ne, {each("sum(x{k})::int AS x{k}")}
    FROM fine
    GROUP BY {cube_and}e
),
hits AS (
    SELECT {plain}CASE {pick} END AS k, CASE {pick_y} END AS y, CASE {pick_t} END AS t, count(*) AS n
    FROM base
    WHERE {each("(y{k} > 0 AND d{k} <= " + str(KM_MAX_DAY) + ")", " OR ") or "FALSE"}
    GROUP BY GROUPING SETS ({sets})
),
event_days AS (
    SELECT {grouping} AS g, {sel}k, t,
           COALESCE(sum(n) FILTER (WHERE y = 1), 0) AS c, COALESCE(sum(n) FILTER (WHERE y = 2), 0) AS z
    FROM hits
    WHERE y > 0 AND t <= {KM_MAX_DAY}
    GROUP BY {cube_and}k, t
),
km_events AS (
    SELECT {part}, k, string_agg(concat_ws(',', t, c, z), ',') AS days
    FROM event_days
    GROUP BY {part}, k
),
km_ends AS (
    SELECT {part}, string_agg(concat_ws(',', e, ne, {each("x{k}")}), ',') AS days
    FROM ends
    GROUP BY {part}
),
total AS (
    SELECT count(*) AS groups FROM counts
)
SELECT c.g, {"".join(f"c.{s}, " for s in strata)}o.k, o.n, o.cases, o.deaths, o.days AS person_days,
       ke.days AS event_days, kn.days AS end_days, total.groups
FROM counts c
CROSS JOIN total
CROSS JOIN LATERAL (VALUES {each("({k}, c.n{k}, c.c{k}, c.z{k}, c.d{k})")}) AS o(k, n, cases, deaths, days)
LEFT JOIN km_events ke ON {join_on("ke")} AND ke.k = o.k
LEFT JOIN km_ends kn ON {join_on("kn")} AND o.k = 0
ORDER BY {order}o.k
"""  # noqa: S608 - only fixed fragments and validated stratum/outcome indexes are interpolated; values are bound
    return sql, args


def end_cap(params: IncidenceParams) -> int:
    """Return the day past which observation ends are lumped together: the last horizon after the latest
    window start (beyond it only "still at risk" matters)."""
    return KM_MAX_DAY + params.max_start + 1


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

    Rows (k, s0..s{n-1}, day, events, censored, deaths), k the outcome's index in
    params.outcomes, ordered by k, stratum and day: per finest stratum and day (counted from the
    start of the risk window), the first qualifying onsets of cases (events), competing deaths,
    and the ends of the others (censored), from the very ``base`` the incidence rows are counted
    from (materialised once, read once per outcome).
    """
    args: dict = {}
    ks = [params.outcomes.index(o) for o in (outcomes or params.outcomes)]
    strata = "".join(f"COALESCE(s{i}, '') AS s{i}, " for i in range(len(params.strata)))
    plain = "".join(f"s{i}, " for i in range(len(params.strata)))
    branches = "\nUNION ALL\n".join(
        f"SELECT {k} AS k, {strata}d{k} AS day, count(*) FILTER (WHERE y{k} = 1) AS events, "  # noqa: S608 - indexes
        f"count(*) FILTER (WHERE y{k} = 0) AS censored, count(*) FILTER (WHERE y{k} = 2) AS deaths "
        f"FROM base WHERE d{k} IS NOT NULL GROUP BY {plain}d{k}"
        for k in ks
    )
    sql = f"""
{_unit_ctes(params, args)}
SELECT * FROM (
{branches}
) points
ORDER BY k, {plain}day
"""  # noqa: S608 - fixed fragments and validated outcome indexes; values are bound
    return sql, args


def build_counted_events_sql(params: IncidenceParams) -> tuple[str, dict]:
    """Return (sql, args) selecting the events that count for the report of ``params``.

    Rows (event_id, clinic_id, onset_on), in onset order: non-retracted events of the
    report's units that qualify for at least one of its outcomes, for which the unit is in
    the denominator, with onset within the outcome's risk window [A, B]: the events a case
    is made of (and their repeats, which add no case). Same units, contacts, observation
    end and windows as build_incidence_sql.
    """
    args: dict = {}
    ctes = _unit_ctes(params, args, keys=True)
    terms = []
    for k, (outcome, (start, end)) in enumerate(zip(params.outcomes, params.windows, strict=True)):
        predicate = outcome_predicate(outcome, k, args)
        b = "base.o" if end is None else f"LEAST(base.o, {int(end)})"
        term = f"base.y{k} IS NOT NULL AND e.onset_on - base.t0 BETWEEN {int(start)} AND {b}"
        terms.append(f"({term}{'' if predicate is None else f' AND {predicate}'})")
    uid = "sp.patient_id" if params.unit == Unit.PATIENT else "sp.id"
    sql = f"""
{ctes}
SELECT e.id AS event_id, sp.clinic_id, e.onset_on
FROM events_adverseevent e
JOIN registry_procedure sp ON sp.id = e.procedure_id
JOIN base ON base.uid = {uid}
WHERE e.retracted_at IS NULL AND sp.retracted_at IS NULL AND ({" OR ".join(terms) or "FALSE"})
ORDER BY e.onset_on, e.id
"""  # noqa: S608 - fixed fragments and validated indexes; values are bound
    return sql, args
