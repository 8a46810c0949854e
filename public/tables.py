"""Return the published tables of a publication: the run's provider comparison with small counts suppressed.

Built from the run's stored snapshot (reports RunProviderComparison rows), never from live registry
counts, so a publication's figures never change; the clinics' names, country, GMP certification and
accreditation come from their registry record. One dict, JSON-safe, read by the page, the CSV and
the JSON alike (so all three publish exactly the same cells).

Which counts are printed is decided by public.suppression over every table of an outcome at once
(clinic rows, country rows, GMP rows and the total share their unknowns), and across outcomes: a
group's procedures hidden in one outcome are hidden in every outcome where they are the same
number, or the other table would print them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from public import suppression as sup
from public.models import Publication
from registry.models import Clinic
from reports.choices import OUTCOME_LABELS
from reports.documents.provider import GMP_LABELS, LOW_TEXT
from reports.engine.providers import FLAG_ABOVE_95, FLAG_ABOVE_998, FLAG_BELOW_95, FLAG_BELOW_998
from reports.models import RunProviderComparison

SCHEMA_VERSION = "1.0"
LICENCE = "Creative Commons Attribution 4.0 International (CC BY 4.0), https://creativecommons.org/licenses/by/4.0/"
TOTAL = "ALL"
GROUPINGS = ("clinic", "country", "gmp")
HIGH_TEXT = "more than expected"
AS_EXPECTED = "as expected"


def _direction(flag: str) -> str:
    if flag in (FLAG_ABOVE_998, FLAG_ABOVE_95):
        return "high"
    if flag in (FLAG_BELOW_998, FLAG_BELOW_95):
        return "low"
    return "as expected"


def flag_text(flag: str) -> str:
    """Return the flag for a reader: "more than expected (above 99.8 % limit)", ... or "as expected"."""
    direction = _direction(flag)
    if direction == "as expected":
        return AS_EXPECTED
    return f"{HIGH_TEXT if direction == 'high' else LOW_TEXT} ({flag} limit)"


def completeness(due: int, completed: int) -> int | None:
    """Return the whole percentage of due follow-up visits completed, or None when a count behind it is 1 to 10."""
    if not due or sup.is_small(due) or sup.is_small(completed) or sup.is_small(due - completed):
        return None
    return round(100 * completed / due)


def _window(definitions: list[dict], outcome: str) -> str:
    for d in definitions:
        if d.get("code") == outcome:
            end = d.get("window_end_day")
            return f"day {d.get('window_start_day', 0)} to {'the end of follow-up' if end is None else f'day {end}'}"
    return "day 0 to the end of follow-up"


class _Outcome:
    """The aggregates, cells and relations of one outcome's tables."""

    def __init__(self, outcome: str, stored: dict, members: dict[tuple[str, str], list[str]], clinics: list[str]):
        self.outcome = outcome
        self.stored = stored  # (grouping, group) -> RunProviderComparison
        self.members = members  # (grouping, group) -> clinic codes, the total included
        self.index = {code: i for i, code in enumerate(clinics)}
        self.variables = 2 * len(clinics)

    def value(self, measure: str, key: tuple[str, str]) -> int:
        rows = [self.stored[("clinic", c)] for c in self.members[key]]
        cases = sum(r.observed for r in rows)
        units = sum(r.procedures for r in rows)
        return {"O": cases, "n": units, "D": units - cases}[measure]

    def cells(self) -> list[sup.Cell]:
        out = []
        for key, codes in self.members.items():
            cases = frozenset(2 * self.index[c] for c in codes)
            non_cases = frozenset(2 * self.index[c] + 1 for c in codes)
            tier = _tier(key)
            out.append(sup.Cell(("O", *key), cases, self.value("O", key), tier=tier))
            out.append(sup.Cell(("n", *key), cases | non_cases, self.value("n", key), tier=tier))
            out.append(sup.Cell(("D", *key), non_cases, self.value("D", key), printed=False, tier=tier))
        return out

    def expected(self, key: tuple[str, str]) -> float:
        return sum(self.stored[("clinic", c)].expected for c in self.members[key])

    def expected_blank(self, states: dict) -> set[tuple[str, str]]:
        """Return the rows whose expected cases are blanked: where the procedures are (expected cases would reveal
        how many), where the total observed is (expected cases sum to about it), and wherever else an expected count
        left printed would give a blanked one away by subtraction."""
        if states[("O", "total", TOTAL)] != sup.SHOWN:
            return set(self.members)
        if self.value("O", ("total", TOTAL)) == 0:
            # No case anywhere: every expected count is 0, whatever the procedures, and reveals nothing.
            return {key for key in self.members if states[("n", *key)] != sup.SHOWN}
        cells = [
            # A row whose observed count is hidden prints no SIR anyway: its expected count goes first.
            sup.Cell(
                ("E", *key),
                frozenset(self.index[c] for c in codes),
                self.expected(key),
                tier=-1 if states[("O", *key)] != sup.SHOWN else _tier(key),
            )
            for key, codes in self.members.items()
        ]
        relations = [[("E", *k[1:]) for k in r] for r in self.relations() if all(k[0] == "O" for k in r)]
        hidden = [("E", *key) for key in self.members if states[("n", *key)] != sup.SHOWN]
        try:
            blank = sup.protect_amounts(
                cells, relations, variables=len(self.index), hidden=hidden, known=[("E", "total", TOTAL)]
            )
        except sup.Unprotectable:
            return set(self.members)  # blank every expected count of this outcome, the total's too
        return {key[1:] for key in blank}

    def relations(self) -> list[list[tuple]]:
        """Return every "sum = parts" the tables print: procedures = cases + non-cases in each row; the total =
        the clinics = the countries = the GMP groups; each country and GMP group = its clinics."""
        out = [[("n", *key), ("O", *key), ("D", *key)] for key in self.members]
        clinics = [k for k in self.members if k[0] == "clinic"]
        groupings = sorted({k[0] for k in self.members} - {"clinic", "total"})
        for measure in ("O", "n", "D"):
            out.append([(measure, "total", TOTAL), *((measure, *k) for k in clinics)])
            for grouping in groupings:
                groups = [k for k in self.members if k[0] == grouping]
                out.append([(measure, "total", TOTAL), *((measure, *k) for k in groups)])
                for k in groups:
                    out.append([(measure, *k), *((measure, "clinic", c) for c in self.members[k])])
        return out


