"""The Lagrangian relaxation of a prepared round's limits, on its arrays (no model, no matrix of the whole round).

Each row that can bind gets a price: each programme's budget, general money and earmarks, each (programme, unit)
cap and each supervisor's seats per month (`Relaxed`). At prices `p >= 0` a pair is worth its value less the priced
money of its cheapest funding row and the priced seats of its cheapest supervisor (`worths`); the best assignment at
those worths, plus `p` times the rows' limits, bounds every solution (weak duality), whatever `p` is. `evaluate`
finds that assignment by one min-cost flow (each candidate once, each offer within its slots); `network_bound` also
keeps the seats in the flow. `restrict` cuts a round down to some of its pairs (same rows), for the parts that the
strategies solve (`matching.solvers.priced`, `matching.solvers.pairgen`).

Earmarks: the model (`matching.model.spec`) spends an earmark's money first and its overflow from general money.
With the earmark's price at most its programme's general price, the relaxation never gains from overflow, so an
earmarked grant costs budget + earmark prices and any other grant budget + general prices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from ortools.graph.python import min_cost_flow

from matching.rules.eligibility import Eligible
from matching.rules.limits import NO_CAP
from matching.rules.prepare import Options, Prepared, SeatRow
from matching.rules.scoring import Scores
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.flow import max_weight_assignment
from matching.solvers.greedy import pinned_pairs
from matching.solvers.matrix import KIND, RoundMatrix

# Row kinds of the relaxation.
BUDGET, GENERAL, EARMARK, CAP, SEATS = range(5)


@dataclass(frozen=True)
class Relaxed:
    """The rows that can bind, as `<=` rows with a price each, and how pairs draw on them."""

    rhs: FloatArray  # per row: its limit
    kind: IntArray  # per row: BUDGET, GENERAL, EARMARK, CAP or SEATS
    general_of: IntArray  # per row: for an earmark, its programme's general row; else -1
    # Per funding row, the rows its grant draws on (len(rhs) where none: a price slot that stays 0).
    fund_budget: IntArray
    fund_draw: IntArray  # the general row, or the earmark row for an earmarked grant
    fund_cap: IntArray
    grant: FloatArray
    fund_start: IntArray  # per pair, its first funding row (funding rows are sorted by pair); n_pairs + 1 entries
    seats: sp.csr_array  # seat rows (relaxed rows of kind SEATS, in order) x supervisor option rows
    seat_at: int  # first row of kind SEATS
    sup_start: IntArray  # per pair, its first supervisor option row; n_pairs + 1 entries
    free_money: BoolArray  # per pair: a funding row whose rows can never bind
    free_seat: BoolArray  # per pair: a supervisor who can never run out of seats
    row_of: dict[tuple[int, int, int], int]  # (kind, owner, detail) -> row: programme, earmark or unit, or month

    @property
    def n_rows(self) -> int:
        """Priced rows."""
        return len(self.rhs)


def relax(prep: Prepared) -> Relaxed:
    """The binding rows of a prepared round, as `Relaxed`."""
    pairs, limits, inst = prep.pairs, prep.tables.limits, prep.instance
    n_prog, n_units = len(inst.programmes), max(1, len(inst.units))
    rhs: list[float] = []
    kind: list[int] = []
    general_of: list[int] = []

    row_of: dict[tuple[int, int, int], int] = {}

    def add(limit: float, what: int, owner: int, detail: int = -1, general: int = -1) -> int:
        rhs.append(float(limit))
        kind.append(what)
        general_of.append(general)
        row_of[(what, owner, detail)] = len(rhs) - 1
        return len(rhs) - 1

    budget_row = np.full(n_prog, -1, dtype=np.int64)
    general_row = np.full(n_prog, -1, dtype=np.int64)
    width = max([1, *(len(p.earmarks) for p in inst.programmes)])
    earmark_row = np.full((n_prog, width), -1, dtype=np.int64)
    for g in np.flatnonzero(prep.budget_binding).tolist():
        budget_row[g] = add(limits.budget_left(g), BUDGET, g)
        general_row[g] = add(float(limits.general_left[g]), GENERAL, g)
        for k in range(len(inst.programmes[g].earmarks)):
            earmark_row[g, k] = add(float(limits.earmark_left[g][k]), EARMARK, g, k, int(general_row[g]))
    cap_row = np.full((n_prog, n_units), -1, dtype=np.int64)
    for g, u in zip(*np.nonzero(prep.unit_cap_binding), strict=True):
        if limits.unit_cap_left[g, u] != NO_CAP:
            cap_row[g, u] = add(float(limits.unit_cap_left[g, u]), CAP, int(g), int(u))
    seat_at = len(rhs)
    seat_rows = _distinct_seat_rows(prep)
    for r in seat_rows:
        at = add(max(0, r.seats), SEATS, r.supervisor, r.month)
        for month in r.months:
            row_of[(SEATS, r.supervisor, month)] = at
    n = len(rhs)
    prog, mark = pairs.fund_programme, pairs.fund_earmark
    unit = prep.tables.offers.unit[pairs.offer[pairs.fund_pair]]

    def slot(rows: IntArray) -> IntArray:
        return np.where(rows >= 0, rows, n).astype(np.int32)

    draw = np.where(mark >= 0, earmark_row[prog, np.maximum(mark, 0)], general_row[prog])
    lengths = np.array([len(r.rows) for r in seat_rows], dtype=np.int64)
    members = np.concatenate([r.rows for r in seat_rows]) if seat_rows else np.zeros(0, dtype=np.int64)
    seats = sp.csr_array(
        (np.ones(len(members)), (np.repeat(np.arange(len(seat_rows)), lengths), members)),
        shape=(len(seat_rows), len(prep.supervisors.pair)),
    )
    n_pairs = len(pairs)
    return Relaxed(
        rhs=np.array(rhs, dtype=np.float64),
        kind=np.array(kind, dtype=np.int64),
        general_of=np.array(general_of, dtype=np.int64),
        fund_budget=slot(budget_row[prog]),
        fund_draw=slot(draw),
        fund_cap=slot(cap_row[prog, unit]),
        grant=pairs.fund_grant.astype(np.float64),
        fund_start=np.searchsorted(pairs.fund_pair, np.arange(n_pairs + 1)),
        seats=seats,
        seat_at=seat_at,
        sup_start=np.searchsorted(prep.supervisors.pair, np.arange(n_pairs + 1)),
        free_money=prep.free_programme >= 0,
        free_seat=prep.free_supervisor >= 0,
        row_of=row_of,
    )


# Row kinds of the compact matrix (`matching.solvers.matrix`) that are priced here, and the sign of their price.
_MATRIX_KINDS = {"budget": (BUDGET, 1.0), "general": (GENERAL, 1.0), "earmark": (EARMARK, -1.0)}
_MATRIX_KINDS |= {"unit_cap": (CAP, 1.0), "supervisor": (SEATS, 1.0)}


def prices_from_matrix(r: Relaxed, m: RoundMatrix, price: FloatArray) -> FloatArray:
    """Prices of the relaxed rows from LP prices of a compact matrix of (part of) the round, matched by label. An
    earmark row there is a `>=` row (its price is <= 0). Rows the matrix merged get the price of the row it kept."""
    out = np.zeros(r.n_rows)
    for name, (what, sign) in _MATRIX_KINDS.items():
        for i in np.flatnonzero(m.kind == KIND[name]).tolist():
            detail = -1 if what in (BUDGET, GENERAL) else int(m.detail[i])
            row = r.row_of.get((what, int(m.owner[i]), detail))
            if row is not None:
                out[row] = max(0.0, sign * float(price[i]))
    mark = np.flatnonzero(r.kind == EARMARK)
    out[mark] = np.minimum(out[mark], out[r.general_of[mark]])
    return out


@dataclass(frozen=True)
class _Seats:
    """Seat rows of one supervisor with the same option rows, merged at the fewest seats."""

    supervisor: int
    month: int  # the first of them
    months: list[int]
    rows: IntArray
    seats: int


def _distinct_seat_rows(prep: Prepared) -> list[_Seats]:
    """The seat rows of supervisors who can run out, those with the same option rows merged: priced apart, such
    rows split one price between them and the bound counts the larger limit (the compact matrix merges them too,
    so its LP prices map onto them)."""
    out: list[_Seats] = []
    seen: dict[tuple[int, bytes], int] = {}
    for r in prep.seat_rows:
        if not prep.supervisors.binding[r.supervisor]:
            continue
        key = (r.supervisor, np.sort(r.rows).tobytes())
        if key in seen:
            kept = out[seen[key]]
            kept.months.append(r.month)
            out[seen[key]] = _Seats(r.supervisor, kept.month, kept.months, kept.rows, min(kept.seats, r.seats))
            continue
        seen[key] = len(out)
        out.append(_Seats(r.supervisor, r.month, [r.month], r.rows, r.seats))
    return out


@dataclass(frozen=True)
class Priced:
    """One evaluation of the relaxation at a price vector."""

    bound: float  # the Lagrangian bound (valid for every price vector)
    worth: FloatArray  # per pair: value less its cheapest priced funding and supervisor
    chosen: IntArray  # the subproblem's pairs
    activity: FloatArray  # per row: what the subproblem's pairs draw
    fund_cost: FloatArray  # per funding row: its priced money
    option_cost: FloatArray  # per supervisor option row: its priced seats


def first_per_candidate(order: IntArray, cand: IntArray, most: int) -> IntArray:
    """Of pairs in `order` (grouped by candidate, best first within each), each candidate's first `most`."""
    rank = np.arange(len(order)) - np.searchsorted(cand[order], cand[order])
    return order[rank < most]


