"""Every strategy on random small rounds: its solutions verify, the exact ones match brute force and the reference
MIP, and the one model (the spec) holds every solution and catches what breaks it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from matching.generators.generate import generate
from matching.input.instance import Floor, Instance
from matching.model.side import satisfied, side_rows
from matching.model.solution import Solution
from matching.model.spec import BUDGET, build_spec, objective_tiers
from matching.reports.verify import verify
from matching.rules.prepare import prepare
from matching.solvers.baselines import brute_force, milp
from matching.solvers.select import METHODS
from matching.solvers.solve import build_solution, solve
from matching.solvers.strategies import Context, Deadline, MipStrategy, Reporter, _split, greedy_start
from matching.solvers.submodel import Parts

EXACT = ("mip", "cp_sat")


def _policy(instance: Instance, **changes: object) -> Instance:
    policy = instance.policy.model_copy(update={"time_limit_s": 20.0, "workers": 2, **changes})
    return instance.model_copy(update={"policy": policy})


def _tiers(solution: Solution) -> list[int]:
    return [int(solution.stats[f"{name}_objective"]) for name in ("placements", "score")]


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_strategy_verifies(seed: int, method: str) -> None:
    size = 6 + seed % 12
    instance = _policy(generate(size, max(3, size // 2), seed=seed, binding_budgets=seed % 2 == 0))
    if method == "flow" and not prepare(instance).is_flow:
        with pytest.raises(ValueError, match="min-cost flow does not apply"):
            solve(instance, method="flow")
        return
    solution = solve(instance, method=method)  # type: ignore[arg-type]
    assert solution.status in ("OPTIMAL", "FEASIBLE")
    assert verify(instance, solution) == []


@pytest.mark.parametrize("seed", range(4000, 4040))
def test_exact_strategies_equal_brute_force(seed: int) -> None:
    instance = _policy(generate(5 + seed % 4, 3 + seed % 3, seed=seed, binding_budgets=True))
    prep = prepare(instance)
    if len(prep.pairs) > 14:
        instance = _policy(generate(4, 3, seed=seed, binding_budgets=True))
        prep = prepare(instance)
    tiers = objective_tiers(prep)
    best = brute_force(prep, tiers, max_pairs=16)
    expected = [int(values[best].sum()) for _, values in tiers]
    for method in EXACT:
        solution = solve(instance, method=method)  # type: ignore[arg-type]
        assert solution.status == "OPTIMAL", method
        assert _tiers(solution) == expected, method


@pytest.mark.parametrize("seed", range(5000, 5025))
def test_the_mip_strategy_equals_the_reference_mip_with_floors_and_earlier_commitments(seed: int) -> None:
    base = generate(24, 12, seed=seed, binding_budgets=True)
    country = base.candidates[seed % len(base.candidates)].country_of_training
    instance = _policy(base, floors=(Floor(group="country", value=country, min_count=1),))
    prep = prepare(instance)
    reference = milp(prep, objective_tiers(prep), time_limit=60.0)
    solution = solve(instance, method="mip")
    assert solution.status == reference.status
    if reference.status == "OPTIMAL":
        assert _tiers(solution) == [r.objective for r in reference.tiers]
        assert verify(instance, solution) == []


@pytest.mark.parametrize("seed", range(6000, 6020))
def test_the_spec_holds_every_solution_and_names_the_budget_it_breaks(seed: int) -> None:
    instance = _policy(generate(20, 10, seed=seed, binding_budgets=True))
    prep = prepare(instance)
    spec = build_spec(prep, objective_tiers(prep))
    solution = solve(instance, method="mip")
    t = prep.tables
    chosen = np.array(
        [
            t.candidates.index[a.candidate_id] * len(instance.offers) + t.offers.index[a.offer_id]
            for a in solution.assignments
        ],
        dtype=np.int64,
    )
    keys = prep.pairs.cand * len(instance.offers) + prep.pairs.offer
    pair = np.searchsorted(keys, chosen)
    sup = np.array([t.supervisor_index[a.supervisor_id] for a in solution.assignments], dtype=np.int64)
    fund = np.array(
        [
            next(
                r
                for r in np.flatnonzero(prep.pairs.fund_pair == k)
                if instance.programmes[int(prep.pairs.fund_programme[r])].id == a.programme_id
                and int(prep.pairs.fund_grant[r]) == a.grant
            )
            for k, a in zip(pair, solution.assignments, strict=True)
        ],
        dtype=np.int64,
    )
    v = spec.vector(pair, sup, fund)
    assert len(spec.violations(v)) == 0
    # Every pair paid by its first programme at once: past a binding budget the spec names that budget.
    for g in np.flatnonzero(prep.budget_binding):
        rows = np.flatnonzero(prep.pairs.fund_programme == g)
        v_all = spec.vector(prep.pairs.fund_pair[rows], prep.free_supervisor[prep.pairs.fund_pair[rows]], rows)
        broken = [spec.label(int(r)) for r in spec.violations(v_all)]
        assert f"budget of programme {instance.programmes[g].id}" in broken
        assert int(spec.where(BUDGET, owner=int(g))[0]) in spec.violations(v_all)


def test_the_weighted_progress_is_split_back_into_tiers() -> None:
    # placements x 1001 + score, as CP-SAT sees it: 3 placed with score 950, bound 4 placed and 1000.
    assert _split(3 * 1001 + 950, [1001, 1]) == [3, 950]
    seen: list[dict[str, object]] = []
    reporter = Reporter(seen.append, started=0.0, interval=0.0)
    reporter.cp_sat(["placements", "score"], [1001, 1])({"objective": 3953.0, "bound": 5004.0})
    assert seen[-1]["placements"] == 3 and seen[-1]["score"] == 950
    assert seen[-1]["tier"] == "placements" and seen[-1]["bound"] == 4


@pytest.mark.parametrize("seed", range(7000, 7012))
def test_without_highs_the_tiers_still_reach_the_reference_optimum(seed: int) -> None:
    # HiGHS finding nothing in time (use_mip=False) used to leave each tier with whatever the earlier tier or the
    # rounded LP had; CP-SAT on parts (here the whole round: it is small) now carries each tier to its optimum.
    instance = _policy(generate(14 + seed % 6, 8, seed=seed, binding_budgets=True), time_limit_s=10.0)
    prep = prepare(instance)
    tiers = objective_tiers(prep)
    reference = milp(prep, tiers, time_limit=60.0)
    started = time.monotonic()
    ctx = Context(prep, tiers, Deadline(started, 10.0), Reporter(None, started))
    outcome = MipStrategy(highs=False).run(ctx)
    assert reference.status == "OPTIMAL"
    assert [r.objective for r in outcome.results] == [r.objective for r in reference.tiers]
    assert [r.status for r in outcome.results] == ["OPTIMAL", "OPTIMAL"]
    assert satisfied(side_rows(prep), [p.pair for p in outcome.picks])
    solution = build_solution(prep, outcome.picks, outcome.results, outcome.method, time.monotonic() - started)
    assert verify(instance, solution) == []


@pytest.mark.parametrize("seed", range(7100, 7110))
def test_a_part_changes_only_its_own_pairs_and_never_gets_worse(seed: int) -> None:
    instance = _policy(generate(40, 20, seed=seed, binding_budgets=True))
    prep = prepare(instance)
    tiers = objective_tiers(prep)
    spec = build_spec(prep, tiers)
    parts = Parts(spec, tiers)
    start = parts.of(greedy_start(prep, tiers))
    rng = np.random.default_rng(seed)
    free = np.isin(prep.pairs.cand, rng.choice(len(instance.candidates), size=12, replace=False))
    placed = parts.totals(start)[0]
    part = parts.solve(free, start, tiers[1].values, 5.0, held=[(tiers[0].values, placed)])
    n = spec.n_pairs
    assert np.array_equal(part.values[:n][~free], start[:n][~free])
    assert parts.totals(part.values)[0] >= placed
    assert parts.totals(part.values)[1] >= parts.totals(start)[1]
    picks = parts.picks(part.values)
    full = spec.vector(
        *(np.array([getattr(p, f) for p in picks], dtype=np.int64) for f in ("pair", "supervisor", "fund_row"))
    )
    assert len(spec.violations(full)) == 0
