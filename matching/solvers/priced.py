"""Rounds too large for one LP: column generation over pairs and Lagrangian prices on the prepared arrays
(`PricedStrategy`, method `lagrange`).

At stress scale (50,000 candidates x 20,000 offers, 5 M pairs, 20 M funding rows) neither the model (`spec`, 10 M
rows) nor its compact form (`matrix`, 21 M columns) fits in memory and time. This strategy never builds either for
the whole round; the relaxation it bounds with (`matching.solvers.relaxed`) works on `Prepared`'s arrays.

1. A part of the round: each candidate's two pairs of highest value and two of cheapest funding, grown by column
   generation over the whole round's pairs (`matching.solvers.pairgen`) for up to COLGEN_SHARE of the search time:
   each pass prices every pair at the master LP's prices and adds the best of positive reduced profit. Its
   solution is one of the whole round (same rows, fewer pairs). The `lns` strategy searches it from the last
   master's LP (when that is past the first pass, whose money is priced by the cheapest grant alone, or proves the
   LP); else from the first part, solving its LP itself. Stress:0: 8,799 placed from the grown part against 7,985
   from the first one.
2. The bound: the best of column generation's own (`pairgen.split_bound`) and of the network relaxation
   (`relaxed.network_bound`: money and seats priced, seats in the flow too) from one price per SEK on every grant
   (golden-section steps) and, where time allows, from the part's LP prices with and without its seat prices;
   subgradient steps go on from the start that bounds lowest until the time for the fill. Every evaluation is a
   proven bound.
3. Fill: every candidate still unplaced tries its pairs of best worth at the tightest prices, walked by the greedy
   that checks every rule (`matching.solvers.greedy.place_in_order`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from matching.model.side import side_rows
from matching.model.spec import objective_tiers
from matching.rules.prepare import Prepared
from matching.rules.tables import FloatArray, IntArray
from matching.solvers.clock import guard
from matching.solvers.cpsat import _split_bound
from matching.solvers.flow import FlowOverflow
from matching.solvers.greedy import Pick, Preference, ledger_of, pinned_pairs, place_in_order
from matching.solvers.large import STRATEGY_PROOF_TOLERANCE, LnsStrategy
from matching.solvers.matrix import RoundMatrix
from matching.solvers.objective import combined_values, tier_ceiling, tier_weights
from matching.solvers.pairgen import Master, generate_pairs
from matching.solvers.relaxed import (
    EARMARK,
    GENERAL,
    SEATS,
    Priced,
    Relaxed,
    Subgradient,
    first_per_candidate,
    network_bound,
    prices_from_matrix,
    relax,
    restrict,
    seat_network,
    segment_min,
)
from matching.solvers.strategies import EXPLAIN_SHARE, Context, Deadline, Outcome, Strategy

WALK_PAIRS_PER_CANDIDATE = 4  # pairs of best worth per unplaced candidate tried by the fill
PART_PAIRS_PER_CANDIDATE = 2  # pairs by value and as many by cheapest funding, per candidate, in the part
COLGEN_SHARE = 0.45  # of the search time, after which no pass of column generation over pairs begins
# Of the search time, until which a pass begun may solve its LP (stress, before sifting: two passes, 103 s of the
# 226 s; a second pass cut at 0.45 left the search the first part, with less time: 7,953 placed). Since sifting
# three passes of two columns per pair take about 85-100 s of the 215 s, and 0.65 left too little room for the
# gate's margin; the part's search from the third master needs little time (9,271 of its 9,275 in the first 4 s).
COLGEN_LP_SHARE = 0.75
# From the third master on, its prices bound the round better than the line search's (below).
MASTER_FIRST_PASSES = 3
PART_SHARE = 0.85  # of the search time, until the part's search ends; the rest for the bound and the fill
FIRST_PART_SHARE = 0.55  # the same, when the search is on the first part (it solves the part's LP itself)
LINE_STEPS = 1  # golden-section steps on one price per SEK (2 evaluations of the bound each; a stress run with 2
# left no time for subgradient steps, which took the bound 4 % lower in 7 steps)
FILL_RESERVE = 0.5  # subgradient steps' worth of time kept for the fill (a step: 6-12 s at stress, the fill 9 s)
# Kept after the search for the explanations: at stress scale (50,000 candidates) they took 14.5 s when the machine
# ran 1.6 times slower than usual (26-88 s before they were worked out for all candidates at once).
EXPLAIN_SECONDS_PER_CANDIDATE = 0.5e-3
EXPLAIN_MAX_SHARE = 0.25  # of the time limit, at most, kept for them
STEP_THETA = 1.0  # Polyak step size of the money prices (national: 1,331 -> 1,248 in 7 steps, LP 1,198)
STEP_PATIENCE = 2  # steps without a better bound before the step size halves
MIN_PAIRS = 500_000  # `auto` picks this strategy from this many pairs (stress: 5 M; national: 84,000)
# Deterministic rounds count work, never the clock, so that the same round takes the same steps on any machine: each
# master LP gets this share of the limit in GLOP's deterministic time (stress:0 took 5.9 for the first master and
# 124.4 for the second from scratch, about as many wall seconds; from the carried basis 70 and 110 wall seconds for
# the second and third, and by sifting 22-36, 46-52 and 26 for the second to the fourth; at a 300 s limit the share
# allows 150), the part's search a round of this share of the
# limit (its CP-SAT time and HiGHS nodes counted as the `lns` strategy counts them), and the bound a number of
# evaluations (`deterministic_evaluations`). On stress:0 the part's search from the third master found 9,271 of
# its 9,275 in the first 4 s (the priced start) and 4 more in 33 s: the third pass, which moved the part from 8,762
# to 9,279 placements, needs that time more (a 0.12 share took the round to 343 s).
DETERMINISTIC_LP_SHARE = 0.5
DETERMINISTIC_PART_SHARE = 0.04
# Subgradient steps a deterministic round's bound takes before the part's prices are tried as starts, where they are
# not tried first (below): on stress:0 at 300 s (4 evaluations) the second master's prices bounded 23.7 % and 25.6 %
# above the solution against 21.7 % for the line search's best, and two steps from that took the round's gap from
# 17.9 % to 16.7 %.
DETERMINISTIC_STEPS = 2


def priced_preference(prep: Prepared, at: Priced) -> Preference:
    """Supervisor options and funding rows in order of their priced cost (free ones first)."""
    sup = -at.option_cost.copy()
    fund = -at.fund_cost.copy()
    sup[prep.free_supervisor[prep.supervisors.pair] == prep.supervisors.choice] = np.inf
    fund[prep.free_programme[prep.pairs.fund_pair] == np.arange(len(prep.pairs.fund_pair))] = np.inf
    return Preference(supervisor=sup, funding=fund)


def part_pairs(prep: Prepared, values: IntArray, per_candidate: int) -> IntArray:
    """Each candidate's `per_candidate` pairs of highest value and as many of cheapest funding (then value), with the
    pins: the part of the round that the neighbourhood search works on."""
    pairs = prep.pairs
    cheapest = segment_min(
        pairs.fund_grant.astype(np.float64), np.searchsorted(pairs.fund_pair, np.arange(len(pairs) + 1))
    )
    cheapest[prep.free_programme >= 0] = 0.0
    keep = np.zeros(len(pairs), dtype=bool)
    for key in (-np.asarray(values, dtype=np.float64), cheapest):
        keep[first_per_candidate(np.lexsort((-np.asarray(values), key, pairs.cand)), pairs.cand, per_candidate)] = True
    keep[pinned_pairs(prep)] = True
    return np.flatnonzero(keep)


def fill(prep: Prepared, picks: list[Pick], at: Priced | None, values: IntArray) -> list[Pick]:
    """The picks, then each unplaced candidate's pairs of best worth at the prices (value without prices) where they
    still fit."""
    ledger = ledger_of(prep, picks)
    inst, pairs = prep.instance, prep.pairs
    worth = at.worth if at is not None else np.asarray(values, dtype=np.float64)
    placed = np.zeros(len(inst.candidates), dtype=bool)
    placed[pairs.cand[[p.pair for p in picks]]] = True
    open_pairs = np.flatnonzero(~placed[pairs.cand])
    order = open_pairs[np.lexsort((-np.asarray(values)[open_pairs], -worth[open_pairs], pairs.cand[open_pairs]))]
    rest = first_per_candidate(order, pairs.cand, WALK_PAIRS_PER_CANDIDATE)
    rest = rest[np.argsort(-worth[rest], kind="stable")]
    preference = priced_preference(prep, at) if at is not None else None
    return [*picks, *place_in_order(prep, rest, ledger=ledger, preference=preference)]


def _uniform_prices(
    prep: Prepared, r: Relaxed, values: IntArray, bound: Callable[[FloatArray], float]
) -> list[tuple[float, FloatArray]]:
    """One price per SEK on every grant (general money and earmarks), searched on a few points around a placement's
    value over a median grant (at national size the best such price bounded 11 % above the LP, and subgradient steps
    from there 4 %): the prices tried, in order, with their bounds."""
    grants = prep.pairs.fund_grant
    base = float(np.max(values)) / max(1.0, float(np.median(grants))) if len(grants) else 0.0
    shape = np.isin(r.kind, [GENERAL, EARMARK]).astype(np.float64)
    tried: dict[float, float] = {}
    out: list[tuple[float, FloatArray]] = []

    def at(factor: float) -> float:
        if factor not in tried:
            price = factor * base * shape
            tried[factor] = bound(price)
            out.append((tried[factor], price))
        return tried[factor]

    low, high = 0.2, 1.6
    for _ in range(LINE_STEPS):
        # Golden-section steps on a convex function of the factor (the bound is convex in the prices).
        a, b = high - 0.618 * (high - low), low + 0.618 * (high - low)
        if at(a) <= at(b):
            high = b
        else:
            low = a
    return out


class _Part(LnsStrategy):
    """The neighbourhood search on the part of the round, ending its search at a given time."""

    # The part's bound is not the round's, which the strategy proves itself: subgradient steps on it took 128 s of a
    # deterministic stress round (200 of them, on the second master's part) and 15 % of the part's time otherwise.
    tighten_bound = False

    def __init__(self, end: float) -> None:
        self.end = end

    def search_end(self, ctx: Context) -> float:  # type: ignore[override]
        return self.end


def _deadline_ending(search_end: float) -> Deadline:
    """A deadline whose search ends at `search_end`."""
    now = time.monotonic()
    return Deadline(now, max(0.1, (search_end - now) / (1 - EXPLAIN_SHARE)))


def deterministic_evaluations(limit: float) -> int:
    """Evaluations of the bound in a deterministic round of this time limit: the last master's prices where column
    generation ran at least MASTER_FIRST_PASSES passes, else the line search's two, then subgradient steps
    (DETERMINISTIC_STEPS of them before the part's prices, where those come later); more from 350 s (an evaluation
    takes 5-12 s at stress scale; with 6 evaluations at 300 s the round took 352 s on a quiet machine, over the
    limit's 10 %, and the steps after the fourth master's prices moved its bound by less than 0.3 %)."""
    return min(8, max(3, round(limit / 100)))


def _total(picks: list[Pick], values: IntArray) -> int:
    return int(values[[p.pair for p in picks]].sum()) if picks else 0


class PricedStrategy(Strategy):
    """Lagrangian relaxation of money, caps and seats with min-cost-flow subproblems: a proven bound at every step,
    and solutions walked from the prices (see the module docstring)."""

    name = "lagrange"

    def applies(self, ctx: Context) -> bool:
        if side_rows(ctx.prep) or not len(ctx.prep.pairs):
            return False  # floors and no-blocking rows are not priced here
        try:
            tier_weights(ctx.prep, ctx.tiers)
        except FlowOverflow:
            return False
        return True

    def run(self, ctx: Context) -> Outcome:
        prep, tiers = ctx.prep, ctx.tiers
        started = time.monotonic()
        weights = tier_weights(prep, tiers)
        values = combined_values(prep, tiers)
        ctx.reporter.report("model", strategy=self.name)
        r = relax(prep)
        end = self.search_end(ctx)
        limit = ctx.deadline.limit
        # 1. A part of the round: each candidate's best pairs by value and by cheapest money, grown by column
        #    generation over the whole round's pairs (`pairgen`) while its share lasts, then solved by the LP-guided
        #    neighbourhood search (`lns`): the solution, and LP prices for the bound.
        keep = part_pairs(prep, values, PART_PAIRS_PER_CANDIDATE)
        ctx.reporter.report("bound", strategy=self.name)
        tolerance = STRATEGY_PROOF_TOLERANCE * max(1, tier_ceiling(prep, tiers[-1][1]))
        if ctx.deterministic:
            # Work decides every step; the wall clock only guards, far out.
            passes_end = lp_end = started + guard(limit)
            work: float | None = DETERMINISTIC_LP_SHARE * limit
        else:
            passes_end, lp_end = started + COLGEN_SHARE * (end - started), started + COLGEN_LP_SHARE * (end - started)
            work = None
        grown = generate_pairs(prep, r, values, keep, passes_end, tolerance, lp_deadline=lp_end, work=work)
        searched = grown.master is not None and (grown.passes > 1 or grown.converged)
        if ctx.deterministic:
            within = Deadline(time.monotonic(), DETERMINISTIC_PART_SHARE * limit)
        else:
            # Searched from a master, the part's search ends late: the master's LP is solved already.
            within = _deadline_ending(started + (PART_SHARE if searched else FIRST_PART_SHARE) * (end - started))
        if grown.master is not None and searched:
            # The first master prices money by the cheapest grant only (stress: 4,537 placements against 8,762
            # after the second pass): unless it proved the LP, only a later master's is worth starting from.
            master = grown.master
            best, prices = self._solve_part(ctx, master.keep, within, values, master)
        else:
            best, prices = self._solve_part(ctx, keep, within, values)
        best_value = _total(best, values)
        # 2. The bound: money and seats priced, seats in the flow too (`network_bound`), each evaluation a proven
        #    bound. Start from the better of the part's LP prices (seats too) and one price per SEK for every grant
        #    (a short line search), then subgradient steps until the time for the fill.
        net = seat_network(prep)
        tried: list[Priced] = []
        slowest = 0.0  # seconds of the slowest evaluation so far

        def bound_at(price: FloatArray) -> Priced:
            nonlocal slowest
            began = time.monotonic()
            tried.append(network_bound(prep, r, net, values, price))
            slowest = max(slowest, time.monotonic() - began)
            ctx.reporter.report(
                "bound", tier="combined", objective=float(best_value), bound=tried[-1].bound, strategy=self.name
            )
            return tried[-1]

        most = deterministic_evaluations(limit) if ctx.deterministic else None

        def time_for(evaluations: int) -> bool:
            """Time for this many more evaluations before the fill (10-15 s each at stress scale under load); in
            a deterministic round, room in its count."""
            if most is not None:
                return len(tried) + evaluations <= most
            return time.monotonic() + (evaluations + FILL_RESERVE) * slowest < end

        # Every start is evaluated, and the subgradient steps go on from the one that bounds lowest (the code
        # before evaluated only the line search's and took a start by the wrong index), from its evaluation (the
        # code before evaluated it again: 6-12 s at stress scale).
        starts: list[tuple[Priced, FloatArray]] = []

        def start_at(price: FloatArray) -> float:
            starts.append((bound_at(price), price))
            return starts[-1][0].bound

        def part_starts(seats_only: bool) -> None:
            """The part's seat prices with its money prices, and (unless `seats_only`) its money prices alone: the
            part's seats are not the round's (national:0, 30 s: 1,212 against 1,254 placements with seat prices)."""
            assert prices is not None
            part = prices_from_matrix(r, *prices)
            for p in (part,) if seats_only else (part, np.where(r.kind == SEATS, 0.0, part)):
                start_at(p)

        # The last master's prices come first where its LP is the round's (converged) or column generation ran at
        # least three passes (on the clock too, since sifting fits them there), and with its seat prices only (at
        # the LP's own prices they give the LP's value): at stress scale the third master's prices bounded 9,500
        # placements (9,632 without the seat prices) against 10,670 for the line search's best (the second
        # master's bounded worse than the line search; a third master cut short in its sifting, 9,571 on the slow
        # machine at a 240 s limit, with 9,311 placements in it). Otherwise one price per SEK first: under load the
        # part's LP stops early with prices far off (stress at load 4: 20,318 placements from them, 10,671 from one
        # price per SEK), and there may be no time for more.
        late = grown.passes >= MASTER_FIRST_PASSES
        master_first = prices is not None and searched and (grown.converged or late)
        if master_first:
            part_starts(seats_only=True)
        if not master_first or time_for(2 + DETERMINISTIC_STEPS):
            _uniform_prices(prep, r, values, start_at)
        # A deterministic round keeps room for DETERMINISTIC_STEPS steps before it tries the part's prices.
        if not master_first and prices is not None and time_for(2 + (DETERMINISTIC_STEPS if most is not None else 0)):
            part_starts(seats_only=False)
        at, price = min(starts, key=lambda start: start[0].bound)
        sub_grad = Subgradient(r, price, theta=STEP_THETA, patience=STEP_PATIENCE)
        while True:
            # Polyak steps towards halfway between the bound and the best solution: towards the solution alone, the
            # steps overshot at stress scale (no better bound in a run; halfway: 10,643 -> 10,203 in 7 steps).
            target = (min(sub_grad.best_bound, at.bound) + best_value) / 2
            sub_grad.step(at.bound, at.activity, target)
            if at.bound <= best_value + 1 or not time_for(1):
                break
            at = bound_at(sub_grad.price)
        # 3. Fill: every candidate still unplaced tries its pairs of best worth at the prices of the best bound.
        tightest = min(tried, key=lambda t: t.bound)
        best = fill(prep, best, tightest, values)
        ctx.reporter.picks("search (filled)", prep, best, self.name)
        proven = min(tightest.bound, grown.bound)
        known = math.floor(proven + 1e-6) if math.isfinite(proven) else None
        results = _split_bound(prep, best, tiers, weights, known, time.monotonic() - started)
        return Outcome(best, results, self.name)

    @staticmethod
    def _solve_part(
        ctx: Context,
        keep: IntArray,
        deadline: Deadline,
        values: IntArray,
        solved: Master | None = None,
    ) -> tuple[list[Pick], tuple[RoundMatrix, FloatArray] | None]:
        """The neighbourhood search on the round restricted to the pairs `keep`, within `deadline` (a deterministic
        round counts its work from the deadline's limit): its solution (in the whole round's indexes) and its LP
        prices. `solved`: a column-generation master of these pairs, whose LP the search starts from instead of
        solving it again."""
        sub, fund_rows = restrict(ctx.prep, keep) if solved is None else (solved.sub, solved.fund)
        inner = _Part(deadline.search_end)
        if solved is not None:
            inner.given = (solved.m, solved.lp)
        found = inner.run(Context(sub, objective_tiers(sub), deadline, ctx.reporter))
        picks = [Pick(int(keep[p.pair]), p.supervisor, int(fund_rows[p.fund_row])) for p in found.picks]
        ctx.reporter.picks("search (part of the round)", ctx.prep, picks, "lagrange")
        return picks, inner.prices

    @staticmethod
    def search_end(ctx: Context) -> float:
        """Early enough for the explanations of the unmatched (EXPLAIN_SECONDS_PER_CANDIDATE)."""
        limit = ctx.deadline.limit
        reserve = min(EXPLAIN_MAX_SHARE * limit, EXPLAIN_SECONDS_PER_CANDIDATE * len(ctx.prep.instance.candidates))
        return min(ctx.deadline.search_end, ctx.deadline.end - reserve)


__all__ = ["MIN_PAIRS", "PricedStrategy"]
