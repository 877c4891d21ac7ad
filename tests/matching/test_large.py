"""The large-scale strategies on small random rounds: the column-generation LP equals the full LP, every bound is
at least the exact optimum, LNS solutions verify and reach brute force's optimum, independent parts are found."""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.gap import GapProblem, generate_gap, prepared, scores_for
from matching.generators.generate import generate, generate_scale
from matching.input.instance import Instance
from matching.model.spec import objective_tiers
from matching.reports.verify import verify
from matching.rules.prepare import Prepared, prepare
from matching.solvers.baselines import brute_force
from matching.solvers.colgen import (
    PROOF_TOLERANCE,
    LpSolution,
    assignment_round,
    dual_bound,
    first_columns,
    generate_columns,
    lexicographic_lp,
    solve_lp,
)
from matching.solvers.decompose import pair_components
from matching.solvers.greedy import Pick, pinned_pairs
from matching.solvers.lagrange import repair, subgradient
from matching.solvers.large import LnsStrategy, start_solution
from matching.solvers.lns import attractive_pairs, neighbourhood, restricted_columns, restricted_mip
from matching.solvers.matrix import RoundMatrix, build_matrix
from matching.solvers.objective import combined_values, tier_weights
from matching.solvers.solve import build_solution
from matching.solvers.strategies import Context, Deadline, Reporter, tier_report


def _policy(instance: Instance, seconds: float = 2.0) -> Instance:
    policy = instance.policy.model_copy(update={"time_limit_s": seconds, "workers": 1})
    return instance.model_copy(update={"policy": policy})


def _optimum(prep: object) -> tuple[list[int], int]:
    tiers = objective_tiers(prep)  # type: ignore[arg-type]
    best = brute_force(prep, tiers, max_pairs=16)  # type: ignore[arg-type]
    values = combined_values(prep, tiers)  # type: ignore[arg-type]
    return [int(v[best].sum()) for _, v in tiers], int(values[best].sum())


def _small(seed: int) -> Instance:
    instance = _policy(generate(5 + seed % 4, 3 + seed % 3, seed=seed, binding_budgets=True))
    if len(prepare(instance).pairs) > 14:
        instance = _policy(generate(4, 3, seed=seed, binding_budgets=True))
    return instance


def _gap_round(kind: str, agents: int, jobs: int, seed: int) -> tuple[GapProblem, Prepared]:
    """A random generalized assignment problem (`benchmarks.gap`) and the round the engine makes of it."""
    problem = generate_gap(kind, agents, jobs, seed)  # type: ignore[arg-type]
    return problem, prepared(problem, scores_for(problem, "min")[0], _small(0).policy)


@pytest.mark.parametrize("seed", range(40))
def test_column_generation_equals_the_full_lp_and_bounds_the_optimum(seed: int) -> None:
    instance = _policy(generate(20 + seed % 10, 10, seed=seed, binding_budgets=True))
    prep = prepare(instance)
    m = build_matrix(prep)
    values = combined_values(prep, objective_tiers(prep))
    c = m.objective(values)
    full = solve_lp(m, c)
    lp, bound, converged, _ = generate_columns(m, c, first_columns(m), time.monotonic() + 30)
    assert full.ok and lp.ok and converged
    # The bound holds (never below the LP optimum) and is proven within the stopping tolerance of it.
    assert full.value - 1e-6 * abs(full.value) - 1e-3 <= bound <= full.value * (1 + PROOF_TOLERANCE) + 1e-3
    # Any prices give a valid bound: the master's, and the Lagrangian's after a few subgradient steps.
    assert dual_bound(m, c, lp.price) >= full.value - 1e-6 * abs(full.value) - 1e-3
    assert subgradient(m, values, seconds=5, steps=15).bound >= full.value - 1e-6 * abs(full.value) - 1e-3


