"""Tiers combined into one value per pair, for the methods that take a single objective (flow, greedy, CP-SAT)."""

from __future__ import annotations

import numpy as np

from matching.model.spec import Tier
from matching.rules.prepare import Prepared
from matching.rules.tables import IntArray
from matching.solvers.flow import FlowOverflow


def tier_ceiling(prep: Prepared, values: IntArray) -> int:
    """An upper bound on a tier's total: each candidate's best pair."""
    best = np.zeros(len(prep.instance.candidates), dtype=np.int64)
    np.maximum.at(best, prep.pairs.cand, values)
    return int(best.sum())


def tier_weights(prep: Prepared, tiers: list[Tier]) -> list[int]:
    """A weight per tier such that each tier outweighs everything after it; FlowOverflow past 64 bits."""
    weights = []
    weight = 1
    for _, values in reversed(tiers):
        weights.append(weight)
        weight *= tier_ceiling(prep, values) + 1
    if weight >= 2**62 // max(1, len(prep.instance.candidates)):
        raise FlowOverflow("tiers too large to combine in 64-bit integers")
    return weights[::-1]


def combined_values(prep: Prepared, tiers: list[Tier]) -> IntArray:
    """One value per pair that orders solutions like the tiers do."""
    total = np.zeros(len(prep.pairs), dtype=np.int64)
    for weight, (_, values) in zip(tier_weights(prep, tiers), tiers, strict=True):
        total += weight * values
    return total
