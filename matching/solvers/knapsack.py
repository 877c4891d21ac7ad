"""A bound stronger than the LP where the round is GAP-like: the candidate rows priced, knapsacks solved exactly.

Price every candidate row (a candidate placed at most once, or exactly once where a tier holds everyone placed)
with a multiplier `u`. What is left of the round is relaxed further, which keeps the bound valid: each placing
column is kept in one row only, its tightest `<=` row with non-negative integer coefficients (a budget, seats,
slots), and dropped from every other row; rows that are not such knapsacks are dropped whole. The rest falls apart
into independent 0/1 knapsacks, one per kept row, each solved exactly by dynamic programming over its integer
capacity; a column in no kept row is taken when its priced value is positive. For any `u` (of the right sign)

    L(u) = sum_j (ub_j max(u_j, 0) + lb_j min(u_j, 0)) + sum_k knapsack_k(c - u A_cand)

is an upper bound on the round's optimum, because every step only dropped constraints or priced them. At the LP's
prices it is at least the LP bound minus nothing the knapsacks cannot see, and the knapsacks' integrality is what
the LP misses: on generalized assignment (each agent a budget row) this is the classic relaxation of the
assignment constraints, whose bound is the LP's or stronger. Subgradient steps on `u` tighten it.

It applies only where the columns are 0/1 and the knapsack tables stay small (`MAX_CELLS`); national rounds'
budgets are in kronor and would not fit, and there the function returns None.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.matrix import KIND, RoundMatrix

MAX_CELLS = 40_000_000  # items x capacity of the knapsack tables per evaluation, at most
MAX_FORCING_CELLS = 4_000_000  # items x capacity of each of the two tables `forcing_costs` keeps, at most


@dataclass(frozen=True)
class Knapsacks:
    """The relaxation's structure: priced rows, and each kept row's items (padded to the longest row)."""

    priced: IntArray  # rows priced by u (the candidate rows)
    cand: sp.csr_array  # priced rows x columns
    lb: FloatArray  # of the priced rows
    ub: FloatArray
    capacity: IntArray  # per kept row
    item_col: IntArray  # kept rows x items: column, -1 for padding
    item_weight: IntArray  # kept rows x items
    loose: IntArray  # columns in no kept row


@dataclass(frozen=True)
class KnapsackBound:
    """The best bound found, the prices that gave it, how many evaluations it took, and the relaxation."""

    bound: float
    price: FloatArray  # per priced row
    steps: int
    seconds: float
    relaxation: Knapsacks


def knapsacks(m: RoundMatrix) -> Knapsacks | None:
    """The relaxation of `m`, or None where it does not apply (columns not 0/1, tables too large)."""
    if m.n_cols == 0 or not (m.integer.all() and (m.col_lb == 0).all() and (m.col_ub == 1).all()):
        return None
    a = sp.csr_array(m.a)
    priced = np.flatnonzero(m.kind == KIND["candidate"])
    rest = np.setdiff1d(np.arange(len(m.lb)), priced)
    sub = sp.csr_array(a[rest])
    data_ok = np.ones(len(rest), dtype=bool)
    nnz_row = np.repeat(np.arange(len(rest)), np.diff(sub.indptr))
    bad = (sub.data < 0) | (np.abs(sub.data - np.round(sub.data)) > 1e-9)
    data_ok[nnz_row[bad]] = False
    # A `<=` row: nothing below it binds for 0/1 columns with non-negative coefficients.
    knapsack = data_ok & np.isfinite(m.ub[rest]) & (m.ub[rest] >= 0) & (m.lb[rest] <= 0)
    if not knapsack[np.isfinite(m.ub[rest])].all():
        # A row with an upper bound that is no knapsack (negative or fractional coefficients, a floor) would be
        # dropped whole: the bound would be weaker than the LP's. Rows that only hold a floor may go.
        return None
    rows = rest[knapsack]
    k = sp.csr_array(a[rows])
    capacity = np.floor(m.ub[rows] + 1e-9).astype(np.int64)
    # Each column in its tightest kept row (largest total weight per capacity).
    tight = np.asarray(k.sum(axis=1)).ravel() / np.maximum(capacity, 1)
    coo = sp.coo_array(k)
    order = np.lexsort((-tight[coo.row], coo.col))
    col_sorted = coo.col[order]
    first = np.r_[True, col_sorted[1:] != col_sorted[:-1]] if len(col_sorted) else np.zeros(0, dtype=bool)
    kept = order[first]
    item_row, item_col, item_w = coo.row[kept], coo.col[kept], np.round(coo.data[kept]).astype(np.int64)
    # Items heavier than their row's capacity never fit: drop them from the knapsack, and from the problem's
    # columns too (they are forced to 0 in the relaxation, as in every solution).
    fits = item_w <= capacity[item_row]
    counts = np.bincount(item_row[fits], minlength=len(rows))
    width = int(counts.max(initial=0))
    if len(rows) * width * (int(capacity.max(initial=0)) + 1) > MAX_CELLS:
        return None
    item_matrix = np.full((len(rows), width), -1, dtype=np.int64)
    weight_matrix = np.zeros((len(rows), width), dtype=np.int64)
    r, cidx, wt = item_row[fits], item_col[fits], item_w[fits]
    by_row = np.argsort(r, kind="stable")
    r, cidx, wt = r[by_row], cidx[by_row], wt[by_row]
    position = np.arange(len(r)) - np.repeat(np.cumsum(counts) - counts, counts)
    item_matrix[r, position] = cidx
    weight_matrix[r, position] = wt
    in_row = np.zeros(m.n_cols, dtype=bool)
    in_row[item_col] = True
    return Knapsacks(
        priced=priced,
        cand=sp.csr_array(a[priced]),
        lb=m.lb[priced],
        ub=m.ub[priced],
        capacity=capacity,
        item_col=item_matrix,
        item_weight=weight_matrix,
        loose=np.flatnonzero(~in_row),
    )


def evaluate(ks: Knapsacks, c: FloatArray, u: FloatArray) -> tuple[float, BoolArray]:
    """L(u) and the columns the relaxation takes at `u` (0/1 per column)."""
    profit = c - ks.cand.T @ u
    # Prices are 0 where their side has no bound (`_project`), so an infinite side never enters.
    ub = np.where(np.isfinite(ks.ub), ks.ub, 0.0)
    lb = np.where(np.isfinite(ks.lb), ks.lb, 0.0)
    constant = float(ub @ np.maximum(u, 0.0) + lb @ np.minimum(u, 0.0))
    take = np.zeros(len(c), dtype=bool)
    take[ks.loose] = profit[ks.loose] > 0
    total = constant + float(profit[ks.loose][take[ks.loose]].sum())
    if ks.item_col.size:
        value, chosen = _knapsacks(ks, profit)
        total += value
        take[chosen] = True
    return total, take


def _knapsacks(ks: Knapsacks, profit: FloatArray) -> tuple[float, IntArray]:
    """Every kept row's 0/1 knapsack at the given column values, solved exactly; total and chosen columns.

    All rows at once: item t of every row is tried in one step on a (rows x capacity) table. Items of positive
    value only, in the order of their value, so the loop is as long as the longest row's useful items."""
    items = _Items.of(ks, profit)
    table = np.zeros((items.rows, items.cap + 1))
    took = np.zeros((items.steps, items.rows, items.cap + 1), dtype=bool)
    for t in range(items.steps):
        offered = items.offer(table, t)
        took[t] = offered > table
        table = offered
    total = float(table[np.arange(items.rows), ks.capacity].sum())
    chosen: list[IntArray] = []
    at = ks.capacity.copy()
    for t in range(items.steps - 1, -1, -1):
        hit = took[t, np.arange(items.rows), at]
        chosen.append(items.cols[hit, t])
        at = at - np.where(hit, items.weight[:, t], 0)
    return total, np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class _Items:
    """Each kept row's items by falling value at some prices (padding last, at minus infinity), and how many steps
    take every row's items of positive value; the knapsack tables are (rows x capacity + 1)."""

    value: FloatArray
    cols: IntArray
    weight: IntArray
    steps: int
    cap: int

    @staticmethod
    def of(ks: Knapsacks, profit: FloatArray) -> _Items:
        value = np.where(ks.item_col >= 0, profit[np.maximum(ks.item_col, 0)], -np.inf)
        order = np.argsort(-value, axis=1, kind="stable")
        value = np.take_along_axis(value, order, axis=1)
        return _Items(
            value=value,
            cols=np.take_along_axis(ks.item_col, order, axis=1),
            weight=np.take_along_axis(ks.item_weight, order, axis=1),
            steps=int((value > 0).sum(axis=1).max(initial=0)),
            cap=int(ks.capacity.max(initial=0)),
        )

    @property
    def rows(self) -> int:
        return int(self.value.shape[0])

    def offer(self, table: FloatArray, t: int) -> FloatArray:
        """The table (best value within each capacity) with item t of every row offered, where its value is
        positive."""
        reach = np.arange(self.cap + 1)
        source = reach[None, :] - self.weight[:, t][:, None]
        rows = np.arange(self.rows)[:, None]
        with_item = np.where(source >= 0, table[rows, np.maximum(source, 0)] + self.value[:, t][:, None], -np.inf)
        return np.where((with_item > table) & (self.value[:, t][:, None] > 0), with_item, table)


