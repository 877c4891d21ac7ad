"""Column generation over pairs (`matching.solvers.pairgen`): its bound holds at any prices, it reaches the LP of
the whole round from a part of it, and the lagrange strategy's bound steps start from its best start."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pytest

from matching.generators.generate import generate
from matching.input.instance import Instance
from matching.model.spec import objective_tiers
from matching.rules.prepare import Prepared, prepare
from matching.solvers import large, pairgen, priced
from matching.solvers.baselines import milp
from matching.solvers.colgen import WARM_PARAMETERS, solve_lp
from matching.solvers.matrix import build_matrix
from matching.solvers.objective import combined_values
from matching.solvers.pairgen import Master, _best_per_pair, carried_basis, generate_pairs, labels, split_bound
from matching.solvers.priced import PricedStrategy, deterministic_evaluations, part_pairs
from matching.solvers.relaxed import relax, restrict, worths
from matching.solvers.strategies import Context, Deadline, Reporter
from tests.matching.sifting import sifting_cut_at


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
def test_the_bound_steps_start_from_the_start_that_bounds_lowest_without_evaluating_it_again(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every start of the subgradient steps is evaluated, and the steps go on from the one of lowest bound, from
    that evaluation. The code before once took a start by an index into the line search's starts only, and later
    evaluated the chosen start a second time (6-12 s at stress scale); with the repeat this test fails."""
    evaluated, started_at = _watch_the_bound(monkeypatch)
    _reported_bounds(prepare(generate(60, 30, seed=seed, binding_budgets=True)))
    starts = started_at[0][1]
    # The line search's two, and the LP's prices (these small rounds converge: with its seat prices only).
    assert starts == 3
    lowest = min(evaluated[:starts], key=lambda e: e[1])
    assert np.array_equal(started_at[0][0], lowest[0])
    assert len(evaluated) > starts
    assert not any(np.array_equal(lowest[0], price) for price, _ in evaluated[starts:])


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


