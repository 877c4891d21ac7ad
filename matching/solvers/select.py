"""Which strategy solves a round: the one asked for by name, or (`auto`) by the round's structure and size."""

from __future__ import annotations

from collections.abc import Callable

from matching.solvers.large import LnsStrategy
from matching.solvers.priced import MIN_PAIRS, PricedStrategy
from matching.solvers.strategies import (
    Context,
    CpSatStrategy,
    FlowStrategy,
    GreedyStrategy,
    MipStrategy,
    Strategy,
)

METHODS: dict[str, Callable[[], Strategy]] = {
    "flow": FlowStrategy,
    "mip": MipStrategy,
    "cp_sat": CpSatStrategy,
    "greedy": GreedyStrategy,
    "lns": LnsStrategy,
    "lagrange": PricedStrategy,
}


def choose(ctx: Context, method: str) -> Strategy:
    """The strategy for a round: the one asked for, or by structure and size (`auto`).

    `auto`: min-cost flow where nothing can bind; the lexicographic MIP strategy up to MIP_MAX_COLUMNS columns
    (HiGHS inside it only where it can finish in the time limit: it proves the demo region, 9,900 columns, in about
    5 s; beside it, and alone on regional rounds at 2 s, CP-SAT on LP-guided parts, which placed 148 and 143 there
    like HiGHS at 60 s); otherwise the LP-guided large-neighbourhood search, or from `priced.MIN_PAIRS` pairs the
    Lagrangian strategy (`matching.solvers.priced`); CP-SAT where the tiers cannot be
    combined in 64 bits (which the neighbourhood search needs). Deterministic rounds take the same strategies, each
    counting work instead of the wall clock.
    """
    if method != "auto":
        strategy = METHODS[method]()
        if method == "flow" and not strategy.applies(ctx):
            raise ValueError("min-cost flow does not apply: a supervisor, budget or cap constraint can bind")
        return strategy
    flow, mip, large = FlowStrategy(), MipStrategy(), LnsStrategy()
    if flow.applies(ctx):
        return flow
    # Deterministic rounds too large for HiGHS in their limit run the same strategy without it: the LP and CP-SAT's
    # parts in deterministic time (regional rounds at 2 s, load 1: 148 and 143 placed with scores of 756,248 and
    # 774,029, where CP-SAT alone, chosen here before, gave 739,392 and 738,477).
    if mip.applies(ctx):
        return mip
    # From MIN_PAIRS pairs (stress scale) the round's compact matrix alone outgrows memory and time: Lagrangian
    # prices on the prepared arrays instead, in a deterministic round too (it counts work there; CP-SAT, chosen for
    # those before, gave no result for a stress round within 720 s).
    priced = PricedStrategy()
    if len(ctx.prep.pairs) >= MIN_PAIRS and priced.applies(ctx):
        return priced
    # The neighbourhood search counts deterministic time in a deterministic round (`clock.WorkClock`): national:0 at
    # 30 s placed 1,196 in 25.9 s, where CP-SAT, chosen here before, placed 1,135 in 43 s.
    if large.applies(ctx):
        return large
    return CpSatStrategy()
