"""The LP/MIP backend (LinearBackend) with the real HiGHS: a MIP cut short keeps what HiGHS found."""

from __future__ import annotations

import numpy as np

from matching.generators.generate import generate
from matching.model.spec import build_spec, objective_tiers
from matching.rules.prepare import prepare
from matching.solvers.mip import LinearBackend, tier_value


def test_a_mip_stopped_by_its_node_limit_returns_the_incumbent_and_its_bound() -> None:
    # The score tier of this round is not proven at HiGHS's root; one node (a limit, not the clock: the same on a
    # loaded machine) stops it with an incumbent. OR-Tools 9.15's model builder dropped that incumbent (UNKNOWN).
    prep = prepare(generate(60, 30, seed=2, binding_budgets=True))
    tiers = objective_tiers(prep)
    spec = build_spec(prep, tiers)
    backend = LinearBackend(spec, full=True)
    backend.deterministic_nodes = 1
    result = backend.solve(tiers[1].values, 60.0)
    assert result.status == "FEASIBLE"
    assert result.values is not None
    values = np.where(spec.integer, np.round(result.values), result.values)
    assert len(spec.violations(values)) == 0
    assert tier_value(tiers[1], result.values) == round(result.objective)
    # A dual bound from the branch and bound: above the incumbent (not proven) and below the LP's.
    lp = backend.solve(tiers[1].values, 60.0, integral=False)
    assert result.objective < result.bound <= lp.bound + 1e-6


def test_the_same_solve_with_time_to_finish_is_optimal_and_no_better_than_the_bound() -> None:
    prep = prepare(generate(60, 30, seed=2, binding_budgets=True))
    tiers = objective_tiers(prep)
    spec = build_spec(prep, tiers)
    backend = LinearBackend(spec, full=True)
    backend.deterministic_nodes = 1
    cut = backend.solve(tiers[1].values, 60.0)
    backend.deterministic_nodes = None
    full = backend.solve(tiers[1].values, 60.0)
    assert full.status == "OPTIMAL" and full.values is not None
    assert len(spec.violations(np.where(spec.integer, np.round(full.values), full.values))) == 0
    assert cut.objective <= full.objective <= cut.bound + 1e-6