def test_a_deterministic_bound_takes_its_evaluations_in_steps_never_repeating_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deterministic round of 3 s evaluates its bound 3 times: its start (the converged LP's prices), then two
    steps from it (each a new price). Before, the first step repeated its start's evaluation."""
    evaluated, started_at = _watch_the_bound(monkeypatch)
    bounds = _reported_bounds(_deterministic(generate(60, 30, seed=700, binding_budgets=True)))
    assert len(bounds) == len(evaluated) == deterministic_evaluations(3.0) == 3
    assert started_at[0][1] == 1
    assert np.array_equal(started_at[0][0], evaluated[0][0])
    prices = [price for price, _ in evaluated]
    assert not any(np.array_equal(prices[i], prices[j]) for i in range(3) for j in range(i))


@pytest.mark.parametrize("seed", range(700, 703))
def test_a_deterministic_round_whose_lp_converged_bounds_first_at_its_prices(seed: int) -> None:
    """Column generation proves the LP of these small rounds; its prices then come first (the line search's
    uniform prices are never better than the LP's own, which give the LP's value up to the rounding of gains), so
    the first evaluation is the lowest."""
    prep = _deterministic(generate(60, 30, seed=seed, binding_budgets=True))
    bounds = _reported_bounds(prep)
    assert bounds[0] <= min(bounds) + len(prep.instance.candidates)


@pytest.mark.parametrize("seed", range(710, 713))
def test_a_round_on_the_clock_whose_generation_ran_three_passes_bounds_first_at_the_last_masters_prices(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Since sifting, a stress round on the clock affords the deterministic round's three passes, whose last
    master prices the round far better than the line search (9,500 placements against 10,670). Here the clock's
    gate stopping the generation after its third pass is the real generation, reported unconverged."""
    evaluated, _ = _watch_the_bound(monkeypatch)
    monkeypatch.setattr(priced, "PART_PAIRS_PER_CANDIDATE", 1)
    monkeypatch.setattr(pairgen, "PAIRS_PER_PASS", 1)  # a pass adds one pair per candidate: more passes
    generated: list[pairgen.PairLp] = []
    real = pairgen.generate_pairs

    def stopped_by_the_gate(*args: Any, **kwargs: Any) -> pairgen.PairLp:
        generated.append(real(*args, **kwargs))
        return dataclasses.replace(generated[-1], converged=False)

    line_search_after: list[int] = []
    line_search = priced._uniform_prices

    def uniform_prices(*args: Any) -> None:
        line_search_after.append(len(evaluated))
        line_search(*args)

    monkeypatch.setattr(priced, "generate_pairs", stopped_by_the_gate)
    monkeypatch.setattr(priced, "_uniform_prices", uniform_prices)
    prep = prepare(generate(150, 60, seed=seed, programmes=3, binding_budgets=True))
    _reported_bounds(prep)
    assert generated and generated[0].passes >= priced.MASTER_FIRST_PASSES and generated[0].master is not None
    # The last master's prices were evaluated first, then the line search, if there was time for it.
    assert line_search_after in ([], [1])
    m, lp = generated[0].master.m, generated[0].master.lp
    assert np.allclose(evaluated[0][0], priced.prices_from_matrix(relax(prep), m, lp.price))


def _watch_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[tuple[np.ndarray, float]], list[tuple[np.ndarray, int]]]:
    """Records every price the lagrange strategy's bound is evaluated at, with its bound, and the price its
    subgradient steps start from, with how many evaluations came before (the real functions do the work)."""
    evaluated: list[tuple[np.ndarray, float]] = []
    started_at: list[tuple[np.ndarray, int]] = []
    evaluate = priced.network_bound

    def network_bound(*args: Any) -> Any:
        found = evaluate(*args)
        evaluated.append((np.array(args[4], copy=True), float(found.bound)))
        return found

    class Subgradient(priced.Subgradient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started_at.append((np.array(self.price, copy=True), len(evaluated)))

    monkeypatch.setattr(priced, "network_bound", network_bound)
    monkeypatch.setattr(priced, "Subgradient", Subgradient)
    return evaluated, started_at


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


@pytest.mark.parametrize("seed", range(4))
def test_a_grown_master_starts_from_the_last_masters_basis(seed: int) -> None:
    """The next master renumbers the part's pairs; its columns and rows are found again by the whole round's labels,
    keep their status, and GLOP goes on from there: the same optimum as from scratch, in fewer pivots."""
    prep = prepare(generate(120, 60, seed=seed, programmes=3, binding_budgets=True))
    values = combined_values(prep, objective_tiers(prep))
    keep = part_pairs(prep, values, 1)
    sub, fund = restrict(prep, keep)
    m = build_matrix(sub)
    first = solve_lp(m, m.objective(values[keep]))
    assert first.ok and first.basis is not None
    grown = np.union1d(keep, np.arange(0, len(prep.pairs), 3))  # a third of the round's pairs join
    sub2, fund2 = restrict(prep, grown)
    m2 = build_matrix(sub2)
    cols, rows = labels(prep, keep, fund, m)
    cols2, rows2 = labels(prep, grown, fund2, m2)
    start = carried_basis(Master(keep, sub, fund, m, first, (cols, rows)), (cols2, rows2))
    assert start is not None and start.basic_count() == len(m2.lb)
    assert len(np.unique(cols2)) == len(cols2) and len(np.unique(rows2)) == len(rows2)
    same = np.flatnonzero(np.isin(cols2, cols))
    assert len(same) == len(cols)  # every column of the part is in the grown master, with its status
    order = np.argsort(cols)
    before = order[np.searchsorted(cols, cols2[same], sorter=order)]
    assert (start.columns[same] == first.basis.columns[before]).all()
    kept = np.flatnonzero(np.isin(rows2, rows))
    order = np.argsort(rows)
    assert (start.rows[kept] == first.basis.rows[order[np.searchsorted(rows, rows2[kept], sorter=order)]]).all()
    c2 = m2.objective(values[grown])
    cold = solve_lp(m2, c2, parameters=WARM_PARAMETERS)
    warm = solve_lp(m2, c2, parameters=WARM_PARAMETERS, start=start)
    assert warm.ok and warm.value == pytest.approx(cold.value, rel=1e-9)
    assert warm.iterations < cold.iterations


def test_a_deterministic_pass_joins_the_best_two_funding_columns_per_pair() -> None:
    joins = np.array([True, True, True, False, True, True, False, True])
    profit = np.array([5.0, 9.0, 7.0, 99.0, 1.0, 2.0, 50.0, 3.0])
    pair = np.array([0, 0, 0, 0, 1, 1, 2, 3])
    kept = _best_per_pair(joins, profit, pair, 2)
    # Pair 0: its two best joining columns (9 and 7; 99 does not join); pair 1 both; pair 3 its one.
    assert np.flatnonzero(kept).tolist() == [1, 2, 4, 5, 7]


def test_on_the_clock_two_columns_per_pair_join_only_where_three_passes_are_expected_to_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Joining two funding columns per pair makes the better third master but a worse second, which is all a
    round has when its third pass does not fit: a round on the clock pairs only where, after its first LP, the
    second LP and the third's first round of sifting (a solution of the round already) are expected to end by the
    LP deadline."""
    # The second LP (4 times the first) and the third's first round of sifting (as long as the second).
    assert pairgen.three_passes_fit(100.0, 8.0, 100.0 + 8.0 * 4.0 * 2.0)
    assert not pairgen.three_passes_fit(100.0, 8.0, 100.0 + 8.0 * 4.0 * 2.0 - 1.0)
    assert pairgen.growth(1, paired=True) < pairgen.growth(1, paired=False)  # a paired second master is smaller
    for passes in (1, 2, 3):  # a first round of sifting ends before the whole LP
        for paired in (True, False):
            sifting, whole = pairgen.growth(passes, paired, sifts=True), pairgen.growth(passes, paired)
            assert sifting <= whole and (sifting < whole or passes == 3)
    prep = prepare(generate(150, 60, seed=3, programmes=3, binding_budgets=True))
    values = combined_values(prep, objective_tiers(prep))
    keep = part_pairs(prep, values, 1)
    paired_passes: list[int] = []
    real = pairgen._best_per_pair

    def best_per_pair(*args: Any) -> Any:
        paired_passes.append(len(paired_passes) + 1)
        return real(*args)

    monkeypatch.setattr(pairgen, "_best_per_pair", best_per_pair)
    now = time.monotonic()
    found = generate_pairs(prep, relax(prep), values, keep, now + 60, 0.0, lp_deadline=now + 120)
    assert found.passes >= 2 and paired_passes  # a small round's LPs fit many times over: paired from the first
    paired_passes.clear()
    monkeypatch.setattr(pairgen, "three_passes_fit", lambda *args: False)
    found = generate_pairs(prep, relax(prep), values, keep, now + 60, 0.0, lp_deadline=now + 120)
    assert found.passes >= 2 and not paired_passes  # every column of positive profit joins


@pytest.mark.parametrize("seed", [620, 621, 622])
def test_a_pass_cut_short_while_sifting_ends_the_generation_with_its_last_rounds_master(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LP deadline may cut a pass in mid-sifting: the master it keeps is that of its last finished round, a
    solution of the round at least as good as the last master's, and the bound stays a bound."""
    prep = prepare(generate(120, 60, seed=seed, programmes=3, binding_budgets=True))
    values = combined_values(prep, objective_tiers(prep))
    m = build_matrix(prep)
    whole = solve_lp(m, m.objective(values))
    keep = part_pairs(prep, values, 1)
    sifting_cut_at(monkeypatch, 2)  # the second master's second round of sifting (the first master is not sifted)
    masters: list[float] = []
    found = generate_pairs(
        prep, relax(prep), values, keep, time.monotonic() + 60, 0.0, report=lambda value, _: masters.append(value)
    )
    assert found.partial and found.master is not None and found.master.lp.partial
    assert found.passes == 2 and len(masters) == 2 and not found.converged
    assert masters[1] >= masters[0] - 1e-6 * abs(masters[0])
    assert found.master.m.violation(found.master.lp.w) <= 1e-6
    assert found.bound >= whole.value - 1e-6 * abs(whole.value)