def knapsack_bound(
    m: RoundMatrix,
    c: FloatArray,
    start: FloatArray,
    target: float,
    seconds: float,
    steps: int = 300,
) -> KnapsackBound | None:
    """Subgradient descent of L(u) from `start` (prices of the candidate rows), with Polyak steps towards `target`
    (a known solution's value); the best bound found, or None where the relaxation does not apply."""
    started = time.monotonic()
    ks = knapsacks(m)
    if ks is None:
        return None
    u = _project(ks, start.astype(np.float64))
    best_u, best = u, math.inf
    scale, stalled = 1.0, 0
    done = 0
    while done < steps:
        done += 1
        value, take = evaluate(ks, c, u)
        if value < best - 1e-9:
            best, best_u, stalled = value, u, 0
        else:
            stalled += 1
            if stalled >= 8:
                scale, stalled = scale / 2, 0
        g = _subgradient(ks, u, ks.cand @ take.astype(np.float64))
        norm = float(g @ g)
        if norm == 0 or best - target <= 1e-6 or scale < 1e-4 or time.monotonic() - started > seconds:
            break
        u = _project(ks, u - scale * max(value - target, 1e-6) / norm * g)
    return KnapsackBound(best, best_u, done, time.monotonic() - started, ks)


def _subgradient(ks: Knapsacks, u: FloatArray, activity: FloatArray) -> FloatArray:
    """A subgradient of L at u: the bound the price's sign relaxes less the row's activity (at a price of 0, the
    violated side's, or 0)."""
    ub = np.where(np.isfinite(ks.ub), ks.ub, activity)
    lb = np.where(np.isfinite(ks.lb), ks.lb, activity)
    at_zero = np.where(activity > ub, ub - activity, np.where(activity < lb, lb - activity, 0.0))
    return np.where(u > 0, ub - activity, np.where(u < 0, lb - activity, at_zero))


