"""The stress-scale strategy (`matching.solvers.priced`): its Lagrangian bound holds for any prices, agrees with the
compact matrix's, and its solutions verify."""

from __future__ import annotations

import time

import numpy as np
import pytest

from matching.generators.generate import generate
from matching.input.instance import Instance
from matching.model.spec import objective_tiers
from matching.reports.verify import verify
from matching.rules.prepare import prepare
from matching.solvers import lagrange
from matching.solvers.baselines import milp
from matching.solvers.colgen import first_columns, generate_columns, solve_lp
from matching.solvers.matrix import build_matrix
from matching.solvers.objective import combined_values, tier_weights
from matching.solvers.priced import PricedStrategy, part_pairs
from matching.solvers.relaxed import (
    Subgradient,
    evaluate,
    network_bound,
    prices_from_matrix,
    relax,
    restrict,
    seat_network,
)
from matching.solvers.solve import build_solution
from matching.solvers.strategies import Context, Deadline, Reporter


def _instance(seed: int, candidates: int = 16, offers: int = 8) -> Instance:
    instance = generate(candidates + seed % 5, offers + seed % 3, seed=seed, binding_budgets=True)
    policy = instance.policy.model_copy(update={"time_limit_s": 3.0, "workers": 1})
    return instance.model_copy(update={"policy": policy})


def _combined_optimum(instance: Instance) -> int:
    """The optimum of the combined objective, by HiGHS on the full model tier by tier."""
    prep = prepare(instance)
    tiers = objective_tiers(prep)
    result = milp(prep, tiers, time_limit=30)
    assert result.status == "OPTIMAL"
    return int(combined_values(prep, tiers)[result.chosen].sum())


@pytest.mark.parametrize("seed", range(200, 215))
def test_the_lagrangian_bound_is_above_the_mip_optimum_at_any_prices(seed: int) -> None:
    instance = _instance(seed)
    prep = prepare(instance)
    values = combined_values(prep, objective_tiers(prep))
    optimum = _combined_optimum(instance)
    r = relax(prep)
    rng = np.random.default_rng(seed)
    scale = float(values.max()) / max(1.0, float(prep.pairs.fund_grant.max()))
    prices = [np.zeros(r.n_rows), rng.uniform(0, scale, r.n_rows), rng.uniform(0, 50 * scale, r.n_rows)]
    sub = Subgradient(r, np.zeros(r.n_rows))
    for _ in range(10):
        at = evaluate(prep, r, values, sub.price)
        sub.step(at.bound, at.activity, float(optimum))
    prices.append(sub.price)
    net = seat_network(prep)
    for price in prices:
        assert evaluate(prep, r, values, price).bound >= optimum - 1e-6
        # Seats in the flow (relaxed to each offer's start month) instead of priced: a bound too.
        assert network_bound(prep, r, net, values, price).bound >= optimum - 1e-6
    assert sub.best_bound >= optimum - 1e-6


@pytest.mark.parametrize("seed", range(300, 306))
def test_prices_from_the_compact_lp_give_the_compact_lagrangian_bound(seed: int) -> None:
    instance = _instance(seed, 30, 12)
    prep = prepare(instance)
    values = combined_values(prep, objective_tiers(prep))
    m = build_matrix(prep)
    c = m.objective(values)
    lp, _, converged, _ = generate_columns(m, c, first_columns(m), time.monotonic() + 30)
    assert lp.ok and converged
    r = relax(prep)
    mine = evaluate(prep, r, values, prices_from_matrix(r, m, lp.price)).bound
    theirs = lagrange.evaluate(m, lagrange.structure(m), c, lp.price)[0]
    # The same relaxation at the same prices: equal up to rounding the gains up (at most 1 per candidate).
    assert abs(mine - theirs) <= len(instance.candidates) + 1e-6 * abs(theirs)


@pytest.mark.parametrize("seed", range(6))
def test_the_lagrangian_bound_at_the_lps_prices_is_the_lp_value(seed: int) -> None:
    """The subproblem (each candidate once, each offer within its slots, a supervisor per pair) is a flow, so at
    the LP's optimal prices of the relaxed rows the Lagrangian bound is the LP's value, not above it. An offer row
    merged with its only supervisor's tighter seat row once kept the offer's label: the flow then counted the
    offer's slots and no seat price (120 x 60 seed 4: 30.3 placements against the LP's 27.4)."""
    instance = generate(120, 60, seed=seed, programmes=2)
    prep = prepare(instance)
    values = combined_values(prep, objective_tiers(prep))
    m = build_matrix(prep)
    c = m.objective(values)
    lp = solve_lp(m, c)  # every column: the exact LP and its prices
    assert lp.ok
    # Gains are rounded up to integers for the flow: at most 1 per candidate above the exact value.
    slack = len(instance.candidates) + 1e-6 * abs(lp.value)
    compact = lagrange.evaluate(m, lagrange.structure(m), c, lp.price)[0]
    assert lp.value - 1e-6 * abs(lp.value) <= compact <= lp.value + slack
    r = relax(prep)
    price = prices_from_matrix(r, m, lp.price)
    priced = evaluate(prep, r, values, price).bound
    assert lp.value - 1e-6 * abs(lp.value) <= priced <= lp.value + slack
    # Seats in the flow and priced on top: no looser (the network alone, seat prices ignored, bounded above the LP).
    network = network_bound(prep, r, seat_network(prep), values, price).bound
    assert lp.value - 1e-6 * abs(lp.value) <= network <= lp.value + slack


@pytest.mark.parametrize("seed", range(400, 410))
def test_a_part_of_the_round_keeps_its_rows_and_its_solution_verifies_in_the_whole(seed: int) -> None:
    instance = _instance(seed, 24, 10)
    prep = prepare(instance)
    values = combined_values(prep, objective_tiers(prep))
    keep = part_pairs(prep, values, 1)
    sub, fund_rows = restrict(prep, keep)
    assert len(sub.pairs) == len(keep) and (sub.pairs.cand == prep.pairs.cand[keep]).all()
    assert (sub.pairs.fund_grant == prep.pairs.fund_grant[fund_rows]).all()
    assert (keep[sub.pairs.fund_pair] == prep.pairs.fund_pair[fund_rows]).all()
    whole = set(zip(prep.supervisors.pair.tolist(), prep.supervisors.choice.tolist(), strict=True))
    mine = set(zip(keep[sub.supervisors.pair].tolist(), sub.supervisors.choice.tolist(), strict=True))
    assert mine == {(k, s) for k, s in whole if k in set(keep.tolist())}


@pytest.mark.parametrize("seed", range(500, 512))
def test_the_strategy_verifies_and_its_bound_holds(seed: int) -> None:
    instance = _instance(seed)
    prep = prepare(instance)
    tiers = objective_tiers(prep)
    optimum = _combined_optimum(instance)
    started = time.monotonic()
    ctx = Context(prep, tiers, Deadline(started, 3.0), Reporter(None, started))
    outcome = PricedStrategy().run(ctx)
    solution = build_solution(prep, outcome.picks, outcome.results, outcome.method, time.monotonic() - started)
    assert verify(instance, solution) == []
    assert all(r.bound >= r.objective for r in outcome.results)
    # The proven bound of the first tier is never below the optimum's.
    weights = tier_weights(prep, tiers)
    assert outcome.results[0].bound >= optimum // weights[0]
