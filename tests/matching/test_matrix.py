"""The compact matrix of the large-round strategies is the spec's rows in other columns: on random small rounds both
accept and reject the same solutions, a compact solution lifts to the spec's columns, and both LPs agree."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from matching.generators.generate import generate
from matching.input.instance import Floor, Instance, Pair
from matching.model.spec import KINDS, build_spec, objective_tiers
from matching.rules.prepare import Prepared, prepare
from matching.solvers.colgen import solve_lp
from matching.solvers.greedy import Pick, place_in_order
from matching.solvers.matrix import ROW_KINDS, build_matrix
from matching.solvers.objective import combined_values


def _instance(seed: int) -> Instance:
    instance = generate(14 + seed % 7, 6 + seed % 4, seed=seed, binding_budgets=True)
    prep = prepare(instance)
    attempt = 0
    while len(prep.pairs) < 10:  # a draw with hardly any eligible pair tests little: take another
        attempt += 1
        instance = generate(30, 12, seed=seed + 1000 * attempt, binding_budgets=True)
        prep = prepare(instance)
    updates: dict[str, object] = {}
    if seed % 3 == 0 and len(prep.pairs):
        # A pin and a floor: rows the compact form gets from the spec's column bounds and side rows.
        k = int(np.random.default_rng(seed).integers(len(prep.pairs)))
        cand, offer = instance.candidates[int(prep.pairs.cand[k])], instance.offers[int(prep.pairs.offer[k])]
        updates["pins"] = (Pair(candidate_id=cand.id, offer_id=offer.id),)
    if seed % 4 == 0:
        updates["floors"] = (Floor(group="profession", value=instance.candidates[0].profession.value, min_count=2),)
    if not updates:
        return instance
    return instance.model_copy(update={"policy": instance.policy.model_copy(update=updates)})


def _random_picks(prep: Prepared, rng: np.random.Generator) -> list[Pick]:
    """A few random pairs, each with a supervisor and a programme it may take (often breaking some row)."""
    pairs, sups = prep.pairs, prep.supervisors
    if not len(pairs):
        return []
    chosen = rng.choice(len(pairs), size=int(rng.integers(1, max(2, len(pairs) // 2))), replace=False)
    picks = []
    for k in chosen.tolist():
        options = sups.choice[sups.pair == k]
        sup = prep.free_supervisor[k] if prep.free_supervisor[k] >= 0 else rng.choice(options)
        funds = np.flatnonzero(pairs.fund_pair == k)
        fund = prep.free_programme[k] if prep.free_programme[k] >= 0 else rng.choice(funds)
        picks.append(Pick(k, int(sup), int(fund)))
    return picks


def _free_where_possible(prep: Prepared, pick: Pick) -> Pick:
    sup, fund = int(prep.free_supervisor[pick.pair]), int(prep.free_programme[pick.pair])
    return Pick(pick.pair, sup if sup >= 0 else pick.supervisor, fund if fund >= 0 else pick.fund_row)


@pytest.mark.parametrize("seed", range(24))
def test_matrix_and_spec_accept_the_same_solutions(seed: int) -> None:
    prep = prepare(_instance(seed))
    spec = build_spec(prep, objective_tiers(prep))
    m = build_matrix(prep, spec)
    assert ROW_KINDS[: len(KINDS)] == KINDS
    rng = np.random.default_rng(seed)
    outcomes = set()
    for attempt in range(40):
        walked = place_in_order(prep, rng.permutation(len(prep.pairs))) if attempt % 2 else None
        picks = walked if walked is not None else _random_picks(prep, rng)
        # The compact form gives a pair the free programme or supervisor it has (never worse than another): so do
        # the picks compared.
        picks = [_free_where_possible(prep, p) for p in picks]
        w = m.columns_of(picks)
        v = spec.vector(
            np.array([p.pair for p in picks], dtype=np.int64),
            np.array([p.supervisor for p in picks], dtype=np.int64),
            np.array([p.fund_row for p in picks], dtype=np.int64),
        )
        compact_ok = m.violation(w) <= 1e-6
        spec_ok = len(spec.violations(v)) == 0 and bool((v >= spec.var_lb - 1e-9).all())
        assert compact_ok == spec_ok, [p for p in picks]
        outcomes.add(compact_ok)
        # The lifted solution is the spec's on every column the compact form carries.
        carried = np.flatnonzero(np.diff(m.lift.indptr) > 0)
        assert np.allclose(m.to_spec(w)[carried], v[carried])
        assert sorted(p.pair for p in m.picks_of(w)) == sorted({p.pair for p in picks})
    if seed % 3 and seed % 4:  # without a pin or floor, which the greedy walks may break, both outcomes occur
        assert outcomes == {True, False}


@pytest.mark.parametrize("seed", range(12))
def test_matrix_lp_equals_the_spec_lp(seed: int) -> None:
    prep = prepare(_instance(seed))
    tiers = objective_tiers(prep)
    spec = build_spec(prep, tiers)
    m = build_matrix(prep, spec)
    values = combined_values(prep, tiers).astype(np.float64)
    # Scaled down so that HiGHS's tolerances see the score tier as well as the placement tier.
    values /= values.max()
    compact = solve_lp(m, m.objective(values))
    rows = spec.rows
    upper = np.isfinite(rows.ub)
    lower = np.isfinite(rows.lb)
    a_ub = np.vstack([rows.matrix[upper].toarray(), -rows.matrix[lower].toarray()])
    b_ub = np.concatenate([rows.ub[upper], -rows.lb[lower]])
    full = linprog(
        -spec.objective(values),
        A_ub=a_ub,
        b_ub=b_ub,
        bounds=np.column_stack([spec.var_lb, spec.var_ub]),
        method="highs",
    )
    # Both infeasible (a floor no solution meets), or both optimal with the same value.
    assert compact.ok == (full.status == 0)
    if not compact.ok:
        assert full.status == 2
        return
    assert compact.value == pytest.approx(-full.fun, rel=1e-7, abs=1e-7)


def test_matrix_built_in_blocks_of_rows_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    import matching.solvers.matrix as matrix

    prep = prepare(_instance(5))
    whole = build_matrix(prep)
    monkeypatch.setattr(matrix, "PRODUCT_ROWS", 7)
    blocks = build_matrix(prep)
    assert (whole.a != blocks.a).nnz == 0
    assert np.array_equal(whole.lb, blocks.lb) and np.array_equal(whole.ub, blocks.ub)
    assert np.array_equal(whole.kind, blocks.kind) and np.array_equal(whole.owner, blocks.owner)
