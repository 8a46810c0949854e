"""An attacker reads the published page, its CSV and its JSON and tries to recover every hidden count.

The registry (tests.public.conftest) has a small clinic alone in its country (C-POR: 6 procedures, 2
infections), so the country row, the not-GMP margin and the total are real ways in. The attack: first
every subtraction, to a fixed point (a margin minus its printed parts, procedures minus cases); then an
integer programme per hidden cell (scipy.optimize.milp) over every table the three downloads print, at
once and across outcomes, generous to the attacker: "<11" means 1 to 10, a blank count is known to be 11
or more (its true branch), and a group's procedures are assumed equal across outcomes wherever they are.
Every hidden cell must keep at least two possible values. Then the expected cases: a blanked one must
not follow from the printed ones and the total (they sum to the observed total).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from django.core.management import call_command
from django.db import transaction
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from public.services import publication_create
from reports.models import RunProviderComparison
from reports.services import incidence_run_execute, incidence_run_start
from tests.public.conftest import CUTOFF
from tests.public.readers import csv_counts, csv_records, html_counts, json_counts, read_json


def _published(client, publication):
    html = client.get(f"/public/{publication.pk}/").content.decode()
    data = read_json(client.get(f"/public/{publication.pk}/comparison.json").content)
    _, rows = csv_records(client.get(f"/public/{publication.pk}/comparison.csv").content)
    return html, data, rows


def _truth(run) -> dict:
    return {(r.outcome, r.grouping, r.group): r for r in RunProviderComparison.objects.filter(run=run)}


class Attack:
    """Unknowns c (cases) and d (non-cases) per outcome and clinic; what the reader knows about their sums."""

    def __init__(self, data: dict, printed: dict, truth: dict):
        self.outcomes = [o["code"] for o in data["outcomes"]]
        self.clinics = [c["code"] for c in data["clinics"]]
        self.members = {("total", "ALL"): self.clinics}
        for c in data["clinics"]:
            self.members[("clinic", c["code"])] = [c["code"]]
            self.members.setdefault(("country", c["country"]), []).append(c["code"])
            self.members.setdefault(("gmp", "true" if c["gmp_certified"] else "false"), []).append(c["code"])
        self.printed = printed
        self.truth = truth
        self.size = 2 * len(self.outcomes) * len(self.clinics)

    def var(self, outcome: str, clinic: str, kind: int) -> int:
        return 2 * (self.outcomes.index(outcome) * len(self.clinics) + self.clinics.index(clinic)) + kind

    def vector(self, outcome: str, key: tuple, measure: str) -> np.ndarray:
        row = np.zeros(self.size)
        kinds = {"O": (0,), "n": (0, 1), "D": (1,)}[measure]
        for clinic in self.members[key]:
            for kind in kinds:
                row[self.var(outcome, clinic, kind)] = 1
        return row

    def true_value(self, outcome: str, key: tuple, measure: str) -> int:
        rows = [self.truth[(outcome, "clinic", c)] for c in self.members[key]]
        o, n = sum(r.observed for r in rows), sum(r.procedures for r in rows)
        return {"O": o, "n": n, "D": n - o}[measure]

    def knowledge(self) -> LinearConstraint:
        rows, low, high = [], [], []
        for (outcome, grouping, group), (n, o) in self.printed.items():
            for measure, value in (("n", n), ("O", o)):
                rows.append(self.vector(outcome, (grouping, group), measure))
                if value == "<11":
                    low.append(1), high.append(10)
                elif value is None:  # blank: the attacker is told the truth's branch, 0 or 11 and more
                    true = self.true_value(outcome, (grouping, group), measure)
                    low.append(0 if true == 0 else 11), high.append(0 if true == 0 else np.inf)
                else:
                    low.append(value), high.append(value)
        # A group's procedures are the same number in every outcome where they truly are.
        for key in self.members:
            for a in self.outcomes:
                for b in self.outcomes:
                    if a < b and self.true_value(a, key, "n") == self.true_value(b, key, "n"):
                        rows.append(self.vector(a, key, "n") - self.vector(b, key, "n"))
                        low.append(0), high.append(0)
        return LinearConstraint(np.array(rows), np.array(low, float), np.array(high, float))

    def subtractions(self) -> dict:
        """Return the cells recovered by repeated subtraction (margin - printed parts; n - O; n - D)."""
        known = {}
        for (outcome, grouping, group), (n, o) in self.printed.items():
            for measure, value in (("n", n), ("O", o)):
                if isinstance(value, int):
                    known[(outcome, grouping, group, measure)] = value
        changed = True
        while changed:
            changed = False
            for outcome in self.outcomes:
                for key, codes in self.members.items():
                    parts = {m: known.get((outcome, *key, m)) for m in ("n", "O", "D")}
                    if sum(v is None for v in parts.values()) == 1:
                        missing = next(m for m, v in parts.items() if v is None)
                        n, o, d = parts["n"], parts["O"], parts["D"]
                        known[(outcome, *key, missing)] = {"n": (o or 0) + (d or 0), "O": (n or 0) - (d or 0)}.get(
                            missing, (n or 0) - (o or 0)
                        )
                        changed = True
                    if key[0] == "clinic":
                        continue
                    for measure in ("n", "O", "D"):
                        children = [(outcome, "clinic", c, measure) for c in codes]
                        if key == ("total", "ALL"):
                            continue
                        unknown = [c for c in children if c not in known]
                        parent = (outcome, *key, measure)
                        if parent in known and len(unknown) == 1:
                            known[unknown[0]] = known[parent] - sum(known[c] for c in children if c in known)
                            changed = True
                    # the total = its clinics = its countries = its GMP groups
                    for grouping in ("clinic", "country", "gmp"):
                        for measure in ("n", "O", "D"):
                            parts_ = [(outcome, *k, measure) for k in self.members if k[0] == grouping]
                            total = (outcome, "total", "ALL", measure)
                            unknown = [p for p in [*parts_, total] if p not in known]
                            if len(unknown) == 1:
                                value = known.get(total, 0) if unknown[0] != total else 0
                                if unknown[0] == total:
                                    known[total] = sum(known[p] for p in parts_)
                                else:
                                    known[unknown[0]] = value - sum(known[p] for p in parts_ if p in known)
                                changed = True
        return known


def attack(client, publication, run) -> tuple[Attack, list, list, list]:
    """Return the attack, the hidden cells it tried, those recovered by subtraction and those pinned by the ILP."""
    html, data, csv_rows = _published(client, publication)
    printed = json_counts(data)
    assert csv_counts(csv_rows) == printed
    assert html_counts(html, [o["code"] for o in data["outcomes"]], data["groupings"]) == printed
    attack = Attack(data, printed, _truth(run))
    targets = []
    for (outcome, grouping, group), (n, o) in printed.items():
        for measure, value in (("n", n), ("O", o)):
            if not isinstance(value, int):
                targets.append((outcome, (grouping, group), measure))
        true_d = attack.true_value(outcome, (grouping, group), "D")
        if 1 <= true_d <= 10:
            targets.append((outcome, (grouping, group), "D"))
    recovered = attack.subtractions()
    by_subtraction = [t for t in targets if (t[0], *t[1], t[2]) in recovered]
    knowledge = attack.knowledge()
    integers, bounds = np.ones(attack.size), Bounds(np.zeros(attack.size), np.full(attack.size, np.inf))
    pinned = []
    for outcome, key, measure in targets:
        objective = attack.vector(outcome, key, measure)
        low = milp(objective, integrality=integers, bounds=bounds, constraints=[knowledge])
        high = milp(-objective, integrality=integers, bounds=bounds, constraints=[knowledge])
        assert low.status == 0, low.message
        true = attack.true_value(outcome, key, measure)
        assert low.fun <= true + 1e-6
        if high.status == 0 and -high.fun - low.fun < 0.5:
            pinned.append((outcome, key, measure, true))
    return attack, targets, by_subtraction, pinned


@pytest.mark.django_db
def test_no_hidden_count_can_be_recovered_from_the_page_and_its_downloads(public_run, root, client):
    publication = publication_create(actor=root, run=public_run, note="Attack")
    data = read_json(client.get(f"/public/{publication.pk}/comparison.json").content)
    printed = json_counts(data)
    # The margin attack is real here: C-POR is small and alone in Portugal.
    assert printed[("infection", "clinic", "C-POR")] == ("<11", "<11") == printed[("infection", "country", "PT")]
    _, targets, by_subtraction, pinned = attack(client, publication, public_run)
    assert len(targets) > 20
    assert (by_subtraction, pinned) == ([], [])
    print(f"\nsuppression attack (hand-built registry): {len(targets)} hidden cells tried, 0 recovered")


@pytest.fixture(scope="module")
def demo_run(django_db_setup, django_db_blocker):
    """The demo registry (intake.demo, 200 patients; with the hand-built clinics when public_run is also active)
    and a run of every outcome with the registry's windows."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("load_demo_data", patients=200, verbosity=0)
        run = incidence_run_start(actor=None, cutoff_on=CUTOFF, strata=["site"], outcomes=None, windows_mode="registry")
        yield incidence_run_execute(run_id=run.pk, task_id=f"demo-{run.pk}")
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_no_hidden_count_of_the_demo_registry_can_be_recovered(demo_run, root, client):
    publication = publication_create(actor=root, run=demo_run, note="Demo")
    found, targets, by_subtraction, pinned = attack(client, publication, demo_run)
    assert len(found.outcomes) == len(demo_run.outcomes) and len(found.clinics) >= 4
    assert len(targets) > 50
    assert (by_subtraction, pinned) == ([], [])
    print(f"\nsuppression attack (demo registry): {len(targets)} hidden cells tried, 0 recovered")