@pytest.mark.parametrize(("kind", "seed"), [("c", 0), ("d", 1), ("e", 2), ("e", 3)])
def test_column_generation_on_assignment_rounds_takes_the_dual_simplex_and_equals_the_full_lp(
    kind: str, seed: int
) -> None:
    _, prep = _gap_round(kind, 8, 120, seed)
    m = build_matrix(prep)
    c = m.objective(combined_values(prep, objective_tiers(prep)))
    assert assignment_round(m)
    assert not assignment_round(build_matrix(prepare(_policy(generate(20, 10, seed=seed, binding_budgets=True)))))
    full = solve_lp(m, c)
    lp, bound, converged, _ = generate_columns(m, c, first_columns(m), time.monotonic() + 30)
    assert full.ok and lp.ok and converged
    assert full.value - 1e-6 * abs(full.value) - 1e-3 <= bound <= full.value * (1 + PROOF_TOLERANCE) + 1e-3


@pytest.mark.parametrize("seed", range(1000, 1030))
def test_lns_reaches_the_brute_force_optimum_and_verifies(seed: int) -> None:
    instance = _small(seed)
    prep = prepare(instance)
    tiers = objective_tiers(prep)
    best, combined = _optimum(prep)
    lexi = lexicographic_lp(prep, tiers, seconds=30, weights=tier_weights(prep, tiers))
    assert lexi.first_value >= combined - 1e-6
    assert lexi.tiers[0].bound >= best[0]
    started = time.monotonic()
    ctx = Context(prep, tiers, Deadline(started, 2.0), Reporter(None, started))
    outcome = LnsStrategy().run(ctx)
    solution = build_solution(prep, outcome.picks, outcome.results, outcome.method, time.monotonic() - started)
    assert verify(instance, solution) == []
    assert [r.objective for r in outcome.results] == best
    assert all(r.bound >= r.objective for r in outcome.results)


def _two_regions() -> Instance:
    """Two copies of one round whose candidates, units and programmes never meet (different counties)."""
    one = generate(12, 6, seed=7, binding_budgets=True).model_dump(mode="json")
    two = generate(12, 6, seed=8, binding_budgets=True).model_dump(mode="json")
    for key in ("candidates", "units", "supervisors", "offers", "programmes"):
        for item in two[key]:
            item["id"] = "B" + item["id"]
            for ref in ("unit_id", "programme_id"):
                if ref in item:
                    item[ref] = "B" + item[ref]
            if "supervisor_ids" in item:
                item["supervisor_ids"] = ["B" + s for s in item["supervisor_ids"]]
        one[key] = one[key] + two[key]
    return Instance.model_validate(one)


def test_parts_never_share_a_row_and_unlinked_halves_are_apart() -> None:
    prep = prepare(_two_regions())
    m = build_matrix(prep)
    count, part = pair_components(m)
    col_pair = m.column_pair
    label = np.where(col_pair >= 0, part[np.maximum(col_pair, 0)], -1)
    rows = m.a.tocoo()
    for r in np.unique(rows.row):
        cols = rows.col[rows.row == r]
        assert len(set(label[cols[col_pair[cols] >= 0]].tolist())) <= 1
    # Pairs of two different candidates that share no offer, supervisor or programme row sit apart when no chain
    # of rows joins them: with every pair in one part, count is 1, and never more parts than pairs.
    assert 1 <= count <= len(prep.pairs)


@pytest.mark.parametrize("seed", range(3000, 3020))
def test_priced_repair_gives_a_verified_solution_below_the_lagrangian_bound(seed: int) -> None:
    instance = _policy(generate(25, 12, seed=seed, binding_budgets=True))
    prep = prepare(instance)
    tiers = objective_tiers(prep)
    m = build_matrix(prep)
    values = combined_values(prep, tiers)
    result = subgradient(m, values, seconds=5, steps=20)
    picks = repair(m, result, values, pinned_pairs(prep))
    solution = build_solution(prep, picks, tier_report(prep, tiers, picks, "FEASIBLE"), "lagrange", 0.0)
    assert verify(instance, solution) == []
    assert m.violation(m.columns_of(picks)) <= 1e-6
    assert int(values[[p.pair for p in picks]].sum()) <= result.bound + 1e-6