def _project(ks: Knapsacks, u: FloatArray) -> FloatArray:
    """Prices of the right sign: none below 0 on a row without a lower bound, none above 0 without an upper."""
    u = np.where(np.isfinite(ks.lb), u, np.maximum(u, 0.0))
    return np.where(np.isfinite(ks.ub), u, np.minimum(u, 0.0))


def held_bound(
    held: RoundMatrix,
    full: FloatArray,
    open_values: FloatArray,
    price: FloatArray,
    incumbent: FloatArray,
    seconds: float,
) -> KnapsackBound | None:
    """The knapsack bound on the open tiers' objective `open_values` (per column) of a round whose proven tiers are
    held as rows (`held`), starting from the LP's row prices `price` (of the rows before the held ones) of the
    weighted objective `full`, with the candidate prices that gave it. None where the relaxation does not apply.

    The start prices each candidate at its best column's value less the other rows' prices (what the LP's own
    Lagrangian bound charges it), less what the held tiers pay per placement there. Taking the LP's candidate
    prices themselves is worse where the LP stopped before the end: an early master's candidate prices and budget
    prices only make a good bound together (on 80 x 1,600 they started 128,000 above the LP bound)."""
    ks_rows = np.flatnonzero(held.kind == KIND["candidate"])
    others = np.zeros(len(held.lb))
    others[: len(price)] = price
    others[ks_rows] = 0.0
    reduced = full - held.a.T @ others
    entries = sp.coo_array(sp.csr_array(held.a)[ks_rows])
    best = np.full(len(ks_rows), -np.inf)
    np.maximum.at(best, entries.row, reduced[entries.col])
    paid = np.full(len(ks_rows), -np.inf)
    np.maximum.at(paid, entries.row, (full - open_values)[entries.col])
    start = np.where(np.isfinite(best), best, 0.0) - np.where(np.isfinite(paid), paid, 0.0)
    # A candidate row without a lower bound takes no negative price (before the held tier's share comes off).
    start = np.where(np.isfinite(held.lb[ks_rows]) & (held.lb[ks_rows] > 0), start, np.maximum(start, 0.0))
    return knapsack_bound(held, open_values, start, float(open_values @ incumbent), seconds)


