"""Offer-group neighbourhoods and the search that spends its time on the kinds that pay, on GAP rounds and on
generated rounds with supervisors, budgets and unplaced candidates."""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.gap import generate_gap, prepared, scores_for, solve_gap
from matching.generators.generate import generate
from matching.input.instance import Policy
from matching.model.spec import objective_tiers
from matching.rules.prepare import prepare
from matching.solvers.colgen import first_columns, generate_columns
from matching.solvers.groups import affinity, choose_group, group_pairs, incumbent_offer
from matching.solvers.large import start_solution
from matching.solvers.lns import KINDS, attractive_pairs, search
from matching.solvers.matrix import RoundMatrix, build_matrix
from matching.solvers.objective import combined_values


def _round(m: RoundMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted values per pair, the LP's values and reduced profits, the attractive pairs, and the priced start."""
    values = combined_values(m.prep, objective_tiers(m.prep))
    c = m.objective(values)
    lp, _, _, _ = generate_columns(m, c, first_columns(m), time.monotonic() + 30)
    profit = c - m.a.T @ lp.price
    attractive = attractive_pairs(m, profit, lp.w, c, 0.02)
    w = m.columns_of(start_solution(m, values, lp.price, lp.w, attractive))
    return values, lp.w, profit, attractive, w


@pytest.mark.parametrize("seed", range(4))
def test_a_group_frees_every_pair_among_its_offers_of_the_candidates_placed_there(seed: int) -> None:
    problem = generate_gap("e", 8, 60, seed=seed)
    scores, _ = scores_for(problem, "min")
    m = build_matrix(prepared(problem, scores, Policy()))
    _, _, _, attractive, w = _round(m)
    at = incumbent_offer(m, w)
    assert (at >= 0).all()  # the start places every job
    links = affinity(m, at, attractive)
    assert (links != links.T).nnz == 0 and links.diagonal().sum() == 0
    free = choose_group(m, at, attractive, links, 150, np.random.default_rng(seed))
    pairs = m.prep.pairs
    group = np.zeros(problem.agents, dtype=bool)
    group[pairs.offer[free]] = True
    assert 2 <= group.sum() < problem.agents
    expected = group[pairs.offer] & group[at[pairs.cand]]
    assert (free == expected).all()
    assert (group_pairs(m, group, at, attractive) == expected).all()


@pytest.mark.parametrize("seed", range(3))
def test_the_search_improves_a_generated_round_and_keeps_every_row(seed: int) -> None:
    prep = prepare(generate(60, 25, seed=seed, binding_budgets=True))
    m = build_matrix(prep)
    values, w_lp, profit, _, w = _round(m)
    found, log = search(m, values, w, profit, w_lp, time.monotonic() + 3, seed=seed, workers=1)
    assert m.violation(found) <= 1e-6
    c = m.objective(values)
    assert c @ found >= c @ w
    assert set(log.tried) <= set(KINDS) and sum(log.tried.values()) >= len(KINDS)


def test_lns_on_a_gap_round_above_the_whole_size_keeps_every_capacity_and_a_valid_bound() -> None:
    # 10 x 120: 1,200 columns, above the size solved whole: the knapsack bound, then the neighbourhoods.
    problem = generate_gap("d", 10, 120, seed=1)
    result = solve_gap(problem, "min", time_limit=4, workers=1, method="lns")
    assert result.checked is True and result.objective is not None and result.bound is not None
    assert result.bound <= result.objective