@pytest.mark.parametrize("seed", range(4000, 4008))
def test_restricted_mip_improves_the_start_within_its_columns_and_verifies(seed: int) -> None:
    instance = _policy(generate(60, 25, seed=seed, binding_budgets=True))
    prep = prepare(instance)
    tiers = objective_tiers(prep)
    m, c, lp, bound, start = _lp_start(prep)
    profit = c - m.a.T @ lp.price
    w = m.columns_of(start)
    free = restricted_columns(m, profit, w, lp.w, 40)
    assert free[w > 0.5].all() and free[lp.w > 1e-6].all()
    found = restricted_mip(m, c, free, w, 5.0)
    if found is None:
        # Nothing better within the columns: then the start is their optimum, which HiGHS finds from nothing.
        alone = restricted_mip(m, c, free, np.zeros(m.n_cols), 5.0)
        assert alone is not None and float(c @ alone) <= float(c @ w) + 1e-6
        return
    assert m.violation(found) <= 1e-6
    assert not found[~free].any()
    assert float(c @ w) < float(c @ found) <= bound + 1e-6
    picks = m.picks_of(found)
    solution = build_solution(prep, picks, tier_report(prep, tiers, picks, "FEASIBLE"), "lns", 0.0)
    assert verify(instance, solution) == []


def test_what_highs_prints_during_the_restricted_mip_stays_off_standard_output(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """HiGHS writes its banner to file descriptor 1 itself; `--json` output there must stay clean. The MIP runs in a
    worker process whose own standard output is the channel of its answers, and whose prints go to standard error."""
    m, c, free, w = _whole_round_mip(generate(60, 25, seed=4001, binding_budgets=True))
    restricted_mip(m, c, free, w, 5.0)
    print("after")
    out, _ = capfd.readouterr()
    assert out == "after\n"


def _lp_start(prep: Prepared) -> tuple[RoundMatrix, np.ndarray, LpSolution, float, list[Pick]]:
    """A round's matrix, objective, LP (by column generation) with its bound, and the LP-priced start."""
    m = build_matrix(prep)
    values = combined_values(prep, objective_tiers(prep))
    c = m.objective(values)
    lp, bound, _, _ = generate_columns(m, c, first_columns(m), time.monotonic() + 30)
    profit = c - m.a.T @ lp.price
    return m, c, lp, bound, start_solution(m, values, lp.price, lp.w, attractive_pairs(m, profit, lp.w, c, 0.02))


def _whole_round_mip(instance: Instance) -> tuple[RoundMatrix, np.ndarray, np.ndarray, np.ndarray]:
    """A round's matrix, objective, every column free, and the LP-priced start."""
    m, c, _, _, start = _lp_start(prepare(_policy(instance)))
    return m, c, np.ones(m.n_cols, dtype=bool), m.columns_of(start)


def test_the_restricted_mip_ends_when_its_seconds_have_passed() -> None:
    # A national round whole: in this process HiGHS ran its presolve and root LP far past its own limit (3.9 s for
    # 0.2 s), and nothing could stop it; the worker running it now is killed when the seconds have passed.
    m, c, free, w = _whole_round_mip(generate_scale("national", 0))
    began = time.monotonic()
    restricted_mip(m, c, free, w, 0.2)
    assert time.monotonic() - began < 2.0


@pytest.mark.parametrize("kind", ["county", "unit"])
def test_a_county_or_unit_neighbourhood_stays_near_its_size_when_one_group_holds_the_round(kind: str) -> None:
    """Every GAP agent is in one county: a county neighbourhood used to free the whole round (38,000 pairs on
    80 x 1,600, 2 s of CP-SAT for nothing). The last group drawn now gives only some of its candidates, each with
    all its pairs there."""
    problem, prep = _gap_round("e", 10, 200, seed=3)
    m = build_matrix(prep)
    w = m.columns_of([])
    attractive = np.ones(m.n_pairs, dtype=bool)
    size = 300
    free = neighbourhood(m, kind, attractive, w, size, np.random.default_rng(0))
    free_pairs = np.unique(m.column_pair[(m.column_pair >= 0) & free])
    per_job = m.prep.pairs.cand[free_pairs]
    assert 0 < len(free_pairs) <= size
    if kind == "county":
        # Whole candidates: each freed job with every one of its pairs (all in the one county).
        counts = np.bincount(per_job, minlength=problem.jobs)
        assert set(counts[counts > 0].tolist()) == {problem.agents}
