"""The strategy for large rounds: an LP bound by column generation, a primal solution from the LP's prices, then
large-neighbourhood search until the deadline (`LnsStrategy`, method `lns`).

1. The round as one compact matrix (`matching.solvers.matrix`); its independent parts (`decompose`).
2. The LP of the weighted tiers by column generation over the programme choice (`colgen`): the bound, and row
   prices for everything after; where it does not finish in its share, subgradient steps of the Lagrangian
   relaxation (`lagrange`) from its last prices tighten the bound.
3. A complete solution: the LP's pairs in order of their LP values, and the min-cost flow at the LP's prices, each
   walked by the greedy that checks every rule (`matching.solvers.greedy.place_in_order`); the better one.
4. HiGHS on the round restricted to the columns of best reduced profit at the LP's prices (`lns.restricted_mip`),
   for most of the search time: at national size it closes most of the gap the start leaves.
5. Where every row but the candidates' is a small knapsack (generalized assignment), the knapsack bound
   (`matching.solvers.knapsack`) and, once, CP-SAT on its core: the pairs cheapest to force into the knapsacks at
   the bound's prices (`knapsack_core`).
6. CP-SAT on neighbourhoods chosen from the LP (`lns`), each part of the round small enough solved whole first.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from matching.model.spec import Tier
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.clock import WorkClock, guard, reader
from matching.solvers.colgen import LpSolution, assignment_round, dual_bound, first_columns, generate_columns
from matching.solvers.cpsat import TierResult, _split_bound, tier_totals
from matching.solvers.decompose import pair_components
from matching.solvers.flow import FlowOverflow
from matching.solvers.greedy import Pick, Preference, pinned_pairs, place_in_order
from matching.solvers.knapsack import KnapsackBound, forcing_costs, held_bound
from matching.solvers.lagrange import evaluate, priced_preference, structure, subgradient
from matching.solvers.lns import (
    attractive_pairs,
    pair_columns,
    restricted_columns,
    restricted_mip,
    search,
    solve_neighbourhood,
)
from matching.solvers.matrix import KIND, RoundMatrix, build_matrix
from matching.solvers.objective import combined_values, tier_ceiling, tier_weights
from matching.solvers.relaxed import first_per_candidate
from matching.solvers.strategies import Context, CpSatStrategy, Outcome, Strategy

LP_SHARE = 0.45  # of the search time, at most, for the LP bound
LAGRANGE_SHARE = 0.15  # of the search time left, for subgradient steps when the LP did not finish
WHOLE_SHARE = 0.25  # of the search time, for CP-SAT on a small round whole before its neighbourhoods
WHOLE_SECONDS = 2.0  # at least (all of a short limit: OR-Library's sizes are proven whole)
KNAPSACK_SHARE = 0.1  # of the time left after the start, at most, for the knapsack bound where it applies
FIRST_TIER_SHARE = 0.2  # of the search time left, for an open tier searched on its own before the weighted sum
EXPLAIN_SECONDS_PER_CANDIDATE = 0.6e-3  # kept after the search for the solution's explanations
# The LP stops once its bound is within this share of the last tier's range: the degenerate tail of column
# generation (the master's value no longer moves, only the bound's proof) took half its rounds at national size,
# and the search needs the prices, not the last digits of the bound.
STRATEGY_PROOF_TOLERANCE = 1e-3
EXACT_LP_TOLERANCE = 0.5  # of the weighted objective (half a point of score), where the LP runs to the end
EXPLAIN_MAX_SHARE = 0.25  # of the time limit, at most, kept for them
MIP_COLUMNS = 5000  # columns of best reduced profit in the restricted MIP
CORE_SHARE = 0.5  # of the search time left, for CP-SAT on the knapsack core (GAP-like rounds)
CORE_PAIRS_PER_CANDIDATE = 1.5  # the core's size: this many pairs per candidate, cheapest to force first
MIP_SHARE = 0.8  # of the search time left after the start, for the restricted MIP
PART_MAX_PAIRS = 4000
# Deterministic rounds: the search's deterministic time, as a share of the limit (preparing, the LP, the start and
# the explanations take the rest of it on the wall clock), and the restricted MIP's least node budget.
DETERMINISTIC_SEARCH_SHARE = 0.5
MIN_NODES = 10
# HiGHS's node budget per second of its share: on national:0 it branched about 21 nodes a second on the restricted
# MIP (2,400 nodes took 115 s), far fewer than on the regional and demo tiers' MIPs (`strategies.NODES_PER_SECOND`).
MIP_NODES_PER_SECOND = 10
DETERMINISTIC_MIP_SECONDS = 8.0  # the restricted MIP's share at least, for it to run in a deterministic round
WHOLE_MAX_COLUMNS = 1_000  # a round up to this many columns is searched whole, not by neighbourhoods
BACKEND = (
    "cp_sat"  # neighbourhood solver: "cp_sat" or "highs"  # an independent part up to this many pairs is solved whole
)


class LnsStrategy(Strategy):
    """LP bound by column generation, LP-priced repair, then LP-guided large-neighbourhood search."""

    name = "lns"
    prices: tuple[RoundMatrix, FloatArray] | None = None  # the round's matrix and its LP prices, once known
    # An LP already solved on this round's matrix (a column-generation master, `matching.solvers.pairgen`): used
    # instead of solving it again; its prices bound the round whatever columns it had (`colgen.dual_bound`).
    given: tuple[RoundMatrix, LpSolution] | None = None
    # Subgradient steps tighten the bound of an LP that did not finish. Off where the round is a part of a larger
    # one (`matching.solvers.priced`), whose bound is not the round's.
    tighten_bound = True

    def applies(self, ctx: Context) -> bool:
        try:
            tier_weights(ctx.prep, ctx.tiers)
        except FlowOverflow:
            return False
        return bool(len(ctx.prep.pairs))

    @staticmethod
    def search_end(ctx: Context) -> float:
        """When the search stops: before the deadline's own end of search, and early enough for the explanations of
        a large round (the reasons for the unmatched took 6-10 s for 5,000 candidates on a loaded 2-core machine,
        more than the deadline's 5 % of a 30 s limit)."""
        limit = ctx.deadline.limit
        reserve = min(EXPLAIN_MAX_SHARE * limit, EXPLAIN_SECONDS_PER_CANDIDATE * len(ctx.prep.instance.candidates))
        return min(ctx.deadline.search_end, ctx.deadline.end - reserve)

    def run(self, ctx: Context) -> Outcome:
        if not self.applies(ctx):
            return CpSatStrategy().run(ctx)
        prep, tiers = ctx.prep, ctx.tiers
        started = time.monotonic()
        weights = tier_weights(prep, tiers)
        values = combined_values(prep, tiers)
        ctx.reporter.report("model", strategy=self.name)
        m = self.given[0] if self.given is not None else build_matrix(prep)
        ctx.reporter.report("bound", strategy=self.name)
        c = m.objective(values)
        policy = prep.instance.policy
        # Deterministic rounds: the LP and the bounds run to their own end (the wall clock only a guard far out),
        # HiGHS counts nodes, and the search counts CP-SAT's deterministic time from a fixed share of the limit, so
        # that the same input takes the same steps on any machine at any load.
        clock = WorkClock() if policy.deterministic else None
        far = guard(ctx.deadline.limit)
        lp_end = time.monotonic() + (far if clock is not None else LP_SHARE * ctx.deadline.left())
        # Proven within a small share of the last tier's range, not of the weighted sum: a share of the weighted
        # sum is mostly the first tier's weight and would leave the last tier's bound loose.
        tolerance = STRATEGY_PROOF_TOLERANCE * max(1, tier_ceiling(prep, tiers[-1][1]))
        if assignment_round(m):
            # Converged to the end there, for its prices: the knapsack bound and the search start from them. On
            # 80 x 1,600 GAP the exact LP took 3.6 s, not 2.3 s, and the round ended at 178,301-178,622 instead of
            # 179,609-179,763 (bound 177,316, not 177,262). National rounds would need 21.6 s instead of 5.8 s.
            tolerance = EXACT_LP_TOLERANCE
        if self.given is not None:
            lp = self.given[1]
            bound = dual_bound(m, c, lp.price)
            converged = bound - lp.value <= tolerance
        else:
            lp, bound, converged, _ = generate_columns(m, c, first_columns(m), lp_end, tolerance=tolerance)
        if not converged and self.tighten_bound:
            # The LP did not finish in its share: subgradient steps from its last prices (min-cost flows, each
            # a valid bound) tighten what the unfinished master proves.
            seconds = far if clock is not None else LAGRANGE_SHARE * ctx.deadline.left()
            start = lp.price if lp.ok else None
            bound = min(bound, subgradient(m, values, seconds=seconds, steps=200, start=start).bound)
        price = lp.price if lp.ok else np.zeros(len(m.lb))
        self.prices = (m, price) if lp.ok else None  # read by `matching.solvers.priced` to warm-start its bound
        profit = c - m.a.T @ price
        attractive = attractive_pairs(m, profit, lp.w, c, 0.02)
        picks = start_solution(m, values, price, lp.w, attractive)
        ctx.reporter.picks("start", prep, picks, self.name)
        known = math.floor(bound + 1e-6) if lp.ok and math.isfinite(bound) else None
        now = reader(clock)
        search_end = (
            now() + DETERMINISTIC_SEARCH_SHARE * ctx.deadline.limit if clock is not None else self.search_end(ctx)
        )
        first_open = hold_proven(m, tiers, weights, picks, known)[2] == 0
        core: BoolArray | None = None  # the knapsack core, once the knapsack bound has run (GAP-like rounds)
        if known is not None and lp.ok and m.n_cols > WHOLE_MAX_COLUMNS and clock is None:
            # Its steps stop by the clock (and 300 of them would take minutes on 80 x 1,600 GAP rounds): a
            # deterministic round keeps the LP's bound.
            known, core = sharper_bound(m, tiers, weights, picks, known, c, price, KNAPSACK_SHARE * ctx.deadline.left())
        seconds = MIP_SHARE * (search_end - now())
        # A deterministic round bounds HiGHS by nodes, which do not bound its root (presolve, cuts): 16 nodes took
        # 4.8 s on a 1,200 x 400 round. It runs only where its share is long enough for that.
        affordable = clock is None or seconds >= DETERMINISTIC_MIP_SECONDS
        if m.n_cols > WHOLE_MAX_COLUMNS and lp.ok and first_open and affordable:
            # While the first tier is open (national rounds: the start places fewer than the LP), HiGHS closes most
            # of that gap. Where the start already proves it (GAP places every job), CP-SAT's neighbourhoods did
            # better on the score in the benchmarks. A deterministic round gives HiGHS a node budget instead of
            # seconds, and its share of the search's deterministic time is spent.
            nodes = max(MIN_NODES, int(MIP_NODES_PER_SECOND * seconds)) if clock is not None else None
            picks = self.restricted(m, c, profit, lp.w, picks, tiers, seconds, nodes)
            if clock is not None:
                clock.spent += seconds
            ctx.reporter.picks("search (restricted MIP)", prep, picks, self.name)

        def report(kind: str, found: list[Pick]) -> None:
            ctx.reporter.picks(f"search ({kind})", prep, found, self.name)

        current, first, phases, whole_tried = picks, True, 0, False
        while True:
            # Tiers proven optimal are held as rows; the search then works on the first open tier and those after.
            held_m, open_values, open_at = hold_proven(m, tiers, weights, current, known)
            w = held_m.columns_of(current)
            if first:
                w = solve_parts(held_m, held_m.objective(open_values), w, ctx, clock)
                first = False
            if held_m.n_cols <= WHOLE_MAX_COLUMNS and not whole_tried:
                # Small enough to solve whole, tier by tier: CP-SAT from the incumbent, which may prove each. Where
                # it does not prove them in its share, neighbourhoods go on from its incumbent: on GAP rounds of
                # 5-10 x 100 they did better than CP-SAT on the whole round for the rest of the time.
                whole_tried = True
                workers = 1 if policy.deterministic else policy.workers
                left = search_end - now()
                end = min(search_end, now() + max(WHOLE_SECONDS, WHOLE_SHARE * left))
                end = search_end if policy.deterministic else end
                current, done = solve_whole(m, tiers, current, end, policy.seed, workers, clock)
                if done is not None:
                    return Outcome(current, done, self.name)
                if policy.deterministic or search_end - now() <= 0.3:
                    break
                if known is not None and lp.ok:
                    # Not proven whole: the knapsack bound now (before, it would have taken the time CP-SAT needs
                    # to prove OR-Library's sizes at 2 s).
                    seconds = KNAPSACK_SHARE * (search_end - now())
                    known, core = sharper_bound(m, tiers, weights, current, known, c, price, seconds)
                continue

            if core is not None:
                # Once: CP-SAT on the knapsack core from the incumbent (its pairs free too, where it moved since the
                # core was chosen), for a share of what is left; the neighbourhoods go on from there. Only rounds on
                # the wall clock get here: a deterministic round keeps the LP's bound, and so has no core.
                free = core | pair_columns(held_m, held_m.pair_values(w) > 0.5)
                seconds = CORE_SHARE * (search_end - now())
                found_w = solve_neighbourhood(
                    held_m, held_m.objective(open_values), free, w, seconds, policy.seed, policy.workers
                )
                core = None
                if found_w is not None:
                    w = found_w
                    report("knapsack core", held_m.picks_of(w))

            def proven(found: FloatArray, at: int = open_at, bound: int | None = known) -> bool:
                return at < len(tiers) - 1 and hold_proven(m, tiers, weights, m.picks_of(found), bound)[2] > at

            # Each tier first on its own for a short while (a tier of equal values is easy alone, hard under a
            # weighted sum), then with the tiers after it.
            alone = phases < 2 * len(tiers) and open_at < len(tiers) - 1 and not phases % 2
            end = now() + FIRST_TIER_SHARE * (search_end - now()) if alone else search_end
            phases += 1
            w, _ = search(
                held_m,
                tiers[open_at][1] if alone else open_values,
                w,
                profit,
                lp.w,
                min(end, search_end),
                seed=policy.seed,
                workers=1 if policy.deterministic else policy.workers,
                report=report,
                backend=BACKEND,
                tiers=[values for _, values in tiers[open_at:]],
                stop=proven,
                clock=clock,
            )
            found = held_m.picks_of(w)
            if tier_totals(found, tiers) >= tier_totals(current, tiers):
                current = found
            if search_end - now() <= 0.3:
                break
        best = current
        if tier_totals(picks, tiers) > tier_totals(best, tiers):
            best = picks
        results = _split_bound(prep, best, tiers, weights, known, time.monotonic() - started)
        return Outcome(best, results, self.name)

    @staticmethod
    def restricted(
        m: RoundMatrix,
        c: FloatArray,
        profit: FloatArray,
        w_lp: FloatArray,
        picks: list[Pick],
        tiers: list[Tier],
        seconds: float,
        nodes: int | None = None,
    ) -> list[Pick]:
        """The restricted MIP's solution where it is better than `picks` (`nodes`: a node budget, for
        deterministic rounds)."""
        w = m.columns_of(picks)
        found = restricted_mip(m, c, restricted_columns(m, profit, w, w_lp, MIP_COLUMNS), w, seconds, nodes)
        if found is None:
            return picks
        better = m.picks_of(found)
        return better if tier_totals(better, tiers) > tier_totals(picks, tiers) else picks


def sharper_bound(
    m: RoundMatrix,
    tiers: list[Tier],
    weights: list[int],
    picks: list[Pick],
    known: int,
    c: FloatArray,
    price: FloatArray,
    seconds: float,
) -> tuple[int, BoolArray | None]:
    """`known`, or the knapsack bound (`matching.solvers.knapsack`) on the tiers the start leaves open plus the
    proven tiers' totals where that is lower (GAP-like rounds: every row but the candidates' a small knapsack); and
    the knapsack core at the bound's prices (`knapsack_core`), None where there is none."""
    held_m, open_values, open_at = hold_proven(m, tiers, weights, picks, known)
    totals = tier_totals(picks, tiers)
    held_total = sum(w * t for w, t in zip(weights[:open_at], totals[:open_at], strict=True))
    objective = held_m.objective(open_values)
    incumbent = held_m.columns_of(picks)
    found = held_bound(held_m, c, objective, price, incumbent, seconds)
    if found is None or not math.isfinite(found.bound):
        return known, None
    core = knapsack_core(held_m, objective, found, incumbent)
    return min(known, held_total + math.floor(found.bound + 1e-6)), core


def knapsack_core(m: RoundMatrix, c: FloatArray, bound: KnapsackBound, w: FloatArray) -> BoolArray | None:
    """Free columns of the knapsack core: the pairs cheapest to force into the knapsack relaxation at the candidate
    prices of `bound` (`knapsack.forcing_costs`), `CORE_PAIRS_PER_CANDIDATE` per candidate, each candidate's
    cheapest among them, and the incumbent's pairs. None where the relaxation's tables are too large.

    On GAP type D the good solutions lie there: CP-SAT on the 414 pairs of a 20 x 200 round found 12,244-12,260 in
    10 s from scratch, where on the 780 pairs of best LP reduced cost it found 12,263-12,354 (the reduced cost does
    not see what a knapsack must give up to take a pair). Smaller is better as long as every candidate keeps a
    choice: over the whole 20 s strategy, 1.5 pairs per candidate ended at 12,224-12,252 (12 seeds), 2 pairs at
    12,217-12,280, 3 pairs at 12,251-12,311."""
    costs = forcing_costs(bound.relaxation, c, bound.price)
    if costs is None:
        return None
    pair_cost = np.full(m.n_pairs, np.inf)
    placing = sp.coo_array(m.placed)
    np.minimum.at(pair_cost, placing.row, costs[placing.col])
    cand = m.prep.pairs.cand
    candidates = len(np.unique(cand))
    order = np.lexsort((np.arange(m.n_pairs), pair_cost))
    order = order[np.isfinite(pair_cost[order])]
    take = np.zeros(m.n_pairs, dtype=bool)
    take[order[: int(CORE_PAIRS_PER_CANDIDATE * candidates)]] = True
    take[first_per_candidate(order[np.argsort(cand[order], kind="stable")], cand, 1)] = True
    take |= m.pair_values(w) > 0.5
    return pair_columns(m, take)


def hold_proven(
    m: RoundMatrix, tiers: list[Tier], weights: list[int], picks: list[Pick], bound: int | None
) -> tuple[RoundMatrix, IntArray, int]:
    """Tiers the start already proves optimal (its total reaches the bound) held as rows, and the weighted values of
    the tiers left to search, from the first open one. A GAP instance whose start places every job then searches
    the cost alone, with every job placed as a constraint instead of a weight."""
    out = m
    rest = bound
    totals = tier_totals(picks, tiers)
    at = 0
    for (_, values), weight, total in zip(tiers, weights, totals, strict=True):
        if rest is None or at == len(tiers) - 1 or total < min(rest // weight, tier_ceiling(m.prep, values)):
            break
        out = hold(out, values, total)
        rest -= total * weight
        at += 1
    remaining = sum(w * np.asarray(v, dtype=np.int64) for w, (_, v) in zip(weights[at:], tiers[at:], strict=True))
    return out, np.asarray(remaining, dtype=np.int64), at


def solve_whole(
    m: RoundMatrix,
    tiers: list[Tier],
    picks: list[Pick],
    deadline: float,
    seed: int,
    workers: int,
    clock: WorkClock | None = None,
) -> tuple[list[Pick], list[TierResult] | None]:
    """Each tier in turn on the whole model, earlier ones held at their proven optimum; the picks, and every tier's
    result when all were proven (None otherwise). With a `clock`, `deadline` is on it (deterministic rounds)."""
    now = reader(clock)
    started = time.monotonic()
    everything = np.ones(m.n_cols, dtype=bool)
    totals: list[int] = []
    for position, (_, values) in enumerate(tiers):
        share = 1.0 if position == len(tiers) - 1 else 0.5
        seconds = share * (deadline - now())
        proof: list[bool] = []
        found = solve_neighbourhood(
            m, m.objective(values), everything, m.columns_of(picks), seconds, seed, workers, proof, clock
        )
        if found is not None:
            picks = m.picks_of(found)
        if not (proof and proof[0]):
            return picks, None
        total = int(np.asarray(values)[[p.pair for p in picks]].sum())
        totals.append(total)
        m = hold(m, values, total)
    seconds = time.monotonic() - started
    return picks, [TierResult(n, "OPTIMAL", t, t, seconds) for (n, _), t in zip(tiers, totals, strict=True)]


def hold(m: RoundMatrix, values: IntArray, total: int) -> RoundMatrix:
    """The model with a tier held at or above `total`. Where that places every candidate who has a pair, each
    candidate row becomes an equality, which solvers exploit far better than a count (one agent per job, in GAP)."""
    used = np.flatnonzero(values)
    out = m.with_rows([(used, np.asarray(values, dtype=np.float64)[used], float(total), math.inf)])
    if total == len(np.unique(m.prep.pairs.cand)) and (np.asarray(values) == 1).all():
        candidate_rows = (out.kind == KIND["candidate"]) & np.isin(out.owner, m.prep.pairs.cand)
        out = replace(out, lb=np.where(candidate_rows, 1.0, out.lb))
    return out


def start_solution(
    m: RoundMatrix, values: np.ndarray, price: np.ndarray, w_lp: np.ndarray, attractive: np.ndarray
) -> list[Pick]:
    """The better of two walks that check every rule (`place_in_order`): the pairs the LP uses in order of their LP
    value, funded and supervised as the LP prefers; and the min-cost flow at the LP's prices. Each then walks the
    pairs that lose little at the LP's prices, by worth. Only those pairs are walked, so the walk stays short."""
    prep = m.prep
    pins = pinned_pairs(prep)
    s = structure(m)
    c = m.objective(values)
    _, _, chosen, worth = evaluate(m, s, c, price)
    profit = c - m.a.T @ price
    preference = priced_preference(m, profit)
    lp_pairs = m.pair_values(w_lp)
    used = np.flatnonzero(lp_pairs > 1e-6)
    rest = np.flatnonzero(attractive)
    rest = rest[np.argsort(-worth[rest], kind="stable")]
    by_lp = used[np.lexsort((-np.asarray(values)[used], -np.round(lp_pairs[used], 6)))]
    rounded = place_in_order(prep, [*pins, *by_lp, *rest], preference=_lp_preference(m, w_lp, preference))
    flow_first = chosen[np.argsort(-worth[chosen], kind="stable")]
    priced = place_in_order(prep, [*pins, *flow_first, *rest], preference=preference)
    total = np.asarray(values)
    return max((rounded, priced), key=lambda p: int(total[[x.pair for x in p]].sum()) if p else 0)


def _lp_preference(m: RoundMatrix, w_lp: np.ndarray, priced: Preference) -> Preference:
    """Supervisor and funding rows the LP uses first (by how much), then by their priced cost."""
    prep = m.prep
    sup = priced.supervisor.copy()
    sup[m.sup_rows] += 1e12 * w_lp[m.z_at : m.y_at]
    fund = priced.funding.copy()
    fund[m.fund_rows] += 1e12 * w_lp[m.y_at : m.o_at]
    del prep
    return Preference(supervisor=sup, funding=fund)


def solve_parts(
    m: RoundMatrix, c: np.ndarray, w: np.ndarray, ctx: Context, clock: WorkClock | None = None
) -> np.ndarray:
    """Each independent part of at most PART_MAX_PAIRS pairs solved whole (when the round has several parts); with
    a `clock` (deterministic rounds), in deterministic time from a fixed share of the limit."""
    count, part = pair_components(m)
    if count < 2:
        return w
    sizes = np.bincount(part, minlength=count)
    small = np.flatnonzero((sizes > 0) & (sizes <= PART_MAX_PAIRS))
    col_pair = m.column_pair
    for p in small.tolist():
        left = DETERMINISTIC_SEARCH_SHARE * ctx.deadline.limit if clock is not None else ctx.deadline.left()
        share = left * 0.3 * sizes[p] / max(1, int(sizes[small].sum()))
        free = np.zeros(m.n_cols, dtype=bool)
        free[col_pair >= 0] = part[col_pair[col_pair >= 0]] == p
        free[m.o_at :] = True
        found = solve_neighbourhood(m, c, free, w, share, ctx.prep.instance.policy.seed, 1, clock=clock)
        if found is not None:
            w = found
    return w
