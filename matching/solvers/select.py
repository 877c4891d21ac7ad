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
    mip_affordable,
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
    combined in 64 bits (which the neighbourhood search needs) and in deterministic mode where HiGHS would not fit.
    """
    if method != "auto":
        strategy = METHODS[method]()
        if method == "flow" and not strategy.applies(ctx):
            raise ValueError("min-cost flow does not apply: a supervisor, budget or cap constraint can bind")
        return strategy
    flow, mip, large = FlowStrategy(), MipStrategy(), LnsStrategy()
    if flow.applies(ctx):
        return flow
    # Deterministic rounds too large for HiGHS in their limit keep to CP-SAT (one search in deterministic time).
    if mip.applies(ctx) and (mip_affordable(ctx.prep) or not ctx.deterministic):
        return mip
    # The neighbourhood search runs until the wall clock says stop; deterministic rounds keep to CP-SAT's
    # deterministic time instead, so that a re-run repeats exactly. From MIN_PAIRS pairs (stress scale) the round's
    # compact matrix alone outgrows memory and time: Lagrangian prices on the prepared arrays instead.
    priced = PricedStrategy()
    if not ctx.deterministic and len(ctx.prep.pairs) >= MIN_PAIRS and priced.applies(ctx):
        return priced
    if not ctx.deterministic and large.applies(ctx):
        return large
    return CpSatStrategy()
