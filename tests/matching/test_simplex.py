"""GLOP through MathOpt with a basis in and out (`matching.solvers.simplex`), as column generation uses it."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp

from matching.generators.generate import generate
from matching.model.spec import objective_tiers
from matching.rules.prepare import prepare
from matching.solvers import simplex
from matching.solvers.colgen import WARM_PARAMETERS, dual_bound, first_columns, generate_columns, solve_lp
from matching.solvers.matrix import RoundMatrix, build_matrix
from matching.solvers.objective import combined_values
from tests.matching.sifting import sifting_cut_at


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


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_sifting_reaches_the_whole_masters_optimum_from_working_sets_of_fewer_columns(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    m, c = _round(seed)
    first = solve_lp(m, c, np.flatnonzero(first_columns(m)))
    every = np.arange(m.n_cols)
    whole = solve_lp(m, c, every, parameters=WARM_PARAMETERS, start=first.basis)  # too small to sift
    assert first.basis is not None and whole.ok
    # Sifting for masters of this size, and a first working set small enough to need more rounds.
    monkeypatch.setattr(simplex, "SIFT_MIN_COLUMNS", 0)
    monkeypatch.setattr(simplex, "SIFT_COLUMNS_PER_ROW", 0.0)
    monkeypatch.setattr(simplex, "SIFT_FIRST", 0.02)
    sizes: list[int] = []
    solve = simplex._solve

    def watched(arrays: simplex.Arrays, seconds: float, glop: str, start: simplex.Basis | None) -> simplex.Simplex:
        sizes.append(len(arrays[0]))
        return solve(arrays, seconds, glop, start)

    monkeypatch.setattr(simplex, "_solve", watched)
    sifted = solve_lp(m, c, every, parameters=WARM_PARAMETERS, start=first.basis)
    assert sifted.ok and sifted.value == pytest.approx(whole.value, rel=1e-9)
    assert len(sizes) >= 2 and max(sizes) < m.n_cols  # rounds, each on a part of the columns
    # Its answer is the whole master's: feasible, priced out everywhere, and a basis GLOP finds optimal at once.
    assert m.violation(sifted.w) <= 1e-6
    assert float(c @ sifted.w) == pytest.approx(sifted.value, rel=1e-9)
    assert sifted.basis is not None and sifted.basis.basic_count() == len(m.lb)
    monkeypatch.setattr(simplex, "_solve", solve)
    monkeypatch.setattr(simplex, "SIFT_MIN_COLUMNS", 10**9)
    again = solve_lp(m, c, every, parameters=WARM_PARAMETERS, start=sifted.basis)
    assert again.iterations == 0 and again.value == pytest.approx(whole.value, rel=1e-9)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_sifting_cut_short_keeps_its_last_finished_rounds_optimum(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round's optimum is a solution of the whole master: a master cut by its time limit after a round
    returns that round's (partial: feasible, at least the start's value, prices that bound), not nothing."""
    m, c = _round(seed)
    first = solve_lp(m, c, np.flatnonzero(first_columns(m)))
    every = np.arange(m.n_cols)
    whole = solve_lp(m, c, every, parameters=WARM_PARAMETERS, start=first.basis)
    assert first.ok and whole.ok
    rounds = sifting_cut_at(monkeypatch, 2)
    cut = solve_lp(m, c, every, parameters=WARM_PARAMETERS, start=first.basis)
    assert len(rounds) == 2  # the first round's optimum left columns to price in
    assert cut.ok and cut.partial and cut.status.startswith("PARTIAL")
    assert m.violation(cut.w) <= 1e-6
    assert float(c @ cut.w) == pytest.approx(cut.value, rel=1e-9)
    assert first.value - 1e-6 * abs(first.value) <= cut.value <= whole.value + 1e-6 * abs(whole.value)
    assert cut.basis is not None and cut.basis.basic_count() == len(m.lb)
    assert dual_bound(m, c, cut.price) >= whole.value - 1e-6 * abs(whole.value)
    # Cut in its first round, there is nothing to keep.
    monkeypatch.undo()
    sifting_cut_at(monkeypatch, 1)
    assert not solve_lp(m, c, every, parameters=WARM_PARAMETERS, start=first.basis).ok


@pytest.mark.parametrize("seed", [31, 32])
def test_column_generation_stops_at_a_partial_master_and_proves_only_what_its_bound_proves(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial master's prices do not price its own columns: nothing priced in proves nothing there."""
    m, c = _round(seed)
    exact, _, converged, _ = generate_columns(m, c, first_columns(m), time.monotonic() + 60)
    assert converged and exact.ok
    sifting_cut_at(monkeypatch, 1 if seed == 31 else 2)
    lp, bound, proven, _ = generate_columns(m, c, first_columns(m), time.monotonic() + 60)
    assert lp.ok and m.violation(lp.w) <= 1e-6
    assert bound >= exact.value - 1e-6 * abs(exact.value)  # a valid bound, whatever stopped it
    if proven:
        assert bound - lp.value <= 1e-6 * abs(lp.value)


def test_a_bases_prices_are_glops_duals_and_a_non_basis_has_none() -> None:
    m, c = _round(24)
    whole = solve_lp(m, c)
    assert whole.ok and whole.basis is not None
    a = sp.csc_matrix(m.a)
    prices = simplex.basis_prices(a, c, whole.basis)
    assert prices is not None
    assert np.allclose(prices, whole.price, atol=1e-6 * float(np.abs(c).max()))
    fewer = whole.basis.columns.copy()
    fewer[np.flatnonzero(fewer == simplex.BASIC)[0]] = simplex.AT_LOWER
    assert simplex.basis_prices(a, c, simplex.Basis(fewer, whole.basis.rows)) is None
