"""public.suppression on small hand-made tables: primary cells, the margin leak and its repair, zero."""

from __future__ import annotations

import numpy as np

from public import suppression as sup


def _table(values: dict[str, int]):
    """Return cells and relations of a one-column table of clinics A.. with a total (unknown i = clinic i)."""
    names = list(values)
    cells = [sup.Cell(name, frozenset({i}), v, tier=2) for i, (name, v) in enumerate(values.items())]
    cells.append(sup.Cell("total", frozenset(range(len(names))), sum(values.values()), tier=1))
    return cells, [["total", *names]]


def test_a_count_from_1_to_10_is_small_and_zero_is_not():
    assert [sup.is_small(v) for v in (0, 1, 10, 11)] == [False, True, True, False]


def test_a_lone_small_cell_would_be_recovered_from_the_total_so_another_is_hidden():
    cells, relations = _table({"A": 5, "B": 20, "C": 30})
    # Primary suppression alone: total - B - C = A.
    known = sup._Problem(cells, relations, 3)
    assert known.recovered() == [0]
    states = sup.protect(cells, relations, variables=3)
    assert states["A"] == sup.PRIMARY
    assert sorted(k for k, s in states.items() if s == sup.COMPLEMENTARY) == ["total"]  # the total before a clinic
    problem = sup._Problem(cells, relations, 3)
    problem.complementary = {problem.class_of["total"]}
    assert problem.recovered() == []


def test_a_clinic_alone_in_its_group_shares_its_cell_with_the_group_row():
    cells = [
        sup.Cell(("clinic", "P"), frozenset({0}), 4),
        sup.Cell(("country", "PT"), frozenset({0}), 4),
        sup.Cell(("clinic", "Q"), frozenset({1}), 40),
        sup.Cell(("country", "ES"), frozenset({1}), 40),
        sup.Cell(("total", "ALL"), frozenset({0, 1}), 44),
    ]
    relations = [
        [("total", "ALL"), ("clinic", "P"), ("clinic", "Q")],
        [("total", "ALL"), ("country", "PT"), ("country", "ES")],
    ]
    states = sup.protect(cells, relations, variables=2)
    assert states[("clinic", "P")] == states[("country", "PT")] == sup.PRIMARY
    # total - Q = P: one of them is blanked (Q, with ES: the total goes first only among margins and totals).
    assert (states[("total", "ALL")], states[("clinic", "Q")]).count(sup.SHOWN) == 1
    assert states[("clinic", "Q")] == states[("country", "ES")]


def test_zero_is_shown_when_nothing_depends_on_it():
    cells, relations = _table({"A": 0, "B": 20, "C": 30})
    assert set(sup.protect(cells, relations, variables=3).values()) == {sup.SHOWN}


def test_the_integer_range_of_a_cell_is_what_the_printed_cells_allow():
    cells, relations = _table({"A": 5, "B": 20, "C": 30})
    problem = sup._Problem(cells, relations, 3)
    problem.complementary = {problem.class_of["B"]}
    low, high = sup.integer_range(np.array([1.0, 0, 0]), problem.constraints(), 3)
    assert (low, high) == (1.0, 10.0)  # A + B = 25 with A in 1..10 and B >= 11
