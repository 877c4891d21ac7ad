"""Column generation over pairs (`matching.solvers.pairgen`): its bound holds at any prices, it reaches the LP of
the whole round from a part of it, and the lagrange strategy's bound steps start from its best start."""

from __future__ import annotations

import time

import numpy as np
import pytest

from matching.generators.generate import generate
from matching.input.instance import Instance
from matching.model.spec import objective_tiers
from matching.rules.prepare import Prepared, prepare
from matching.solvers import large
from matching.solvers.baselines import milp
from matching.solvers.colgen import solve_lp
from matching.solvers.matrix import build_matrix
from matching.solvers.objective import combined_values
from matching.solvers.pairgen import generate_pairs, split_bound
from matching.solvers.priced import PricedStrategy, deterministic_evaluations, part_pairs
from matching.solvers.relaxed import relax, worths
from matching.solvers.strategies import Context, Deadline, Reporter


@pytest.mark.parametrize("seed", range(600, 610))
def test_the_split_bound_is_above_the_optimum_at_any_prices(seed: int) -> None:
    instance = generate(16 + seed % 5, 8 + seed % 3, seed=seed, binding_budgets=True)
    prep = prepare(instance)
    tiers = objective_tiers(prep)
    values = combined_values(prep, tiers)
    result = milp(prep, tiers, time_limit=30)
    assert result.status == "OPTIMAL"
    optimum = float(values[result.chosen].sum())
    r = relax(prep)
    rng = np.random.default_rng(seed)
    top = float(values.max(initial=0))
    scale = top / max(1.0, float(prep.pairs.fund_grant.max(initial=0)))
    n_offers = len(instance.offers)
    for price, offer_price in [
        (np.zeros(r.n_rows), np.zeros(n_offers)),
        (rng.uniform(0, scale, r.n_rows), rng.uniform(0, top, n_offers)),
        (rng.uniform(0, 50 * scale, r.n_rows), rng.uniform(0, 3 * top, n_offers)),
    ]:
        bound, _ = split_bound(prep, r, worths(r, values, price), price, offer_price)
        assert bound >= optimum - 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_from_a_part_it_reaches_the_lp_of_the_whole_round_and_proves_it(seed: int) -> None:
    prep = prepare(generate(120, 60, seed=seed, programmes=3, binding_budgets=True))
    values = combined_values(prep, objective_tiers(prep))
    m = build_matrix(prep)
    whole = solve_lp(m, m.objective(values))  # every pair and funding column at once
    assert whole.ok
    keep = part_pairs(prep, values, 1)
    assert len(keep) < len(prep.pairs)
    tolerance = 1e-6 * abs(whole.value)
    found = generate_pairs(prep, relax(prep), values, keep, time.monotonic() + 60, tolerance)
    assert found.converged and found.master is not None
    assert found.master.lp.value == pytest.approx(whole.value, rel=1e-6)
    # A proven bound, as tight as the LP: never below it, within the tolerance above it.
    assert whole.value - 1e-6 * abs(whole.value) <= found.bound <= whole.value + 2 * tolerance
    assert len(found.master.keep) < len(prep.pairs)  # it got there without every pair


@pytest.mark.parametrize("seed", range(700, 704))
def test_the_bound_steps_start_from_the_start_that_bounds_lowest(seed: int) -> None:
    """Every start of the subgradient steps is evaluated (one report each), and the first step is taken from the
    one of lowest bound: its evaluation repeats that bound. The code before evaluated only the line search's starts
    and took a start by an index into them, which could pick another."""
    bounds = _reported_bounds(prepare(generate(60, 30, seed=seed, binding_budgets=True)))
    starts = 4  # the part's LP prices with and without its seat prices, and the line search's two (time allows)
    assert len(bounds) > starts
    assert bounds[starts] == pytest.approx(min(bounds[:starts]), rel=1e-9)


def test_the_part_spends_no_time_tightening_its_own_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The part's bound is not the round's. Its subgradient steps took 128 s of a deterministic stress round (200
    steps) and 15 % of the part's time otherwise, and nothing read what they proved. On this round (deterministic:
    two passes) the second master's LP leaves the part's bound open, which is when the steps ran."""
    prep = _deterministic(generate(120, 60, seed=1, binding_budgets=True))
    tiers = objective_tiers(prep)
    calls: list[int] = []
    original = large.subgradient

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(large, "subgradient", counted)
    started = time.monotonic()
    outcome = PricedStrategy().run(Context(prep, tiers, Deadline(started, 3.0), Reporter(None, started)))
    assert outcome.picks and calls == []


def test_a_deterministic_bound_steps_from_the_line_search_before_it_tries_the_parts_prices() -> None:
    """A deterministic round of 3 s evaluates its bound 4 times: the line search's two, then two steps from the lower
    of them (the first repeats its bound). Before, the part's two prices took the last two evaluations and left no
    step: at stress scale they bounded worse than the line search, and two steps took the gap from 17.9 % to 16.7 %."""
    bounds = _reported_bounds(_deterministic(generate(60, 30, seed=700, binding_budgets=True)))
    assert len(bounds) == deterministic_evaluations(3.0) == 4
    assert bounds[2] == pytest.approx(min(bounds[:2]), rel=1e-9)


def _reported_bounds(prep: Prepared) -> list[float]:
    """The bounds the lagrange strategy reports, one per evaluation, in a round of 3 s."""
    bounds: list[float] = []

    def progress(values: dict[str, object]) -> None:
        if values["phase"] == "bound" and "bound" in values:
            bounds.append(float(values["bound"]))  # type: ignore[arg-type]

    started = time.monotonic()
    reporter = Reporter(progress, started, interval=0.0)
    PricedStrategy().run(Context(prep, objective_tiers(prep), Deadline(started, 3.0), reporter))
    return bounds


def _deterministic(instance: Instance) -> Prepared:
    policy = instance.policy.model_copy(update={"deterministic": True, "time_limit_s": 3.0})
    return prepare(instance.model_copy(update={"policy": policy}))
