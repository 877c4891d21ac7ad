"""Properties over hundreds of random instances: every solution verifies, the optimum matches exact references,
min-cost flow and CP-SAT agree where both apply, and deterministic mode repeats itself."""

from __future__ import annotations

import pytest

from matching.generators.generate import generate
from matching.input.instance import Instance
from matching.model.spec import objective_tiers
from matching.reports.verify import verify
from matching.rules.prepare import prepare
from matching.solvers.baselines import brute_force, milp
from matching.solvers.solve import solve


def _policy(instance: Instance, **changes: object) -> Instance:
    policy = instance.policy.model_copy(update={"time_limit_s": 20.0, "workers": 2, **changes})
    return instance.model_copy(update={"policy": policy})


def _tiers(solution: object) -> list[int]:
    stats = solution.stats  # type: ignore[attr-defined]
    return [int(stats[f"{name}_objective"]) for name in ("placements", "score")]


@pytest.mark.parametrize("seed", range(300))
def test_every_solution_verifies(seed: int) -> None:
    size = 6 + seed % 15
    instance = _policy(generate(size, max(3, size // 2), seed=seed, binding_budgets=seed % 3 != 0))
    method = ("auto", "cp_sat", "greedy")[seed % 3]
    solution = solve(instance, method=method)  # type: ignore[arg-type]
    assert solution.status in ("OPTIMAL", "FEASIBLE")
    assert verify(instance, solution) == []
    assert {a.candidate_id for a in solution.assignments}.isdisjoint(u.candidate_id for u in solution.unmatched)
    assert len(solution.assignments) + len(solution.unmatched) == len(instance.candidates)


@pytest.mark.parametrize("seed", range(1000, 1080))
def test_small_optimum_equals_brute_force(seed: int) -> None:
    instance = _policy(generate(5 + seed % 4, 3 + seed % 3, seed=seed, binding_budgets=True))
    prep = prepare(instance)
    if len(prep.pairs) > 14:
        instance = _policy(generate(4, 3, seed=seed, binding_budgets=True))
        prep = prepare(instance)
    tiers = objective_tiers(prep)
    best = brute_force(prep, tiers, max_pairs=16)
    solution = solve(instance, method="cp_sat")
    assert solution.status == "OPTIMAL"
    assert _tiers(solution) == [int(values[best].sum()) for _, values in tiers]


@pytest.mark.parametrize("seed", range(2000, 2060))
def test_optimum_equals_the_highs_mip_of_the_same_model(seed: int) -> None:
    instance = _policy(generate(30, 15, seed=seed, binding_budgets=True))
    prep = prepare(instance)
    reference = milp(prep, objective_tiers(prep), time_limit=60.0)
    solution = solve(instance)
    assert solution.status == reference.status == "OPTIMAL"
    assert _tiers(solution) == [r.objective for r in reference.tiers]


def _roomy_supervisors(instance: Instance) -> Instance:
    """Every supervisor with the largest capacity, so that with ample budgets no side constraint can bind."""
    roomy = tuple(s.model_copy(update={"capacity": 20}) for s in instance.supervisors)
    return instance.model_copy(update={"supervisors": roomy})


@pytest.mark.parametrize("seed", range(3000, 3060))
def test_min_cost_flow_equals_cp_sat_where_both_apply(seed: int) -> None:
    instance = _roomy_supervisors(_policy(generate(25 + seed % 20, 12 + seed % 8, seed=seed, binding_budgets=False)))
    prep = prepare(instance)
    assert prep.is_flow
    flow = solve(instance, method="flow")
    cp_sat = solve(instance, method="cp_sat")
    assert flow.method == "min_cost_flow" and cp_sat.method == "cp_sat"
    assert flow.status == cp_sat.status == "OPTIMAL"
    assert _tiers(flow) == _tiers(cp_sat)
    assert verify(instance, flow) == []


@pytest.mark.parametrize("seed", range(4000, 4012))
def test_deterministic_mode_repeats_exactly(seed: int) -> None:
    instance = _policy(generate(60, 30, seed=seed, binding_budgets=True), deterministic=True, time_limit_s=2.0)
    first, second = solve(instance, method="cp_sat"), solve(instance, method="cp_sat")
    assert first.assignments == second.assignments
    assert (first.objective, first.bound, first.status) == (second.objective, second.bound, second.status)


def test_a_stored_round_that_hit_its_time_limit_reproduces_from_its_json() -> None:
    # The service stores the instance as JSON and re-solves that snapshot: the search must stop at the same point
    # although the wall clock differs, so no phase may get "what the wall clock leaves" in deterministic mode.
    instance = _policy(generate(260, 120, seed=7, binding_budgets=True), deterministic=True, time_limit_s=1.0)
    first = solve(instance)
    # The MIP strategy without HiGHS (1 s is too short for it): the LP, then CP-SAT's parts in deterministic time.
    assert first.method == "mip_highs" and first.status == "FEASIBLE"  # stopped by the limit, not by a proof
    again = solve(Instance.model_validate_json(instance.model_dump_json()))
    assert again.assignments == first.assignments
    assert (again.objective, again.bound) == (first.objective, first.bound)
