"""GLOP through MathOpt with a basis in and out (`matching.solvers.simplex`), as column generation uses it."""

from __future__ import annotations

import numpy as np
import pytest

from matching.generators.generate import generate
from matching.model.spec import objective_tiers
from matching.rules.prepare import prepare
from matching.solvers import simplex
from matching.solvers.colgen import WARM_PARAMETERS, first_columns, solve_lp
from matching.solvers.matrix import RoundMatrix, build_matrix
from matching.solvers.objective import combined_values


def _round(seed: int) -> tuple[RoundMatrix, np.ndarray]:
    prep = prepare(generate(300, 120, seed=seed, binding_budgets=True))
    m = build_matrix(prep)
    return m, m.objective(combined_values(prep, objective_tiers(prep)))


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_master_resumed_from_its_last_basis_reaches_the_same_optimum_in_fewer_pivots(seed: int) -> None:
    m, c = _round(seed)
    first = solve_lp(m, c, np.flatnonzero(first_columns(m)))
    assert first.ok and first.basis is not None
    assert first.basis.basic_count() == len(m.lb)
    every = np.arange(m.n_cols)  # every funding column joins, as if all priced in
    cold = solve_lp(m, c, every, parameters=WARM_PARAMETERS)
    warm = solve_lp(m, c, every, parameters=WARM_PARAMETERS, start=first.basis)
    assert warm.ok and cold.ok
    assert warm.value == pytest.approx(cold.value, rel=1e-9)
    assert warm.iterations < cold.iterations
    # The optimal basis needs no pivot at all.
    assert warm.basis is not None
    again = solve_lp(m, c, every, parameters=WARM_PARAMETERS, start=warm.basis)
    assert again.iterations == 0 and again.value == pytest.approx(warm.value, rel=1e-12)


def test_a_basis_that_does_not_fit_the_master_is_not_used() -> None:
    m, c = _round(14)
    whole = solve_lp(m, c)
    assert whole.basis is not None
    basic = np.flatnonzero(whole.basis.columns == simplex.BASIC)
    fewer = np.setdiff1d(np.arange(m.n_cols), basic[:1])  # a basic column left out: no longer a basis
    found = solve_lp(m, c, fewer, start=whole.basis)
    assert found.ok and found.value <= whole.value + 1e-6
    assert found.iterations > 0


def test_crossed_bounds_are_an_infeasible_master_not_an_error() -> None:
    found = simplex.maximise(
        (np.zeros(1), np.ones(1), np.ones(1), np.array([2.0]), np.array([1.0]), np.ones((1, 1))), 5.0
    )
    assert not found.optimal and found.reason == "INFEASIBLE"
