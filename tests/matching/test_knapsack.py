"""The knapsack bound (candidate rows priced, every other row a 0/1 knapsack): valid for any prices, never below the
optimum CP-SAT proves, at most the LP's from the LP's prices, and stronger than the LP where knapsacks bind."""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.gap import evaluate as evaluate_gap
from benchmarks.gap import generate_gap, prepared, scores_for, solve_plain
from matching.generators.generate import generate
from matching.input.instance import Policy
from matching.model.spec import objective_tiers
from matching.rules.prepare import prepare
from matching.solvers.colgen import first_columns, generate_columns
from matching.solvers.greedy import Pick
from matching.solvers.knapsack import Knapsacks, evaluate, forcing_costs, held_bound, knapsack_bound, knapsacks
from matching.solvers.large import CORE_PAIRS_PER_CANDIDATE, LnsStrategy, hold, knapsack_core
from matching.solvers.lns import solve_neighbourhood
from matching.solvers.matrix import KIND, RoundMatrix, build_matrix
from matching.solvers.objective import combined_values
from matching.solvers.strategies import Context, Deadline, Reporter


def _gap(kind: str, seed: int) -> tuple[RoundMatrix, RoundMatrix, np.ndarray, int]:
    """A small random GAP round: its matrix, the matrix with every job held placed, the score per column, and the
    best score CP-SAT proves (every job placed)."""
    problem = generate_gap(kind, 3 + seed % 3, 9 + seed % 5, seed=seed)  # type: ignore[arg-type]
    scores, shift = scores_for(problem, "min")
    prep = prepared(problem, scores, Policy(time_limit_s=5, workers=1))
    m = build_matrix(prep)
    held = hold(m, np.ones(len(prep.pairs), dtype=np.int64), problem.jobs)
    plain = solve_plain(problem, "min", time_limit=10, workers=1)
    assert plain.status == "OPTIMAL" and plain.objective is not None
    return m, held, held.objective(prep.scores.total), problem.jobs * shift - plain.objective


def _gap_knapsacks(kind: str, seed: int) -> tuple[RoundMatrix, np.ndarray, int, Knapsacks]:
    """`_gap`'s held matrix, score per column and best score, with its knapsack relaxation."""
    _, held, c, best = _gap(kind, seed)
    ks = knapsacks(held)
    assert ks is not None
    return held, c, best, ks


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("kind", ["d", "e"])
def test_any_prices_bound_the_optimum_of_a_random_gap(kind: str, seed: int) -> None:
    held, c, best, ks = _gap_knapsacks(kind, seed)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        u = rng.normal(0, float(np.abs(c).max()), size=len(ks.priced))
        value, _ = evaluate(ks, c, u)
        assert value >= best - 1e-6
    found = knapsack_bound(held, c, np.zeros(len(ks.priced)), float(best), seconds=5)
    assert found is not None and found.bound >= best - 1e-6


@pytest.mark.parametrize("seed", range(12))
def test_from_the_lp_prices_the_bound_lies_between_the_optimum_and_the_lp(seed: int) -> None:
    _, held, c, best = _gap("d", seed)
    lp, _, converged, _ = generate_columns(held, c, first_columns(held), time.monotonic() + 30, tolerance=1e-9)
    assert lp.ok and converged
    rows = held.kind == KIND["candidate"]
    found = knapsack_bound(held, c, lp.price[rows], float(best), seconds=5)
    assert found is not None
    assert best - 1e-6 <= found.bound <= lp.value + 1e-6


def test_the_knapsacks_close_part_of_the_lp_gap() -> None:
    # Type D, 4 agents x 30 jobs: the LP of the weighted tiers leaves a gap that the budgets' integrality closes in
    # part, starting from that LP's prices with every job held placed (as the strategy does).
    problem = generate_gap("d", 4, 30, seed=5)
    scores, shift = scores_for(problem, "min")
    prep = prepared(problem, scores, Policy(time_limit_s=5, workers=1))
    m = build_matrix(prep)
    full = m.objective(combined_values(prep, objective_tiers(prep)))
    lp, _, _, _ = generate_columns(m, full, first_columns(m), time.monotonic() + 30, tolerance=1e-9)
    plain = solve_plain(problem, "min", time_limit=20, workers=1)
    assert lp.ok and plain.status == "OPTIMAL" and plain.assignment is not None and plain.objective is not None
    best = problem.jobs * shift - plain.objective
    held = hold(m, np.ones(len(prep.pairs), dtype=np.int64), problem.jobs)
    c = held.objective(prep.scores.total)
    pair_of = {(int(j), int(a)): k for k, (j, a) in enumerate(zip(prep.pairs.cand, prep.pairs.offer, strict=True))}
    picks = [Pick(pair_of[j, a], a, pair_of[j, a]) for j, a in enumerate(plain.assignment)]
    incumbent = held.columns_of(picks)
    assert held.violation(incumbent) == 0 and c @ incumbent == best
    found = held_bound(held, held.objective(combined_values(prep, objective_tiers(prep))), c, lp.price, incumbent, 5)
    assert found is not None
    bound = found.bound
    lp_score = lp.value - problem.jobs * (full.max() - c.max())  # the weighted LP less the placements' weight
    assert best - 1e-6 <= bound < lp_score - 1


@pytest.mark.parametrize("seed", range(6))
def test_without_a_held_tier_the_bound_holds_for_the_weighted_objective(seed: int) -> None:
    m, _, _, _ = _gap("e", seed)
    c = m.objective(combined_values(m.prep, objective_tiers(m.prep)))
    everything = np.ones(m.n_cols, dtype=bool)
    proof: list[bool] = []
    found = solve_neighbourhood(m, c, everything, np.zeros(m.n_cols), 10, 0, 1, proof)
    assert proof == [True] and found is not None
    result = knapsack_bound(m, c, np.zeros(int((m.kind == KIND["candidate"]).sum())), float(c @ found), seconds=5)
    assert result is not None and result.bound >= float(c @ found) - 1e-6