def segment_min(cost: FloatArray, start: IntArray) -> FloatArray:
    """Per segment [start[i], start[i + 1]) the least cost (inf for an empty segment)."""
    out = np.full(len(start) - 1, np.inf)
    full = start[:-1] < start[1:]
    if len(cost):
        out[full] = np.minimum.reduceat(cost, start[:-1][full])
    return out


def first_at_least(cost: FloatArray, best: FloatArray, owner: IntArray, wanted: BoolArray) -> IntArray:
    """Per wanted owner, the first row whose cost is its best (rows sorted by owner); -1 where there is none."""
    rows = np.flatnonzero(wanted[owner] & (cost <= best[owner]))
    first = np.full(len(best), -1, dtype=np.int64)
    first[owner[rows[::-1]]] = rows[::-1]
    return first


@dataclass(frozen=True)
class Worths:
    """What each pair is worth at some prices: its value less its cheapest priced funding and seats."""

    fund_cost: FloatArray  # per funding row: its grant at the prices of the rows it draws on
    money: FloatArray  # per pair: its cheapest funding row's cost (0 where no money row can bind)
    option_cost: FloatArray  # per supervisor option: its priced seats
    seat: FloatArray  # per pair: its cheapest option's cost (0 where no seat row can bind)
    worth: FloatArray  # per pair: value - money - seat
    gain: IntArray  # per pair: worth rounded up (so the flow's integer value stays above the relaxation's), >= 0


