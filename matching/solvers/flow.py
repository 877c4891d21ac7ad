"""Exact solution by min-cost flow when no money or supervisor constraint can bind.

Network: source -> candidate (1) -> offer (cost -value) -> sink (slots), plus a zero-cost source -> sink bypass so
that leaving a candidate unplaced is allowed. Pinned pairs are placed first and take their slot.
"""

from __future__ import annotations

import numpy as np
from ortools.graph.python import min_cost_flow

from matching.rules.tables import IntArray

_LIMIT = 2**62


class FlowOverflow(ValueError):
    """The combined objective does not fit in 64-bit costs."""


def max_weight_assignment(
    cand: IntArray, offer: IntArray, value: IntArray, slots: IntArray, pinned: list[int]
) -> tuple[IntArray, int]:
    """Pairs (indexes) of a maximum-value assignment: each candidate at most once, each offer within its slots."""
    n_pairs = len(cand)
    if len(value) and int(value.max()) * max(1, len(np.unique(cand))) >= _LIMIT:
        raise FlowOverflow("objective too large for min-cost flow")
    pinned_set = np.zeros(n_pairs, dtype=bool)
    pinned_set[pinned] = True
    slots = slots.copy()
    np.subtract.at(slots, offer[pinned], 1)
    if (slots < 0).any():
        raise ValueError("more pins than slots at an offer")
    taken = np.zeros(int(cand.max()) + 1 if n_pairs else 0, dtype=bool)
    taken[cand[pinned]] = True
    free = np.flatnonzero(~taken[cand] & (value > 0)) if n_pairs else np.zeros(0, dtype=np.int64)
    chosen = _solve(cand[free], offer[free], value[free], slots)
    result = np.sort(np.concatenate([np.asarray(pinned, dtype=np.int64), free[chosen]]))
    return result, int(value[result].sum())


def _solve(cand: IntArray, offer: IntArray, value: IntArray, slots: IntArray) -> IntArray:
    if not len(cand):
        return np.zeros(0, dtype=np.int64)
    cands, c_node = np.unique(cand, return_inverse=True)
    offers, o_node = np.unique(offer, return_inverse=True)
    n_c, n_o = len(cands), len(offers)
    source, sink = 0, n_c + n_o + 1
    c_node = c_node + 1
    o_node = o_node + 1 + n_c
    flow = min_cost_flow.SimpleMinCostFlow()
    tails = np.concatenate([np.zeros(n_c, dtype=np.int64), c_node, np.arange(n_o) + 1 + n_c, [source]])
    heads = np.concatenate([np.arange(n_c) + 1, o_node, np.full(n_o, sink), [sink]])
    caps = np.concatenate([np.ones(n_c, dtype=np.int64), np.ones(len(cand), dtype=np.int64), slots[offers], [n_c]])
    costs = np.concatenate([np.zeros(n_c, dtype=np.int64), -value, np.zeros(n_o, dtype=np.int64), [0]])
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supplies = np.zeros(sink + 1, dtype=np.int64)
    supplies[source], supplies[sink] = n_c, -n_c
    flow.set_nodes_supplies(np.arange(sink + 1), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow ended with status {status}")
    pair_arcs = arcs[n_c : n_c + len(cand)]
    return np.flatnonzero(flow.flows(pair_arcs) > 0)
