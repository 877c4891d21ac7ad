"""Lagrangian relaxation of budgets, earmarks, caps, seats and side rows, with min-cost-flow subproblems.

Every row of `RoundMatrix` but the assignment rows (a candidate at most once, an offer within its slots) and the
supervisor choice gets a price. At given prices each pair is worth its value less the priced money, seats and side
rows of its best funding column and supervisor, and the best assignment at those worths is a min-cost flow. The
flow's value plus the priced right-hand sides is an upper bound for every price vector (valid at every step); a
subgradient method moves the prices towards the tightest one. The prices also guide primal solutions: the flow at
the final prices, repaired to feasibility by the greedy walk of `matching.greedy` (which checks every rule), then
filled up by value.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.flow import max_weight_assignment
from matching.solvers.greedy import Pick, Preference, place_in_order
from matching.solvers.matrix import KIND, RoundMatrix


@dataclass(frozen=True)
class LagrangeResult:
    """The best bound found, the prices that gave it, and the pairs the last subproblem placed."""

    bound: float
    price: FloatArray  # per row of the matrix (0 for the assignment and choice rows, which are kept)
    worth: FloatArray  # per pair, its value less the priced rows at `price` (best funding and supervisor)
    flow_pairs: IntArray  # the subproblem's assignment at `price`
    steps: int
    seconds: float


@dataclass(frozen=True)
class Structure:
    """Which rows are priced, and the columns that place each pair."""

    relaxed: BoolArray  # per row
    placing: IntArray  # columns that place a pair (x and y), with their pairs
    placing_pair: IntArray
    z_cols: IntArray
    z_pair: IntArray
    o_cols: IntArray


def structure(m: RoundMatrix) -> Structure:
    kept = np.isin(m.kind, [KIND["candidate"], KIND["offer"], KIND["supervisor_choice"]])
    placed = sp.coo_array(m.placed)
    z_cols = np.arange(m.z_at, m.y_at)
    return Structure(
        relaxed=~kept,
        placing=placed.col.astype(np.int64),
        placing_pair=placed.row.astype(np.int64),
        z_cols=z_cols,
        z_pair=m.prep.supervisors.pair[m.sup_rows],
        o_cols=np.arange(m.o_at, m.n_cols),
    )


def worths(m: RoundMatrix, s: Structure, c: FloatArray, price: FloatArray) -> tuple[FloatArray, IntArray, FloatArray]:
    """Per pair its worth at the prices, the best placing column of each pair, and each column's reduced profit."""
    profit = c - m.a.T @ np.where(s.relaxed, price, 0.0)
    n = m.n_pairs
    worth = np.full(n, -np.inf)
    np.maximum.at(worth, s.placing_pair, profit[s.placing])
    best_col = np.full(n, -1, dtype=np.int64)
    hit = profit[s.placing] >= worth[s.placing_pair]
    best_col[s.placing_pair[hit]] = s.placing[hit]
    if len(s.z_cols):
        z_best = np.full(n, -np.inf)
        np.maximum.at(z_best, s.z_pair, profit[s.z_cols])
        has_z = np.isfinite(z_best)
        worth[has_z] += z_best[has_z]
    return worth, best_col, profit


def evaluate(
    m: RoundMatrix, s: Structure, c: FloatArray, price: FloatArray
) -> tuple[float, FloatArray, IntArray, FloatArray]:
    """The Lagrangian bound at `price`, the subproblem's row activity, its pairs and the pairs' worths."""
    worth, best_col, profit = worths(m, s, c, price)
    pairs = m.prep.pairs
    gain = np.ceil(np.maximum(worth, 0.0)).astype(np.int64)  # rounded up: the bound stays valid
    chosen, total = max_weight_assignment(pairs.cand, pairs.offer, gain, m.prep.tables.offers.slots, [])
    chosen = chosen[gain[chosen] > 0]
    w = np.zeros(m.n_cols)
    w[best_col[chosen]] = 1.0
    if len(s.z_cols):
        z_best = np.full(m.n_pairs, -np.inf)
        np.maximum.at(z_best, s.z_pair, profit[s.z_cols])
        pick = (profit[s.z_cols] >= z_best[s.z_pair]) & np.isin(s.z_pair, chosen)
        _, first = np.unique(s.z_pair[pick], return_index=True)
        w[s.z_cols[np.flatnonzero(pick)[first]]] = 1.0
    o_gain = profit[s.o_cols]
    w[s.o_cols] = np.where(o_gain > 0, m.col_ub[s.o_cols], 0.0)
    rhs = np.where(price > 0, m.ub, np.where(price < 0, m.lb, 0.0))
    rhs = np.where(s.relaxed & np.isfinite(rhs), rhs, 0.0)
    bound = float(total) + float(np.maximum(o_gain, 0.0) @ m.col_ub[s.o_cols]) + float(price @ rhs)
    return bound, np.asarray(m.a @ w), chosen, worth