def forcing_costs(ks: Knapsacks, c: FloatArray, u: FloatArray) -> FloatArray | None:
    """Per column, how far L(u) falls when the column is forced to 1: 0 for a column the relaxation takes, infinite
    for one that fits no knapsack. None where the tables would be too large (`MAX_FORCING_CELLS`).

    A cheap column is one a near-optimal solution of the relaxation can take, given what its knapsack must give up
    for it; this sees the knapsacks' integrality, which a column's LP reduced cost does not. A positive item's cost
    comes from the tables of the items before it and after it (the best knapsack with it, less the optimum); any
    other item's from the table of all positive ones, with its weight taken off the capacity."""
    profit = c - ks.cand.T @ u
    cost = np.full(len(c), np.inf)
    cost[ks.loose] = np.maximum(0.0, -profit[ks.loose])
    if not ks.item_col.size:
        return cost
    items = _Items.of(ks, profit)
    rows, steps, cap = items.rows, items.steps, items.cap
    value, cols, weight = items.value, items.cols, items.weight
    if (steps + 1) * rows * (cap + 1) > MAX_FORCING_CELLS:
        return None
    reach = np.arange(cap + 1)
    row_index = np.arange(rows)[:, None]
    before = np.zeros((steps + 1, rows, cap + 1))
    after = np.zeros((steps + 1, rows, cap + 1))
    for t in range(steps):
        before[t + 1] = items.offer(before[t], t)
    for t in range(steps - 1, -1, -1):
        after[t] = items.offer(after[t + 1], t)
    optimum = before[steps][np.arange(rows), ks.capacity]
    for t in range(steps):
        # The best knapsack holding item t: the items before it within some c, those after within what is left.
        left = ks.capacity - weight[:, t]
        rest = left[:, None] - reach[None, :]
        pairs = np.where(rest >= 0, before[t] + after[t + 1][row_index, np.maximum(rest, 0)], -np.inf)
        positive = value[:, t] > 0
        best = value[:, t] + pairs.max(axis=1)
        cost[cols[positive, t]] = np.maximum(0.0, optimum - best)[positive]
    row, item = np.nonzero((value <= 0) & (cols >= 0))
    best = value[row, item] + before[steps][row, ks.capacity[row] - weight[row, item]]
    cost[cols[row, item]] = np.maximum(0.0, optimum[row] - best)
    return cost