def worths(r: Relaxed, values: IntArray, price: FloatArray) -> Worths:
    p = np.append(price, 0.0)
    fund_cost = r.grant * (p[r.fund_budget] + p[r.fund_draw] + p[r.fund_cap])
    money = segment_min(fund_cost, r.fund_start)
    money[r.free_money] = 0.0
    option_cost = r.seats.T @ price[r.seat_at :] if r.seats.shape[0] else np.zeros(r.seats.shape[1])
    seat = segment_min(option_cost, r.sup_start)
    seat[r.free_seat] = 0.0
    worth = values - money - seat
    gain = np.where(worth > 0, np.ceil(worth), 0).astype(np.int64)
    return Worths(fund_cost, money, option_cost, seat, worth, gain)


def evaluate(prep: Prepared, r: Relaxed, values: IntArray, price: FloatArray) -> Priced:
    """The relaxation at `price`: one min-cost flow over every pair."""
    w = worths(r, values, price)
    gain = w.gain
    pins = pinned_pairs(prep)
    chosen, total = max_weight_assignment(prep.pairs.cand, prep.pairs.offer, gain, prep.tables.offers.slots, pins)
    chosen = chosen[(gain[chosen] > 0) | np.isin(chosen, pins)]
    activity = _activity(prep, r, chosen, w)
    bound = float(total) + float(price @ r.rhs)
    return Priced(bound, w.worth, chosen, activity, w.fund_cost, w.option_cost)


def _activity(prep: Prepared, r: Relaxed, chosen: IntArray, w: Worths) -> FloatArray:
    """What the chosen pairs draw on each row, each with its cheapest funding row and supervisor."""
    n = len(prep.pairs)
    out = np.zeros(r.n_rows + 1)
    wanted = np.zeros(n, dtype=bool)
    wanted[chosen] = True
    paying = wanted & ~r.free_money
    rows = first_at_least(w.fund_cost, w.money, prep.pairs.fund_pair, paying)[paying]
    for index in (r.fund_budget, r.fund_draw, r.fund_cap):
        out += np.bincount(index[rows], weights=r.grant[rows], minlength=r.n_rows + 1)
    seated = wanted & ~r.free_seat
    options = first_at_least(w.option_cost, w.seat, prep.supervisors.pair, seated)[seated]
    options = options[options >= 0]
    if len(options) and r.seats.shape[0]:
        out[r.seat_at : r.n_rows] += r.seats @ np.bincount(options, minlength=r.seats.shape[1]).astype(np.float64)
    return out[:-1]


