"""Greedy placement in a given order of pairs, respecting every capacity, budget and cap."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from matching.rules.ledger import Ledger, Use
from matching.rules.prepare import Prepared
from matching.rules.tables import FloatArray, IntArray


@dataclass(frozen=True)
class Preference:
    """Weights (higher first) over supervisor option rows and funding rows, e.g. an LP solution's values."""

    supervisor: FloatArray
    funding: FloatArray


@dataclass(frozen=True)
class Pick:
    """A chosen pair with its supervisor (index) and funding row (index into the pairs' fund arrays)."""

    pair: int
    supervisor: int
    fund_row: int


def pick_use(prep: Prepared, pick: Pick) -> Use:
    """What a pick takes from the ledger: its candidate, offer, supervisor, programme, months and grant."""
    inst, pairs, k = prep.instance, prep.pairs, pick.pair
    cand, offer = inst.candidates[int(pairs.cand[k])].id, inst.offers[int(pairs.offer[k])].id
    start, months = int(prep.tables.offers.start_month[pairs.offer[k]]), int(pairs.months[k])
    return _use(prep, cand, offer, start, months, pick.supervisor, pick.fund_row)


def _use(prep: Prepared, cand: str, offer: str, start: int, months: int, supervisor: int, fund_row: int) -> Use:
    pairs = prep.pairs
    return Use(
        candidate=cand,
        offer=offer,
        supervisor=prep.instance.supervisors[supervisor].id,
        programme=prep.instance.programmes[int(pairs.fund_programme[fund_row])].id,
        start_month=start,
        months=months,
        grant=int(pairs.fund_grant[fund_row]),
    )


def ledger_of(prep: Prepared, picks: Iterable[Pick]) -> Ledger:
    """A ledger holding what the picks use (added as they come: the caller vouches that they fit together)."""
    ledger = Ledger(prep.instance, prep.tables.limits)
    for pick in picks:
        ledger.add(pick_use(prep, pick))
    return ledger


def _rows_by_pair(pair_of_row: IntArray, n_pairs: int) -> IntArray:
    return np.searchsorted(pair_of_row, np.arange(n_pairs + 1))


def place_in_order(
    prep: Prepared, order: Iterable[int], ledger: Ledger | None = None, preference: Preference | None = None
) -> list[Pick]:
    """Walk the pairs in `order`, keeping each that still fits (supervisor and programme: the first that fits,
    in row order or by descending `preference`)."""
    inst, pairs = prep.instance, prep.pairs
    ledger = ledger or Ledger(inst, prep.tables.limits)
    sup_bounds = _rows_by_pair(prep.supervisors.pair, len(pairs))
    fund_bounds = _rows_by_pair(pairs.fund_pair, len(pairs))
    picks = []
    for k in order:
        k = int(k)
        cand = inst.candidates[int(pairs.cand[k])].id
        offer = inst.offers[int(pairs.offer[k])]
        if cand in ledger.placed or ledger.offer_used[offer.id] >= offer.slots:
            continue
        start = int(prep.tables.offers.start_month[pairs.offer[k]])
        months = int(pairs.months[k])
        pick = _first_fit(prep, ledger, k, cand, offer.id, start, months, sup_bounds, fund_bounds, preference)
        if pick is not None:
            picks.append(pick)
    return picks


def _first_fit(
    prep: Prepared,
    ledger: Ledger,
    k: int,
    cand: str,
    offer_id: str,
    start: int,
    months: int,
    sup_bounds: IntArray,
    fund_bounds: IntArray,
    preference: Preference | None,
) -> Pick | None:
    sup_rows = np.arange(sup_bounds[k], sup_bounds[k + 1])
    fund_rows = np.arange(fund_bounds[k], fund_bounds[k + 1])
    if preference is not None:
        sup_rows = sup_rows[np.argsort(-preference.supervisor[sup_rows], kind="stable")]
        fund_rows = fund_rows[np.argsort(-preference.funding[fund_rows], kind="stable")]
    for srow in sup_rows:
        s = int(prep.supervisors.choice[srow])
        for frow in fund_rows.tolist():
            # The pair's own fields come from the walk, read once per pair: read per option (`pick_use`) they made
            # the walk over a national round's 84,000 pairs a fifth slower.
            use = _use(prep, cand, offer_id, start, months, s, frow)
            if ledger.fits(use):
                ledger.add(use)
                return Pick(pair=k, supervisor=s, fund_row=frow)
    return None


def greedy(prep: Prepared, values: IntArray) -> list[Pick]:
    """Pins first, then pairs by descending value (ties: candidate then offer order)."""
    order = np.lexsort((np.arange(len(values)), -values))
    return place_in_order(prep, [*pinned_pairs(prep), *order])


def pinned_pairs(prep: Prepared) -> list[int]:
    """Indexes of the pinned pairs (each is eligible: checked before solving)."""
    t = prep.tables
    keys = prep.pairs.cand * max(1, len(prep.instance.offers)) + prep.pairs.offer
    wanted = [
        t.candidates.index[p.candidate_id] * max(1, len(prep.instance.offers)) + t.offers.index[p.offer_id]
        for p in prep.instance.policy.pins
    ]
    at = np.searchsorted(keys, wanted)
    return [int(i) for i in at]