def test_a_round_whose_budgets_are_no_small_knapsack_gets_no_bound() -> None:
    # Budgets in kronor: the tables would not fit, and dropping the budgets would leave a bound below the LP's.
    prep = prepare(generate(30, 12, seed=3, binding_budgets=True))
    assert knapsacks(build_matrix(prep)) is None


@pytest.mark.parametrize("seed", range(3))
def test_from_an_early_master_the_first_bound_is_no_worse_than_the_masters(seed: int) -> None:
    # The strategy stops column generation early; its candidate prices alone then start far above the bound the
    # master proves with its budget prices. The start charges each candidate what the master's bound charges it.
    problem = generate_gap("e", 10, 150, seed=seed)
    scores, _ = scores_for(problem, "min")
    prep = prepared(problem, scores, Policy(time_limit_s=5, workers=1))
    m = build_matrix(prep)
    tiers = objective_tiers(prep)
    full = m.objective(combined_values(prep, tiers))
    loose = 1e-3 * float(prep.scores.total.sum())
    lp, bound, converged, _ = generate_columns(m, full, first_columns(m), time.monotonic() + 30, tolerance=loose)
    assert lp.ok and converged
    held = hold(m, np.ones(len(prep.pairs), dtype=np.int64), problem.jobs)
    c = held.objective(prep.scores.total)
    first = held_bound(held, held.objective(combined_values(prep, tiers)), c, lp.price, np.zeros(held.n_cols), 0)
    weight = float(full.max() - c.max())
    assert first is not None and first.bound + problem.jobs * weight <= bound + 1e-6


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("kind", ["d", "e"])
def test_forcing_costs_are_what_the_bound_loses_when_a_column_is_forced(kind: str, seed: int) -> None:
    # Forcing a column: its value raised so far that every knapsack that can hold it takes it, then taken off again.
    held, c, best, ks = _gap_knapsacks(kind, seed)
    u = knapsack_bound(held, c, np.zeros(len(ks.priced)), float(best), seconds=5, steps=20).price  # type: ignore[union-attr]
    u = u + np.random.default_rng(seed).normal(0, 3, len(u))  # any prices: the costs hold at each
    costs = forcing_costs(ks, c, u)
    assert costs is not None and (costs >= 0).all()
    base, taken = evaluate(ks, c, u)
    assert np.allclose(costs[taken], 0, atol=1e-6)
    big = 1e6
    for col in range(held.n_cols):
        raised = c.copy()
        raised[col] += big
        forced, took = evaluate(ks, raised, u)
        if np.isinf(costs[col]):
            assert not took[col]  # too heavy for its knapsack: no solution holds it
        else:
            assert took[col] and costs[col] == pytest.approx(base - (forced - big), abs=1e-6)


def test_the_knapsack_core_is_small_and_holds_the_incumbent_and_a_pair_of_every_job() -> None:
    problem = generate_gap("d", 6, 60, seed=4)
    prep = prepared(problem, scores_for(problem, "min")[0], Policy(time_limit_s=5, workers=1))
    held = hold(build_matrix(prep), np.ones(len(prep.pairs), dtype=np.int64), problem.jobs)
    c = held.objective(prep.scores.total)
    plain = solve_plain(problem, "min", time_limit=2, workers=1)
    assert plain.assignment is not None and plain.objective is not None
    pair_of = {(int(j), int(a)): k for k, (j, a) in enumerate(zip(prep.pairs.cand, prep.pairs.offer, strict=True))}
    incumbent = held.columns_of([Pick(pair_of[j, a], a, pair_of[j, a]) for j, a in enumerate(plain.assignment)])
    prices = np.zeros(int((held.kind == KIND["candidate"]).sum()))
    bound = knapsack_bound(held, c, prices, float(c @ incumbent), seconds=5)
    assert bound is not None
    core = knapsack_core(held, c, bound, incumbent)
    assert core is not None
    pairs = np.flatnonzero(held.pair_values(core.astype(np.float64)) > 0.5)
    assert len(pairs) <= (CORE_PAIRS_PER_CANDIDATE + 1) * problem.jobs < len(prep.pairs)
    assert set(prep.pairs.cand[pairs].tolist()) == set(range(problem.jobs))
    assert set(np.flatnonzero(held.pair_values(incumbent) > 0.5).tolist()) <= set(pairs.tolist())
    # CP-SAT on the core from the incumbent: never worse, every capacity kept.
    found = solve_neighbourhood(held, c, core, incumbent, 5, 0, 1)
    better = incumbent if found is None else found
    assert held.violation(better) == 0 and c @ better >= c @ incumbent


def test_lns_on_a_gap_round_searches_the_knapsack_core_and_keeps_every_capacity() -> None:
    problem = generate_gap("d", 10, 120, seed=2)  # 1,200 columns: above the size searched whole
    prep = prepared(problem, scores_for(problem, "min")[0], Policy(time_limit_s=6, workers=2))
    phases: list[str] = []
    started = time.monotonic()
    ctx = Context(
        prep,
        objective_tiers(prep),
        Deadline(started, 6.0),
        Reporter(lambda p: phases.append(str(p["phase"])), started, 0.0),
    )
    outcome = LnsStrategy().run(ctx)
    assert "search (knapsack core)" in phases
    assignment = [0] * problem.jobs
    for pick in outcome.picks:
        assignment[int(prep.pairs.cand[pick.pair])] = int(prep.pairs.offer[pick.pair])
    assert len(outcome.picks) == problem.jobs and evaluate_gap(problem, assignment) is not None