@dataclass(frozen=True)
class SeatNetwork:
    """Supervisor seats inside the flow instead of priced: each offer sends its pairs through the seats of its
    supervisors in the offer's start month (every stay is under way in its first month). Stays that started earlier
    and still run are not counted against those seats, and an offer may use any of its supervisors who can take
    some pair of it: a relaxation of the seat rows, so the flow still bounds every solution."""

    offer_sup_offer: IntArray  # arcs offer -> (supervisor, month) node
    offer_sup_node: IntArray
    node_seats: IntArray  # per (supervisor, month) node: free seats
    offer_free: BoolArray  # per offer: some pair of it has a supervisor who can never run out of seats


def seat_network(prep: Prepared) -> SeatNetwork:
    """The offers' supervisors who can run out of seats, as nodes (supervisor, the offer's start month)."""
    opts, pairs = prep.supervisors, prep.pairs
    n_offers = len(prep.instance.offers)
    offer_of_option = pairs.offer[opts.pair]
    free_option = ~opts.binding[opts.choice]
    offer_free = np.zeros(n_offers, dtype=bool)
    offer_free[offer_of_option[free_option]] = True
    bound_options = np.flatnonzero(~free_option)
    start = prep.tables.offers.start_month
    keys = np.unique(offer_of_option[bound_options] * len(opts.binding) + opts.choice[bound_options])
    offer, sup = keys // len(opts.binding), keys % len(opts.binding)
    width = int(start.max()) + 1 if len(start) else 1
    nodes, node = np.unique(sup * width + start[offer], return_inverse=True)
    limits = prep.tables.limits
    seats = np.array([max(0, limits.seats_left(int(k // width), int(k % width))) for k in nodes], dtype=np.int64)
    return SeatNetwork(offer, node.reshape(-1), seats, offer_free)


def network_bound(prep: Prepared, r: Relaxed, net: SeatNetwork, values: IntArray, price: FloatArray) -> Priced:
    """The bound with money and seats priced (`price`) and seats in the flow as well (`SeatNetwork`), with what the
    flow's pairs draw on each row with their cheapest funding and supervisor.

    The network holds each supervisor's seats in an offer's start month only; the seat rows priced on top hold them
    in every month (a Lagrangian relaxation may keep a relaxed copy of a row it prices). A pair pays its cheapest
    supervisor's priced seats, whichever supervisor its flow goes through: never more than it would pay, so the
    bound stays valid. At seat prices 0 this is the network alone; at the LP's prices it is at most the LP's value
    (the priced relaxation `evaluate` is, and this one keeps more rows)."""
    w = worths(r, values, price)
    gain = w.gain
    pairs = np.flatnonzero(gain > 0)
    n_c, n_o, n_s = len(prep.instance.candidates), len(prep.instance.offers), len(net.node_seats)
    # Nodes: source, candidates, offers in, offers out, (supervisor, month), sink.
    source, c_at, i_at, o_at, s_at = 0, 1, 1 + n_c, 1 + n_c + n_o, 1 + n_c + 2 * n_o
    sink = s_at + n_s
    big = n_c
    flow = min_cost_flow.SimpleMinCostFlow()
    tails = np.concatenate(
        [
            np.zeros(n_c, dtype=np.int64),
            c_at + prep.pairs.cand[pairs],
            i_at + np.arange(n_o),
            o_at + net.offer_sup_offer,
            o_at + np.flatnonzero(net.offer_free),
            s_at + np.arange(n_s),
            [source],
        ]
    )
    heads = np.concatenate(
        [
            c_at + np.arange(n_c),
            i_at + prep.pairs.offer[pairs],
            o_at + np.arange(n_o),
            s_at + net.offer_sup_node,
            np.full(int(net.offer_free.sum()), sink),
            np.full(n_s, sink),
            [sink],
        ]
    )
    caps = np.concatenate(
        [
            np.ones(n_c + len(pairs), dtype=np.int64),
            prep.tables.offers.slots.astype(np.int64),
            np.full(len(net.offer_sup_offer) + int(net.offer_free.sum()), big, dtype=np.int64),
            net.node_seats,
            [n_c],
        ]
    )
    costs = np.zeros(len(tails), dtype=np.int64)
    costs[n_c : n_c + len(pairs)] = -gain[pairs]
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supplies = np.zeros(sink + 1, dtype=np.int64)
    supplies[source], supplies[sink] = n_c, -n_c
    flow.set_nodes_supplies(np.arange(sink + 1), supplies)
    if flow.solve() != flow.OPTIMAL:
        raise RuntimeError("min-cost flow of the seat network did not finish")
    chosen = pairs[flow.flows(arcs[n_c : n_c + len(pairs)]) > 0]
    total = int(gain[chosen].sum())
    activity = _activity(prep, r, chosen, w)
    return Priced(float(total) + float(price @ r.rhs), w.worth, chosen, activity, w.fund_cost, w.option_cost)


@dataclass
class Subgradient:
    """Subgradient steps on the prices (Polyak steps towards the best solution known), keeping the best bound."""

    r: Relaxed
    price: FloatArray
    best_bound: float = math.inf
    best_price: FloatArray | None = None
    theta: float = 1.0
    stall: int = 0
    patience: int = 3
    momentum: float = 0.0  # share of the previous direction kept (0.5 damped the zig-zag of seat prices a little)
    direction: FloatArray | None = None
    scaled: bool = True  # steps relative to each row's limit (else plain Polyak steps in the rows' own units)

    def step(self, bound: float, activity: FloatArray, target: float) -> None:
        """Move the prices from an evaluation at self.price: its bound and its rows' activity."""
        r = self.r
        if bound < self.best_bound - 1e-9 * max(1.0, abs(bound)):
            self.best_bound, self.best_price, self.stall = bound, self.price.copy(), 0
        else:
            self.stall += 1
            if self.stall >= self.patience:
                self.theta, self.stall = self.theta / 2, 0
        g = activity - r.rhs
        # A row with slack and no price cannot move: its price is already at 0.
        g[(g < 0) & (self.price <= 0)] = 0.0
        # Rows in their own units (SEK, seats): relative steps treat them alike.
        size = np.maximum(1.0, np.abs(r.rhs)) if self.scaled else np.ones(r.n_rows)
        if self.direction is not None and self.momentum > 0:
            g = g + self.momentum * self.direction
        self.direction = g
        norm = float(((g / size) ** 2).sum())
        if norm < 1e-12:
            return
        step = self.theta * max(bound - target, 1e-6 * abs(bound)) / norm
        price = np.maximum(0.0, self.price + step * g / size**2)
        # An earmark never costs more than its programme's general money (see the module docstring).
        mark = np.flatnonzero(r.kind == EARMARK)
        price[mark] = np.minimum(price[mark], price[r.general_of[mark]])
        self.price = price


def restrict(prep: Prepared, keep: IntArray) -> tuple[Prepared, IntArray]:
    """The round with only the pairs `keep` (sorted, pins among them): the same instance, limits and binding flags
    (a row that can bind in the whole round is kept in the part, where it may no longer bind: still valid), and the
    funding rows of the part as indexes into the whole round's."""
    pairs = prep.pairs
    new_of = np.full(len(pairs), -1, dtype=np.int64)
    new_of[keep] = np.arange(len(keep))
    fund = np.flatnonzero(new_of[pairs.fund_pair] >= 0)
    sub_pairs = Eligible(
        cand=pairs.cand[keep],
        offer=pairs.offer[keep],
        months=pairs.months[keep],
        total_cost=pairs.total_cost[keep],
        fund_pair=new_of[pairs.fund_pair[fund]],
        fund_programme=pairs.fund_programme[fund],
        fund_grant=pairs.fund_grant[fund],
        fund_earmark=pairs.fund_earmark[fund],
    )
    opts = prep.supervisors
    options = np.flatnonzero(new_of[opts.pair] >= 0)
    option_of = np.full(len(opts.pair), -1, dtype=np.int64)
    option_of[options] = np.arange(len(options))
    seat_rows = []
    for row in prep.seat_rows:
        mine = option_of[row.rows]
        mine = mine[mine >= 0]
        if len(mine):
            seat_rows.append(SeatRow(row.supervisor, row.month, mine, row.seats))
    sub = Prepared(
        instance=prep.instance,
        tables=prep.tables,
        pairs=sub_pairs,
        scores=Scores({k: v[keep] for k, v in prep.scores.components.items()}, prep.scores.total[keep]),
        waiting_days=prep.waiting_days[keep],
        supervisors=Options(new_of[opts.pair[options]], opts.choice[options], opts.amount[options], opts.binding),
        programmes=Options(
            pair=sub_pairs.fund_pair,
            choice=np.arange(len(fund), dtype=np.int64),
            amount=sub_pairs.fund_grant,
            binding=prep.programmes.binding[fund],
        ),
        unit_cap_binding=prep.unit_cap_binding,
        budget_binding=prep.budget_binding,
        seat_rows=seat_rows,
    )
    return sub, fund