def subgradient(
    m: RoundMatrix,
    values: IntArray,
    seconds: float = 10.0,
    steps: int = 60,
    target: float | None = None,
    start: FloatArray | None = None,
    patience: int = 8,
) -> LagrangeResult:
    """Subgradient steps on the prices of every relaxed row; the best (lowest) bound seen and its prices."""
    started = time.monotonic()
    s = structure(m)
    c = m.objective(values)
    price = np.zeros(len(m.lb)) if start is None else np.where(s.relaxed, start, 0.0)
    up, lo = np.isfinite(m.ub), np.isfinite(m.lb)
    best = (math.inf, price, np.zeros(m.n_pairs), np.zeros(0, dtype=np.int64))
    theta, stall = 2.0, 0
    size = np.maximum(1.0, np.abs(np.where(up, m.ub, np.where(lo, m.lb, 1.0))))
    target = target if target is not None else 0.0
    done = 0
    for step_number in range(1, steps + 1):
        done = step_number
        bound, activity, chosen, worth = evaluate(m, s, c, price)
        if bound < best[0] - 1e-9 * max(1.0, abs(bound)):
            best, stall = (bound, price.copy(), worth, chosen), 0
        else:
            stall += 1
            if stall >= patience:
                theta, stall = theta / 2, 0
        # Row excess: above the upper bound pushes a <= price up, below the lower bound pushes a >= price down.
        over = np.where(up, activity - m.ub, 0.0)
        under = np.where(lo, m.lb - activity, 0.0)
        g = np.where(s.relaxed, np.where(over > 0, over, 0.0) - np.where(under > 0, under, 0.0), 0.0)
        eq = s.relaxed & (m.lb == m.ub)
        g[eq] = (activity - m.ub)[eq]
        # Rows with slack and a price pull the price back towards zero.
        slack_up = s.relaxed & up & (activity < m.ub) & (price > 0)
        g[slack_up] = (activity - m.ub)[slack_up]
        slack_lo = s.relaxed & lo & (activity > m.lb) & (price < 0)
        g[slack_lo] = (activity - m.lb)[slack_lo]
        # Rows are measured in their own units (SEK, seats, people): steps in relative terms treat them alike.
        g = g / size
        norm = float(g @ g)
        if norm < 1e-12 or time.monotonic() - started > seconds or theta < 1e-4:
            break
        step = theta * max(bound - target, 1e-6 * abs(bound)) / norm
        price = price + step * g / size
        price[~eq & up & ~lo] = np.maximum(price[~eq & up & ~lo], 0.0)
        price[~eq & lo & ~up] = np.minimum(price[~eq & lo & ~up], 0.0)
    return LagrangeResult(best[0], best[1], best[2], best[3], done, time.monotonic() - started)


def repair(m: RoundMatrix, result: LagrangeResult, values: IntArray, pins: list[int]) -> list[Pick]:
    """A feasible solution from the prices: the subproblem's pairs by worth, then every pair by worth, each placed
    if it still fits (supervisor and funding in order of their priced cost)."""
    prep = m.prep
    s = structure(m)
    _, _, profit = worths(m, s, m.objective(values), result.price)
    first = result.flow_pairs[np.argsort(-result.worth[result.flow_pairs], kind="stable")]
    rest = np.lexsort((-np.asarray(values), -result.worth))
    preference = priced_preference(m, profit)
    return place_in_order(prep, [*pins, *first, *rest], preference=preference)


def priced_preference(m: RoundMatrix, profit: FloatArray) -> Preference:
    """Supervisor and funding rows ordered by their reduced profit at the prices (unmodelled rows last)."""
    prep = m.prep
    sup = np.full(len(prep.supervisors.pair), -np.inf)
    sup[m.sup_rows] = profit[m.z_at : m.y_at]
    sup[prep.free_supervisor[prep.supervisors.pair] == prep.supervisors.choice] = np.inf
    fund = np.full(len(prep.pairs.fund_pair), -np.inf)
    fund[m.fund_rows] = profit[m.y_at : m.o_at]
    fund[prep.free_programme[prep.pairs.fund_pair] == np.arange(len(prep.pairs.fund_pair))] = np.inf
    return Preference(supervisor=sup, funding=fund)
