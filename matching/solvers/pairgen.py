"""The LP of a round too large for one matrix, by column generation over pairs as well as funding rows.

At stress scale (5 M pairs, 20 M funding rows) the compact matrix of the whole round does not fit
(`matching.solvers.priced`). The master here is the compact matrix of a part of the round (`relaxed.restrict`): a
few pairs per candidate, with some of their funding columns. After each LP of the master, every pair of the whole
round is priced at the master's row prices in one vectorised pass: its value less its candidate's and its offer's
price, its cheapest priced funding and its cheapest priced supervisor. Each candidate's best pairs of positive
reduced profit join the part with their cheapest funding row at those prices, and the master's own funding columns of
positive reduced profit join too.

Each pass also proves a bound on the whole round, whatever the prices (`split_bound`): with every row but the
candidates' priced (offer slots, money, caps, seats), the best assignment is each candidate's best pair of positive
worth, and that sum plus the priced limits bounds every solution (a Lagrangian relaxation whose subproblem splits by
candidate). At the LP's optimal prices it is the LP's value, so the generation stops once it is within a tolerance
of the master's value. Measured on national:0 (2 cores, load 1-3): the LP's 1,198.44 placements, proven, in 5
passes and 6.4 s; measured again on 2026-12-02, 13.4 s from scratch and 4.2 s since each master starts from the
last one's basis (`carried_basis`). At stress scale a pass is slow (8 s, then 70 s for the second, whose master
reached 8,762 placements against 4,537, and 110 s for the third, 9,279; from scratch the second took 93-125 s;
since the masters are solved by sifting, `simplex._sift`, 36 s and 46 s), so there the passes a round can afford
decide both its solution and its bound (a deterministic round's four passes: 9,403 placements in the last master,
whose prices bound the round at 9,480).

A master solved by sifting has a solution of the round after each of its rounds of sifting, so a pass cut short by
the LP deadline keeps its last finished round's (`simplex.Simplex.partial`) and ends the generation there. On the
clock a pass therefore begins where the first round of its LP is expected to end in time (`growth`), not only
where the whole LP is. On a machine 1.6 times slower than usual (stress:0 at 300 s, prepare 50 s) the gate before
this expected only two passes to fit and the round ended at 8,788 placements, 17.6 % from its bound; now it joins
two columns per pair, three passes ran (the third LP in 87.5 s) and the round ended at 9,337, 1.70 %.

GLOP's dual simplex solves these masters from scratch about twice as fast as its primal one (stress, 74,000 rows x
400,000 columns: 11.8 s against 27.6 s; HiGHS 51 s by simplex, 81 s by interior point), so the first master takes
it; the later ones go on from the carried basis by the primal simplex, for which that basis is feasible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from matching.rules.prepare import Prepared
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.colgen import _TOL, DUAL_SIMPLEX, WARM_PARAMETERS, LpSolution, reduced_profit, solve_lp
from matching.solvers.greedy import pinned_pairs
from matching.solvers.matrix import KIND, RoundMatrix, build_matrix
from matching.solvers.relaxed import (
    Relaxed,
    Worths,
    first_at_least,
    first_per_candidate,
    prices_from_matrix,
    restrict,
    segment_min,
    worths,
)
from matching.solvers.simplex import AT_LOWER, BASIC, Basis, sifts

PAIRS_PER_PASS = 2  # new pairs per candidate and pass, at most
# Deterministic rounds: the first master and three grown from it, each pass joining at most the two best funding
# columns per pair of the master. At stress scale (2026-12-02, the masters solved by sifting) that gave masters of
# 4,537, 7,502, 9,347 and 9,403 placements, their LPs in 8.3, 22.4, 51.7 and 25.5 s (every column of positive
# profit: 4,537, 8,762, 9,278 and 9,358 in 7.9, 35.8, 46.2 and 26.3 s), and the fourth's prices bound the round at
# 9,480 placements.
DETERMINISTIC_PASSES = 4
DETERMINISTIC_JOINS = 2
# On the clock a pass begins only while its LP, estimated as the last one's time times a growth, would end by the
# LP deadline. Two columns per pair make the better masters from the third on, but a worse second (7,502 placements
# against 8,762), which is all a round has where the third pass does not fit. So a round on the clock joins two per
# pair only where, after the first LP, the second LP and the third's first round of sifting (below) are expected to
# fit (`three_passes_fit`), and every column of positive profit otherwise. The growths, measured at stress scale
# from the carried basis by sifting (two runs), with a margin for load: two per pair, the second LP 2.7-3.6 times
# the first, the third 2.3-2.5 times the second and the fourth half the third; every column, the second 4.5 times
# the first (16.6 from scratch, where at load 4 a second pass begun on 16 did not finish) and the later ones 1.3 and
# 0.6 times the one before.
PAIRED_GROWTH = (4.0, 3.0, 0.8)  # the second, the third and every later LP over the one before
SECOND_GROWTH = 6.0
GROWTH = 1.8
# A master solved by sifting has a solution of the round once its first round of sifting ends: a pass cut short by
# the LP deadline after that keeps it (`simplex.Simplex.partial`), so such a pass begins where that round is
# expected to end in time. Measured on the dumped stress masters (two columns per pair, 2026-12-02): the second's
# first round took 16.1 s of its 39.3 s, 1.9 times the first LP (8.3 s), and was worth 7,349 of its 7,502
# placements; the third's took 14.5 s of 76 s, 0.65 times the second LP (22.4 s), and was worth 9,166 of its 9,347,
# more than every column's second master (8,762). With a margin for load:
FIRST_ROUND_GROWTH = (2.5, 1.0)  # the second's first round over the first LP; every later one's over the last LP


def growth(passes: int, paired: bool, sifts: bool = False) -> float:
    """The next LP's expected time over the last one's, after `passes` passes (on the clock); `sifts`: that of its
    first round of sifting (no longer than the whole LP's)."""
    whole = _whole_growth(passes, paired)
    return min(whole, FIRST_ROUND_GROWTH[min(passes, len(FIRST_ROUND_GROWTH)) - 1]) if sifts else whole


def _whole_growth(passes: int, paired: bool) -> float:
    if paired:
        return PAIRED_GROWTH[min(passes, len(PAIRED_GROWTH)) - 1]
    return SECOND_GROWTH if passes == 1 else GROWTH


def three_passes_fit(now: float, first_lp: float, lp_deadline: float) -> bool:
    """Whether a round on the clock whose first LP took `first_lp` seconds may join two columns per pair: its
    second LP and the third's first round of sifting are expected to end by `lp_deadline`."""
    second = PAIRED_GROWTH[0] * first_lp
    return now + second + FIRST_ROUND_GROWTH[1] * second <= lp_deadline


@dataclass(frozen=True)
class Master:
    """One master LP: the part of the round, its compact matrix, the columns in it and its solution."""

    keep: IntArray  # the part's pairs, as indexes of the whole round's
    sub: Prepared  # the round restricted to them
    fund: IntArray  # per funding row of `sub`, the whole round's funding row
    m: RoundMatrix  # of `sub`
    lp: LpSolution  # over some of the columns of `m` (the others held at 0)
    labels: tuple[IntArray, IntArray]  # of the columns and rows of `m` in the whole round (`labels`)


@dataclass(frozen=True)
class PairLp:
    """What the generation found: the last master solved and the best bound on the whole round."""

    master: Master | None  # None when not even the first LP finished in time
    bound: float  # inf when no pass finished
    passes: int  # of the last master
    converged: bool  # the bound is within the tolerance of the last master's value (or nothing prices in)
    partial: bool = False  # the last master's LP was cut short while sifting: its last round's optimum


def split_bound(
    prep: Prepared, r: Relaxed, w: Worths, price: FloatArray, offer_price: FloatArray
) -> tuple[float, FloatArray]:
    """The Lagrangian bound at these prices (every row but the candidates' priced; `w` the pairs' worths at `price`),
    and each pair's worth less its offer's price. Valid for any prices >= 0."""
    pairs = prep.pairs
    worth = w.worth - offer_price[pairs.offer]
    starts = np.searchsorted(pairs.cand, np.arange(len(prep.instance.candidates) + 1))  # pairs sorted by candidate
    best = np.maximum(0.0, -segment_min(-worth, starts))  # a candidate without a pair of positive worth: 0
    pins = np.asarray(pinned_pairs(prep), dtype=np.int64)
    best[pairs.cand[pins]] = worth[pins]  # a pinned candidate takes that pair, whatever it is worth
    slots = prep.tables.offers.slots.astype(np.float64)
    return float(best.sum() + offer_price @ slots + price @ r.rhs), worth


# Rows owned by a pair: their owner is a pair of the part, which is numbered anew in each master.
PAIR_ROWS = np.array([KIND[k] for k in ("supervisor_choice", "funding_choice", "no_blocking", "pin")])


def labels(prep: Prepared, keep: IntArray, fund: IntArray, m: RoundMatrix) -> tuple[IntArray, IntArray]:
    """The columns and rows of a master (`m` of the part `keep`, `fund` its funding rows in the whole round's
    numbering) as keys of the whole round: the same column or row has the same key in every master."""
    options = np.flatnonzero(np.isin(prep.supervisors.pair, keep))  # as `restrict` numbers the part's options
    overflow = np.array([p * (1 << 20) + e for p, e in m.overflow], dtype=np.int64)
    whole = np.concatenate([keep[m.x_pairs], options[m.sup_rows], fund[m.fund_rows], overflow])
    block = np.repeat(np.arange(4), [len(m.x_pairs), len(m.sup_rows), len(m.fund_rows), len(m.overflow)])
    owner = np.where(np.isin(m.kind, PAIR_ROWS), keep[np.minimum(m.owner, len(keep) - 1)], m.owner)
    return block * (1 << 60) + whole, (m.kind * (1 << 58)) + (owner + 1) * (1 << 20) + (m.detail + 1)


def carried_basis(last: Master, labelled: tuple[IntArray, IntArray]) -> Basis | None:
    """The last master's basis on the next master, whose columns and rows have the labels `labelled`: they keep their
    status, the new columns are at zero and the new rows' slacks basic (primal feasible where the new rows hold at
    zero). None where it is not a basis of the next master (a row merged differently) or the last master has none."""
    if last.lp.basis is None:
        return None
    (old_cols, old_rows), (new_cols, new_rows) = last.labels, labelled
    columns = _carried(old_cols, last.lp.basis.columns, new_cols, AT_LOWER)
    rows = _carried(old_rows, last.lp.basis.rows, new_rows, BASIC)
    basis = Basis(columns, rows)
    return basis if basis.basic_count() == len(new_rows) else None


def _carried(old: IntArray, status: IntArray, new: IntArray, default: int) -> IntArray:
    """Per new key, the status of the same old key, else `default`."""
    order = np.argsort(old, kind="stable")
    at = np.minimum(np.searchsorted(old, new, sorter=order), len(old) - 1)
    found = order[at]
    return np.where(old[found] == new, status[found], default).astype(np.int64)


def _best_per_pair(joins: BoolArray, profit: FloatArray, pair: IntArray, most: int) -> BoolArray:
    """Of the joining columns, the `most` of highest profit per pair."""
    at = np.flatnonzero(joins)
    order = at[np.lexsort((-profit[at], pair[at]))]
    out = np.zeros_like(joins)
    out[first_per_candidate(order, pair, most)] = True
    return out


def row_prices(m: RoundMatrix, price: FloatArray, kind: str, owners: int) -> FloatArray:
    """Per owner, the (non-negative) price of the master's row of this kind; 0 where it has none."""
    out = np.zeros(owners)
    rows = np.flatnonzero(m.kind == KIND[kind])
    out[m.owner[rows]] = np.maximum(0.0, price[rows])
    return out


def cheapest_funding(prep: Prepared, r: Relaxed, cost: FloatArray, pairs: IntArray) -> IntArray:
    """The funding row of least `cost` (per funding row) of each of these pairs that pays from a limited budget."""
    wanted = np.zeros(len(prep.pairs), dtype=bool)
    wanted[pairs] = True
    wanted &= ~r.free_money
    rows = first_at_least(cost, segment_min(cost, r.fund_start), prep.pairs.fund_pair, wanted)[wanted]
    return rows[rows >= 0]


def generate_pairs(
    prep: Prepared,
    r: Relaxed,
    values: IntArray,
    keep: IntArray,
    deadline: float,
    tolerance: float,
    report: Callable[[float, float], None] | None = None,
    lp_deadline: float | None = None,
    work: float | None = None,
) -> PairLp:
    """Column generation over pairs and funding rows from the part `keep` (sorted, with the pins) until the bound is
    within `tolerance` of the master's value, until `deadline` (monotonic): a pass begins before it, when its LP is
    expected to end by `lp_deadline` (default: `deadline`), and may run its LP until then. `report(master value,
    bound)` after each pass.

    On the clock a pass joins at most DETERMINISTIC_JOINS funding columns per pair where `three_passes_fit` after
    the first LP, and every column of positive profit otherwise.

    `work` (deterministic rounds): no clock decides instead. At most DETERMINISTIC_PASSES passes, each LP within
    `work` seconds of GLOP's deterministic time and joining at most DETERMINISTIC_JOINS funding columns per pair;
    the deadlines are then only guards."""
    lp_deadline = deadline if lp_deadline is None else max(deadline, lp_deadline)
    budget = "" if work is None else f" max_deterministic_time:{work}"
    parameters, warm_parameters = DUAL_SIMPLEX + budget, WARM_PARAMETERS + budget
    pairs = prep.pairs
    fund_active = np.zeros(len(pairs.fund_pair), dtype=bool)
    fund_active[cheapest_funding(prep, r, pairs.fund_grant.astype(np.float64), keep)] = True
    scale = max(1.0, float(np.abs(values).max(initial=0.0)))
    master: Master | None = None
    best, passes, lp_seconds = math.inf, 0, 0.0
    paired = work is not None  # two funding columns per pair join (on the clock: decided after the first LP)
    while True:
        now = time.monotonic()
        if work is None:
            # The least a pass needs: the first round of sifting of its LP (checked again once the master is built).
            if now >= deadline or now + growth(passes, paired, sifts=True) * lp_seconds > lp_deadline:
                return PairLp(master, best, passes, False)
        elif passes == DETERMINISTIC_PASSES or now >= deadline:
            return PairLp(master, best, passes, False)
        sub, fund = restrict(prep, keep)
        m = build_matrix(sub)
        c = m.objective(values[keep])
        active = np.ones(m.n_cols, dtype=bool)
        active[m.y_at : m.o_at] = fund_active[fund[m.fund_rows]]
        columns = np.flatnonzero(active)
        # Each master's labels once: for its own start here, and for the next master's.
        labelled = labels(prep, keep, fund, m)
        start = carried_basis(master, labelled) if master is not None else None
        began = time.monotonic()
        whole = work is None and master is not None and not (start is not None and sifts(len(columns), len(m.lb)))
        if whole and began + growth(passes, paired) * lp_seconds > lp_deadline:
            return PairLp(master, best, passes, False)  # not solved by sifting: the whole LP must fit in time
        lp = solve_lp(
            m,
            c,
            columns,
            time_limit=lp_deadline - began,
            parameters=parameters if start is None else warm_parameters,
            start=start,
        )
        lp_seconds = time.monotonic() - began
        if not lp.ok:
            return PairLp(master, best, passes, False)
        master, passes = Master(keep, sub, fund, m, lp, labelled), passes + 1
        if work is None and passes == 1:
            paired = three_passes_fit(time.monotonic(), lp_seconds, lp_deadline)
        price = prices_from_matrix(r, m, lp.price)
        w = worths(r, values, price)
        bound, worth = split_bound(prep, r, w, price, row_prices(m, lp.price, "offer", len(prep.instance.offers)))
        best = min(best, bound)
        if report is not None:
            report(lp.value, best)
        if best - lp.value <= tolerance:
            return PairLp(master, best, passes, True)
        if lp.partial:
            return PairLp(master, best, passes, False, partial=True)  # cut short by the LP deadline
        # The master's own funding columns of positive reduced profit (unless paired all of them: adding only the
        # best one per pair took twice the passes at national size), then new pairs.
        profit_y = reduced_profit(m, c, lp.price)[m.y_at : m.o_at]
        joins = ~active[m.y_at : m.o_at] & (profit_y > _TOL * scale)
        if paired:
            joins = _best_per_pair(joins, profit_y, sub.pairs.fund_pair[m.fund_rows], DETERMINISTIC_JOINS)
        fund_active[fund[m.fund_rows[joins]]] = True
        profit = worth - row_prices(m, lp.price, "candidate", len(prep.instance.candidates))[pairs.cand]
        outside = np.ones(len(pairs), dtype=bool)
        outside[keep] = False
        among = np.flatnonzero(outside & (profit > _TOL * scale))
        new = first_per_candidate(among[np.lexsort((-profit[among], pairs.cand[among]))], pairs.cand, PAIRS_PER_PASS)
        if not len(new) and not joins.any():
            # Nothing prices in: the master's LP is the whole round's (and the bound its value, up to rounding).
            return PairLp(master, best, passes, True)
        fund_active[cheapest_funding(prep, r, w.fund_cost, new)] = True
        keep = np.union1d(keep, new)
