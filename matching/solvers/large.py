"""The strategy for large rounds: an LP bound by column generation, a primal solution from the LP's prices, then
large-neighbourhood search until the deadline (`LnsStrategy`, method `lns`).

1. The round as one compact matrix (`matching.solvers.matrix`); its independent parts (`decompose`).
2. The LP of the weighted tiers by column generation over the programme choice (`colgen`): the bound, and row
   prices for everything after.
3. A complete solution: the min-cost flow at the LP's prices, repaired by the greedy walk that checks every rule
   (`lagrange.repair`), and the LP rounded in order of its values; the better one.
4. CP-SAT on neighbourhoods chosen from the LP (`lns`), each part of the round small enough solved whole first.
"""

from __future__ import annotations

import math
import time

import numpy as np

from matching.solvers.colgen import _first_columns, generate_columns
from matching.solvers.cpsat import _split_bound, tier_totals
from matching.solvers.decompose import pair_components
from matching.solvers.flow import FlowOverflow
from matching.solvers.greedy import Pick, pinned_pairs, place_in_order
from matching.solvers.lagrange import LagrangeResult, _structure, evaluate, repair
from matching.solvers.lns import search, solve_neighbourhood
from matching.solvers.matrix import RoundMatrix, build_matrix
from matching.solvers.objective import combined_values, tier_weights
from matching.solvers.strategies import Context, CpSatStrategy, Outcome, Strategy

LP_SHARE = 0.45  # of the search time, at most, for the LP bound
PART_MAX_PAIRS = 4000  # an independent part up to this many pairs is solved whole


class LnsStrategy(Strategy):
    """LP bound by column generation, LP-priced repair, then LP-guided large-neighbourhood search."""

    name = "lns"

    def applies(self, ctx: Context) -> bool:
        try:
            tier_weights(ctx.prep, ctx.tiers)
        except FlowOverflow:
            return False
        return bool(len(ctx.prep.pairs))

    def run(self, ctx: Context) -> Outcome:
        if not self.applies(ctx):
            return CpSatStrategy().run(ctx)
        prep, tiers = ctx.prep, ctx.tiers
        started = time.monotonic()
        weights = tier_weights(prep, tiers)
        values = combined_values(prep, tiers)
        ctx.reporter.report("model", strategy=self.name)
        m = build_matrix(prep)
        ctx.reporter.report("bound", strategy=self.name)
        c = m.objective(values)
        lp_end = time.monotonic() + LP_SHARE * ctx.deadline.left()
        lp, bound, _, _ = generate_columns(m, c, _first_columns(m), lp_end)
        picks = start_solution(m, values, lp.price if lp.ok else np.zeros(len(m.lb)), lp.w)
        ctx.reporter.picks("start", prep, picks, self.name)
        w = m.columns_of(picks)
        profit = c - m.a.T @ lp.price if lp.ok else np.zeros(m.n_cols)
        w = solve_parts(m, c, w, ctx)
        policy = prep.instance.policy

        def report(kind: str, found: list[Pick]) -> None:
            ctx.reporter.picks(f"search ({kind})", prep, found, self.name)

        w, _ = search(
            m,
            values,
            w,
            profit,
            lp.w,
            ctx.deadline.search_end,
            seed=policy.seed,
            workers=1 if policy.deterministic else policy.workers,
            report=report,
        )
        best = m.picks_of(w)
        if tier_totals(picks, tiers) > tier_totals(best, tiers):
            best = picks
        known = math.floor(bound + 1e-6) if lp.ok and math.isfinite(bound) else None
        results = _split_bound(prep, best, tiers, weights, known, time.monotonic() - started)
        return Outcome(best, results, self.name)


def start_solution(m: RoundMatrix, values: np.ndarray, price: np.ndarray, w_lp: np.ndarray) -> list[Pick]:
    """The better of the flow at the LP's prices repaired, and the LP rounded in order of its values."""
    prep = m.prep
    pins = pinned_pairs(prep)
    s = _structure(m)
    c = m.objective(values)
    _, _, chosen, worth = evaluate(m, s, c, price)
    priced = repair(m, LagrangeResult(math.nan, price, worth, chosen, 0, 0.0), values, pins)
    lp_pairs = m.pair_values(w_lp)
    order = np.lexsort((-np.asarray(values), -np.round(lp_pairs, 6)))
    rounded = place_in_order(prep, [*pins, *order])
    # When money binds, cheap matches place more people: the cheapest funding first, then by value.
    cheapest = np.full(len(prep.pairs), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(cheapest, prep.pairs.fund_pair, prep.pairs.fund_grant)
    cheap = place_in_order(prep, [*pins, *np.lexsort((-np.asarray(values), cheapest))])
    tiers_values = np.asarray(values)
    return max((priced, rounded, cheap), key=lambda p: int(tiers_values[[x.pair for x in p]].sum()) if p else 0)


def solve_parts(m: RoundMatrix, c: np.ndarray, w: np.ndarray, ctx: Context) -> np.ndarray:
    """Each independent part of at most PART_MAX_PAIRS pairs solved whole (when the round has several parts)."""
    count, part = pair_components(m)
    if count < 2:
        return w
    sizes = np.bincount(part, minlength=count)
    small = np.flatnonzero((sizes > 0) & (sizes <= PART_MAX_PAIRS))
    col_pair = m.column_pair
    for p in small.tolist():
        share = ctx.deadline.left() * 0.3 * sizes[p] / max(1, int(sizes[small].sum()))
        free = np.zeros(m.n_cols, dtype=bool)
        free[col_pair >= 0] = part[col_pair[col_pair >= 0]] == p
        free[m.o_at :] = True
        found = solve_neighbourhood(m, c, free, w, share, ctx.prep.instance.policy.seed, 1)
        if found is not None:
            w = found
    return w
