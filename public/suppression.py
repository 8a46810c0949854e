"""Small-count suppression for published tables (DESIGN 2b "Publication"), primary and complementary.

The published tables of one outcome are sums over the same unknowns: each clinic's cases c_g
and non-cases d_g. A clinic row publishes cases (c_g) and procedures (c_g + d_g); a country,
a GMP group and the total publish the same sums over their clinics. So every published count
is a *cell*: a set of unknowns (its support) and its value. Non-cases (procedures - cases) are
never printed but follow from two printed cells, so they are cells too ("derived").

- Primary suppression: a cell with a value from 1 to 10 is shown as "<11" (a derived one can
  only be hidden by hiding a printed cell it follows from).
- Complementary suppression: no hidden cell may be recoverable from the printed ones. First the
  classic rule, to a fixed point: every relation "margin = sum of its parts" (and procedures =
  cases + non-cases) with exactly one hidden cell gets a second one, the smallest printed cell
  of 11 or more. Then an audit that does what an attacker would: an integer program
  (scipy.optimize.milp) minimises and maximises every small cell over all non-negative integer
  tables that agree with what is printed, that "<11" means 1 to 10, and that a blank
  complementary cell holds 11 or more (the branch the truth is in: a cell is blanked only when
  it is not 1..10, so the audit is at least as strong as the reader). A small cell whose minimum
  equals its maximum is recovered: one more printed cell that shares unknowns with it is hidden
  (smallest first) and the audit runs again, until none is recovered.

Cells with the same support are one cell (a clinic alone in its country has one cell for both
rows): they are shown or hidden together. Zero is printed (0 is not 1 to 10) unless hiding it is
what protects another cell.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

SMALL_MIN = 1
SMALL_MAX = 10
SMALL = "<11"
# The first value printed in full; complementary cells are chosen from these.
SAFE_MIN = SMALL_MAX + 1

SHOWN = "shown"
PRIMARY = "small"  # 1..10, printed "<11"
COMPLEMENTARY = "hidden"  # printed blank: would let a small cell be recovered

RULE_TEXT = (
    'Counts from 1 to 10 are shown as "<11", and the figures derived from them (expected cases, SIR, its '
    "interval, the flag, percentages) are left blank. Further counts are left blank where printing them would let "
    "a hidden count be worked out by subtraction from totals, country or GMP subtotals or other published cells "
    "(complementary suppression, checked by integer programming). A blank count is not small: it protects another. "
    "Zero is shown."
)


def is_small(value: int) -> bool:
    """Return True for a count that may not be published (1 to 10)."""
    return SMALL_MIN <= value <= SMALL_MAX


@dataclass(frozen=True)
class Cell:
    """A published (or derivable) count: the sum of the unknowns in ``support``."""

    key: Hashable
    support: frozenset[int]
    value: int
    printed: bool = True
    # Which cells to blank first when one must be: lower tiers first (margins before the clinics' own rows).
    tier: int = 0


class _Problem:
    """The cells of one set of tables merged by support, with their relations and the state of each."""

    def __init__(self, cells: Sequence[Cell], relations: Iterable[Sequence[Hashable]], variables: int):
        self.variables = variables
        self.class_of: dict[Hashable, int] = {}
        self.supports: list[frozenset[int]] = []
        self.values: list[int] = []
        self.printed: list[bool] = []
        self.tiers: list[int] = []
        by_support: dict[frozenset[int], int] = {}
        for cell in cells:
            index = by_support.get(cell.support)
            if index is None:
                index = by_support[cell.support] = len(self.supports)
                self.supports.append(cell.support)
                self.values.append(cell.value)
                self.printed.append(cell.printed)
                self.tiers.append(cell.tier)
            elif self.values[index] != cell.value:
                raise ValueError(f"Cells with one support disagree: {cell.key!r}.")
            else:
                self.printed[index] = self.printed[index] or cell.printed
                self.tiers[index] = max(self.tiers[index], cell.tier)
            self.class_of[cell.key] = index
        self.relations = [sorted({self.class_of[k] for k in members}) for members in relations]
        self.sensitive = [is_small(v) for v in self.values]
        self.primary = {i for i, p in enumerate(self.printed) if p and self.sensitive[i]}
        self.complementary: set[int] = set()

    def hidden(self, i: int) -> bool:
        return not self.printed[i] or i in self.primary or i in self.complementary

    def guarded(self, i: int) -> bool:
        """Return True for a hidden cell that must stay unrecoverable (small, or blanked to protect one)."""
        return i in self.primary or i in self.complementary or (not self.printed[i] and self.sensitive[i])

    def hide_one(self, candidates: Iterable[int]) -> bool:
        """Hide a printed, shown candidate: 11 or more first, then the lowest tier, then the smallest value;
        return False if there is none."""
        shown = [i for i in candidates if self.printed[i] and not self.hidden(i)]
        if not shown:
            return False
        best = min(shown, key=lambda i: (self.values[i] < SAFE_MIN, self.tiers[i], self.values[i]))
        self.complementary.add(best)
        return True

    def margins_to_fixed_point(self) -> None:
        changed = True
        while changed:
            changed = False
            for members in self.relations:
                hidden = [i for i in members if self.hidden(i)]
                if len(hidden) == 1 and self.guarded(hidden[0]) and self.hide_one(members):
                    changed = True

    def _vector(self, i: int) -> np.ndarray:
        row = np.zeros(self.variables)
        row[list(self.supports[i])] = 1.0
        return row

    def constraints(self) -> LinearConstraint | None:
        """Return what a reader knows: printed values, "<11" = 1..10, blank = 11 or more (its true branch)."""
        rows, low, high = [], [], []
        for i, value in enumerate(self.values):
            if not self.printed[i]:
                continue
            rows.append(self._vector(i))
            if i in self.primary:
                low.append(SMALL_MIN), high.append(SMALL_MAX)
            elif i in self.complementary:
                (
                    low.append(SAFE_MIN if value >= SAFE_MIN else value),
                    high.append(np.inf if value >= SAFE_MIN else value),
                )
            else:
                low.append(value), high.append(value)
        if not rows:
            return None
        return LinearConstraint(np.array(rows), np.array(low, dtype=float), np.array(high, dtype=float))

    def recovered(self) -> list[int]:
        """Return the small cells whose value the printed cells pin down (min = max over integer tables)."""
        known = self.constraints()
        out = []
        for i in range(len(self.values)):
            if not self.sensitive[i]:
                continue
            low, high = integer_range(self._vector(i), known, self.variables)
            if high - low < 0.5:
                out.append(i)
        return out

    def protect(self) -> None:
        while True:
            self.margins_to_fixed_point()
            recovered = self.recovered()
            if not recovered:
                return
            target = recovered[0]
            sharing = [i for i in range(len(self.values)) if self.supports[i] & self.supports[target]]
            if not self.hide_one(sharing) and not self.hide_one(range(len(self.values))):
                raise RuntimeError("Nothing left to hide, yet a small cell is recoverable.")  # cannot happen


def integer_range(objective: np.ndarray, known: LinearConstraint | None, variables: int) -> tuple[float, float]:
    """Return (min, max) of ``objective @ x`` over non-negative integer x meeting ``known`` (max may be inf)."""
    integrality = np.ones(variables)
    bounds = Bounds(np.zeros(variables), np.full(variables, np.inf))
    constraints = [known] if known is not None else []
    low = milp(objective, integrality=integrality, bounds=bounds, constraints=constraints)
    high = milp(-objective, integrality=integrality, bounds=bounds, constraints=constraints)
    if low.status != 0:
        raise RuntimeError(f"The published cells admit no table: {low.message}")
    return float(low.fun), (np.inf if high.status != 0 else float(-high.fun))


def protect(
    cells: Sequence[Cell],
    relations: Iterable[Sequence[Hashable]],
    *,
    variables: int,
    forced: Iterable[Hashable] = (),
) -> dict[Hashable, str]:
    """Return the state of every cell key: SHOWN, PRIMARY ("<11") or COMPLEMENTARY (blank).

    ``forced`` cells start hidden (blanked to match another table, where the same count is hidden).
    """
    problem = _Problem(cells, relations, variables)
    for key in forced:
        index = problem.class_of[key]
        if index not in problem.primary and problem.printed[index]:
            problem.complementary.add(index)
    problem.protect()
    states = {}
    for key, index in problem.class_of.items():
        if index in problem.primary:
            states[key] = PRIMARY
        elif index in problem.complementary or not problem.printed[index]:
            states[key] = COMPLEMENTARY
        else:
            states[key] = SHOWN
    return states


class Unprotectable(Exception):
    """The cells that must stay printed determine a cell that must be hidden."""


def protect_amounts(
    cells: Sequence[Cell],
    relations: Iterable[Sequence[Hashable]],
    *,
    variables: int,
    hidden: Iterable[Hashable],
    known: Iterable[Hashable] = (),
) -> set[Hashable]:
    """Return the keys to blank among additive, non-negative amounts (expected cases): at least ``hidden``, and
    enough more that no blanked amount follows from the printed ones (a linear programme over the reals).

    ``known`` cells are printed whatever happens (the expected total, about the printed observed total),
    so they are never the ones blanked. The amounts need not be whole numbers.
    """
    problem = _Problem([Cell(c.key, c.support, 0, True, c.tier) for c in cells], relations, variables)
    values = {problem.class_of[c.key]: float(c.value) for c in cells}
    fixed = {problem.class_of[k] for k in known}
    blank = {problem.class_of[k] for k in hidden} - fixed
    size = len(problem.supports)

    def hide(candidates: Iterable[int]) -> bool:
        shown = [i for i in candidates if i not in blank and i not in fixed]
        if not shown:
            return False
        blank.add(min(shown, key=lambda i: (problem.tiers[i], values[i])))
        return True

    while True:
        changed = True
        while changed:
            changed = False
            for members in problem.relations:
                if len([i for i in members if i in blank]) == 1 and hide(members):
                    changed = True
        rows = [problem._vector(i) for i in range(size) if i not in blank]
        rhs = [values[i] for i in range(size) if i not in blank]
        pinned = None
        for i in sorted(blank):
            objective = problem._vector(i)
            low = linprog(objective, A_eq=np.array(rows) if rows else None, b_eq=rhs or None, bounds=(0, None))
            high = linprog(-objective, A_eq=np.array(rows) if rows else None, b_eq=rhs or None, bounds=(0, None))
            if low.status == 0 and high.status == 0 and (-high.fun - low.fun) <= 1e-6 * max(1.0, abs(low.fun)):
                pinned = i
                break
        if pinned is None:
            return {key for key, i in problem.class_of.items() if i in blank}
        sharing = [i for i in range(size) if problem.supports[i] & problem.supports[pinned]]
        if not hide(sharing) and not hide(range(size)):
            # Only the known cells are left and they pin it (e.g. one group holds the whole total): the caller
            # must leave the known ones out too.
            raise Unprotectable("A blanked amount follows from the known cells alone.")