def _tier(key: tuple[str, str]) -> int:
    """Return the order in which rows give up a cell: country and GMP rows first, then the total, then a clinic's."""
    return {"clinic": 2, "total": 1}.get(key[0], 0)


def _members(clinic_rows: list[str], country_of: dict, gmp_of: dict, groupings: tuple[str, ...]):
    members: dict[tuple[str, str], list[str]] = {("total", TOTAL): list(clinic_rows)}
    for code in clinic_rows:
        members[("clinic", code)] = [code]
        if "country" in groupings:
            members.setdefault(("country", country_of[code]), []).append(code)
        if "gmp" in groupings:
            members.setdefault(("gmp", gmp_of[code]), []).append(code)
    return members


def _consistent(grouping: str, by_key: dict, outcomes: list[str], of: dict) -> bool:
    """Return True when every stored row of ``grouping`` is the sum of its clinics as the registry places them now
    (a clinic moved to another country since the run would make the margins disagree: that table is left out)."""
    for outcome in outcomes:
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (o, g, group), row in by_key.items():
            if o == outcome and g == "clinic":
                sums[of.get(group)][0] += row.procedures
                sums[of.get(group)][1] += row.observed
        stored = {
            group: [row.procedures, row.observed]
            for (o, g, group), row in by_key.items()
            if (o, g) == (outcome, grouping)
        }
        if None in sums or stored != dict(sums):
            return False
    return True


def _states(problems: dict[str, _Outcome]) -> dict[str, dict]:
    """Return each outcome's cell states, hiding a group's procedures wherever another outcome hides the same number."""
    forced: dict[str, set] = {o: set() for o in problems}
    while True:
        states = {
            o: sup.protect(p.cells(), p.relations(), variables=p.variables, forced=forced[o])
            for o, p in problems.items()
        }
        changed = False
        for o, p in problems.items():
            for key in p.members:
                if states[o][("n", *key)] == sup.SHOWN:
                    continue
                for other, q in problems.items():
                    if (
                        other != o
                        and states[other][("n", *key)] == sup.SHOWN
                        and q.value("n", key) == p.value("n", key)
                    ):
                        forced[other].add(("n", *key))
                        changed = True
        if not changed:
            return states


def _count(state: str, value: int):
    if state == sup.SHOWN:
        return value
    return sup.SMALL if state == sup.PRIMARY else None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _row(problem: _Outcome, states: dict, key: tuple[str, str], expected_shown: bool) -> dict:
    grouping, group = key
    stored = None if grouping == "total" else problem.stored.get(key)
    expected = problem.expected(key)
    # The SIR, its interval and the flag follow from observed and expected: printed only when both are.
    sir_shown = expected_shown and states[("O", *key)] == sup.SHOWN and expected > 0
    row = {
        "grouping": grouping,
        "group": group,
        "label": GMP_LABELS.get(group, group) if grouping == "gmp" else ("Total" if grouping == "total" else group),
        "procedures": _count(states[("n", *key)], problem.value("n", key)),
        "observed": _count(states[("O", *key)], problem.value("O", key)),
        "expected": _round(expected) if expected_shown else None,
        "sir": None,
        "sir_ci_low": None,
        "sir_ci_high": None,
        "flag": None,
        "flag_text": None,
        "direction": None,
    }
    if sir_shown and stored is not None:
        flag = stored.flag or ""
        row.update(sir=_round(stored.sir), sir_ci_low=_round(stored.sir_ci_low), sir_ci_high=_round(stored.sir_ci_high))
        row.update(flag=flag, flag_text=flag_text(flag), direction=_direction(flag))
    elif sir_shown:
        row.update(sir=1.0)  # the total: observed = expected by construction
    return row


