"""Offer-group neighbourhoods for the large-neighbourhood search: a few offers and everyone placed at them.

A neighbourhood here is a small group of offers: every pair between those offers and the candidates the incumbent
places at one of them (or leaves unplaced, where the pair is attractive at the LP's prices) is free; everything else
stays fixed. Inside the group the sub-model is the whole round in small (the same slots, seats, budgets and caps,
less what the fixed pairs use), so CP-SAT can move candidates between the group's offers in every combination and
usually proves the group's optimum in a fraction of a second: for a generalized-assignment round this is the
classic "reassign the jobs of a few agents" move, which the pair-by-pair neighbourhoods (a random share of the
attractive pairs, whose candidates are mostly held at their incumbent offers) cannot make.

Which offers go together matters more than how many: an offer joins the group with a probability that grows with
its *affinity* to the offers already in it, the number of candidates placed at one that have an attractive pair
at the other (they could move there at little loss). The group's size in pairs adapts to what CP-SAT manages: it
grows after a proven group and shrinks after one the time cut short.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.matrix import RoundMatrix

MIN_PAIRS = 60  # smallest group target, in free pairs
MAX_PAIRS = 6000  # largest group target
GROW = 1.25  # target factor after a group proven optimal well within its time
SHRINK = 0.8  # target factor after a group the time cut short
AFFINITY_FLOOR = 0.05  # share of the draw left to offers without affinity (diversity)


@dataclass
class GroupSize:
    """The adaptive target size of offer groups, in free pairs."""

    pairs: float = 400.0

    def update(self, proven: bool, quick: bool) -> None:
        """Grow after a group proven optimal quickly, shrink after one cut short by the time."""
        if proven and quick:
            self.pairs = min(MAX_PAIRS, self.pairs * GROW)
        elif not proven:
            self.pairs = max(MIN_PAIRS, self.pairs * SHRINK)


def incumbent_offer(m: RoundMatrix, w: FloatArray) -> IntArray:
    """Per candidate, the offer the column values place it at, or -1."""
    pairs = m.prep.pairs
    out = np.full(len(m.prep.instance.candidates), -1, dtype=np.int64)
    placed = np.flatnonzero(m.pair_values(w) > 0.5)
    out[pairs.cand[placed]] = pairs.offer[placed]
    return out


def affinity(m: RoundMatrix, at: IntArray, attractive: BoolArray) -> sp.csr_array:
    """Offers x offers: how many candidates placed at one have an attractive pair at the other (symmetric)."""
    pairs = m.prep.pairs
    n_offers = len(m.prep.instance.offers)
    candidate_at = at[pairs.cand]
    link = attractive & (candidate_at >= 0) & (candidate_at != pairs.offer)
    counts = sp.csr_array(
        (np.ones(int(link.sum())), (candidate_at[link], pairs.offer[link])), shape=(n_offers, n_offers)
    )
    return sp.csr_array(counts + counts.T)


def group_pairs(m: RoundMatrix, group: BoolArray, at: IntArray, attractive: BoolArray) -> BoolArray:
    """Free pairs of an offer group: pairs at the group's offers of candidates placed in the group, and attractive
    pairs there of candidates placed nowhere."""
    pairs = m.prep.pairs
    candidate_at = at[pairs.cand]
    inside = np.zeros(len(group) + 1, dtype=bool)
    inside[:-1] = group  # index -1 (unplaced) reads the last entry: False
    return group[pairs.offer] & (inside[candidate_at] | ((candidate_at < 0) & attractive))


def choose_group(
    m: RoundMatrix,
    at: IntArray,
    attractive: BoolArray,
    links: sp.csr_array,
    size: float,
    rng: np.random.Generator,
) -> BoolArray:
    """Free pairs of a group of offers grown from a random offer with placed candidates, each next offer drawn by
    its affinity to the group, until the group has about `size` free pairs."""
    pairs = m.prep.pairs
    n_offers = len(m.prep.instance.offers)
    per_offer = np.bincount(pairs.offer, minlength=n_offers)
    used = np.flatnonzero(np.bincount(at[at >= 0], minlength=n_offers) > 0)
    seeds = used if len(used) else np.flatnonzero(per_offer)
    group = np.zeros(n_offers, dtype=bool)
    if not len(seeds):
        return np.zeros(len(pairs), dtype=bool)
    group[rng.choice(seeds)] = True
    free = group_pairs(m, group, at, attractive)
    while free.sum() < size and not group.all():
        pull = np.asarray(links @ group.astype(np.float64), dtype=np.float64)
        weight = np.where(group | (per_offer == 0), 0.0, pull + AFFINITY_FLOOR * max(1.0, float(pull.max())))
        if weight.sum() <= 0:
            break
        group[rng.choice(n_offers, p=weight / weight.sum())] = True
        free = group_pairs(m, group, at, attractive)
    return free