def expected_attack(data: dict) -> int:
    """Return how many blanked expected counts were tried; fail if one follows from the printed ones."""
    clinics = [c["code"] for c in data["clinics"]]
    tried = 0
    for outcome in data["outcomes"]:
        members = defaultdict(list)
        for c in data["clinics"]:
            for key in (("clinic", c["code"]), ("country", c["country"]), ("gmp", str(c["gmp_certified"]).lower())):
                members[key].append(c["code"])
        members[("total", "ALL")] = clinics
        rows = {(r["grouping"], r["group"]): r for t in outcome["tables"].values() for r in t}
        rows[("total", "ALL")] = outcome["total"]
        for key, row in rows.items():
            # Expected cases are printed only where the procedures are (they would reveal how many); the total's
            # is printed with the observed total it (nearly) equals.
            if key != ("total", "ALL") and (row["procedures"] is None or row["procedures"] == "<11"):
                assert row["expected"] is None, (outcome["code"], key)
        if outcome["total"]["observed"] is None or outcome["total"]["observed"] == "<11":
            continue
        if outcome["total"]["observed"] == 0:
            # No case anywhere: every expected count is 0 whatever the procedures; knowing one tells nothing.
            assert {r["expected"] for r in rows.values()} <= {0.0, None}
            continue

        def vector(key, members=members):
            return np.array([1.0 if c in members[key] else 0.0 for c in clinics])

        printed = [(vector(k), r["expected"]) for k, r in rows.items() if r["expected"] is not None]
        # Printed to 0.01: each printed sum is known to within half of that.
        a, b = np.array([p[0] for p in printed]), np.array([p[1] for p in printed])
        a_ub, b_ub = np.vstack([a, -a]), np.concatenate([b + 0.005, -(b - 0.005)])
        # The expected cases sum to at most the observed total (exactly, unless a stratum has no person-time).
        a_ub = np.vstack([a_ub, vector(("total", "ALL"))])
        b_ub = np.append(b_ub, float(outcome["total"]["observed"]) + 0.005)
        for key, row in rows.items():
            if row["expected"] is None:
                tried += 1
                low = linprog(vector(key), A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
                high = linprog(-vector(key), A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
                assert low.status == 0
                # Printed values are rounded to 0.01: recovered means known to within the rounding.
                assert high.status != 0 or -high.fun - low.fun > 0.05 * len(clinics), (outcome["code"], key)
    return tried


@pytest.mark.django_db
def test_no_blanked_expected_count_follows_from_the_printed_ones(public_run, demo_run, root, client):
    for name, run in (("hand-built", public_run), ("demo", demo_run)):
        _, data, _ = _published(client, publication_create(actor=root, run=run))
        tried = expected_attack(data)
        assert tried > 0
        print(f"\nexpected-cases attack ({name} registry): {tried} blanked expected counts tried, 0 recovered")