def build(publication: Publication, *, today: dt.date) -> dict:
    """Return the publication's tables (JSON-safe): clinics, countries and per outcome the comparison rows."""
    run = publication.run
    stored = list(RunProviderComparison.objects.filter(run=run).order_by("position"))
    by_key = {(r.outcome, r.grouping, r.group): r for r in stored}
    outcomes = [o for o in run.outcomes if any(k[0] == o for k in by_key)]
    clinic_codes = sorted({r.group for r in stored if r.grouping == "clinic"})
    records = {c.code: c for c in Clinic.objects.filter(code__in=clinic_codes)}
    country_of = {code: records[code].country for code in clinic_codes if code in records}
    gmp_of = {code: "true" if records[code].gmp_certified else "false" for code in clinic_codes if code in records}
    groupings = tuple(g for g, of in (("country", country_of), ("gmp", gmp_of)) if _consistent(g, by_key, outcomes, of))
    members = _members(clinic_codes, country_of, gmp_of, groupings)
    problems = {
        o: _Outcome(o, {(g, grp): r for (oo, g, grp), r in by_key.items() if oo == o}, members, clinic_codes)
        for o in outcomes
    }
    states = _states(problems)

    reference = "any" if "any" in outcomes else (outcomes[0] if outcomes else None)

    def follow_up(codes: list[str]) -> int | None:
        rows = [by_key[(reference, "clinic", c)] for c in codes] if reference else []
        return completeness(sum(r.followup_due or 0 for r in rows), sum(r.followup_completed or 0 for r in rows))

    def procedures(key: tuple[str, str]):
        return _count(states[reference][("n", *key)], problems[reference].value("n", key)) if reference else None

    def row(p: _Outcome, s: dict, key: tuple[str, str], blank: set) -> dict:
        return {**_row(p, s, key, key not in blank), "followup_completeness_percent": follow_up(members[key])}

    outcome_tables = []
    for o in outcomes:
        p, s = problems[o], states[o]
        blank = p.expected_blank(s)
        tables = {
            grouping: [row(p, s, key, blank) for key in members if key[0] == grouping]
            for grouping in ("clinic", *groupings)
        }
        outcome_tables.append(
            {
                "code": o,
                "label": OUTCOME_LABELS.get(o, o),
                "basis": p.stored[("clinic", clinic_codes[0])].basis if clinic_codes else "",
                "window": _window(run.outcome_definitions, o),
                "tables": tables,
                "total": row(p, s, ("total", TOTAL), blank),
            }
        )

    clinics = []
    for code in clinic_codes:
        c = records.get(code)
        expires = c.accreditation_expires_on if c else None
        clinics.append(
            {
                "code": code,
                "name": c.name if c else code,
                "city": c.city if c else "",
                "country": c.country if c else "",
                "gmp_certified": bool(c and c.gmp_certified),
                "accreditation_body": c.accreditation_body if c else "",
                "accreditation_expires_on": expires.isoformat() if expires else None,
                "accreditation_expired": bool(expires and expires < today),
                "procedures": procedures(("clinic", code)),
                "followup_completeness_percent": follow_up([code]),
            }
        )
    countries = [
        {
            "country": key[1],
            "clinics": members[key],
            "procedures": procedures(key),
            "followup_completeness_percent": follow_up(members[key]),
        }
        for key in members
        if key[0] == "country"
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "version": f"{SCHEMA_VERSION}+publication.{publication.pk}",
        "publication": publication.pk,
        "published_at": publication.published_at.isoformat(),
        "note": publication.note,
        "run": run.pk,
        "cutoff_on": run.cutoff_on.isoformat(),
        "as_of": today.isoformat(),
        "licence": LICENCE,
        "suppression_rule": sup.RULE_TEXT,
        "procedures_outcome": reference,
        "groupings": ["clinic", *groupings],
        "clinics": clinics,
        "countries": countries,
        "total": {"procedures": procedures(("total", TOTAL)), "followup_completeness_percent": follow_up(clinic_codes)},
        "outcomes": outcome_tables,
    }
