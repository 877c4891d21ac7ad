"""Which strategy solves a round: the one asked for by name, or (`auto`) by the round's structure and size."""

from __future__ import annotations

from collections.abc import Callable

from matching.solvers.large import LnsStrategy
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
}


def choose(ctx: Context, method: str) -> Strategy:
    """The strategy for a round: the one asked for, or by structure and size (`auto`).

    `auto`: min-cost flow where nothing can bind; the lexicographic MIP where the model is small for its time limit
    (it proves the demo region, 9,900 columns, in about 5 s at 10 s, but needs longer than 2 s on a regional round
    of 18,000 columns); otherwise the LP-guided large-neighbourhood search, which at 2 s on the regional benchmark
    placed as many as or more than CP-SAT from its hint (146 and 142 against 146 and 135); CP-SAT where the tiers
    cannot be combined in 64 bits (which the neighbourhood search needs) and in deterministic mode.
    """
    if method != "auto":
        strategy = METHODS[method]()
        if method == "flow" and not strategy.applies(ctx):
            raise ValueError("min-cost flow does not apply: a supervisor, budget or cap constraint can bind")
        return strategy
    flow, mip, large = FlowStrategy(), MipStrategy(), LnsStrategy()
    if flow.applies(ctx):
        return flow
    if mip.applies(ctx) and mip_affordable(ctx.prep):
        return mip
    # The neighbourhood search runs until the wall clock says stop; deterministic rounds keep to CP-SAT's
    # deterministic time instead, so that a re-run repeats exactly.
    if not ctx.deterministic and large.applies(ctx):
        return large
    return CpSatStrategy()
