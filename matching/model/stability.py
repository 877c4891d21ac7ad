"""Stability: the stated preferences, blocking pairs, and the linear rows that forbid them.

A pair (c, o) blocks when c prefers o to its match (or is unmatched) and o has a free slot or prefers c to its
worst holder (`blocking_pairs`). With x the pair variables, (c, o) does not block exactly when

    sum of x over pairs at o that o strictly prefers to c  +  slots[o] * sum of x over c's pairs it likes at
    least as much as o  >=  slots[o]

(c is at o or somewhere better, or o is full of candidates it prefers to c). Where fewer than slots[o] pairs at o
rank above c, o can never be full of them, so the row is the same on 0/1 points as "c is at o or somewhere
better" (coefficients 1, right-hand side 1): smaller, and tighter in the LP relaxation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from matching.model.solution import Solution
from matching.rules.prepare import Prepared
from matching.rules.tables import BoolArray, IntArray
from matching.solvers.greedy import Pick

Matched = Iterable[int] | Iterable[Pick] | Solution

_UNMATCHED = np.iinfo(np.int64).max  # preference rank of "no match": worse than any offer

# Nonzeros of the no-blocking rows accepted by default: three int64 arrays of about 40 MB each here, and far more
# inside the solvers. A national round (85k pairs) needs 8.4M; a regional one (6k pairs) 0.2M.
MAX_TERMS = 5_000_000


class TooManyTerms(ValueError):
    """The no-blocking rows would be too large to build or solve."""


@dataclass(frozen=True)
class NoBlocking:
    """The no-blocking rows in coordinate form: entry i adds coef[i] * x[col[i]] to row row[i] (sorted by row);
    row r guards pair pair[r] and says its sum >= rhs[r]."""

    pair: IntArray
    rhs: IntArray
    row: IntArray
    col: IntArray
    coef: IntArray

    def rows(self) -> list[tuple[IntArray, IntArray, int]]:
        """One (columns, coefficients, right-hand side) per row."""
        bounds = np.searchsorted(self.row, np.arange(len(self.rhs) + 1))
        return [
            (self.col[lo:hi], self.coef[lo:hi], int(rhs))
            for lo, hi, rhs in zip(bounds[:-1], bounds[1:], self.rhs, strict=True)
        ]


@dataclass(frozen=True)
class _Positions:
    """Per pair, how many pairs rank above it at its offer and at its candidate; and the two sort orders."""

    by_offer: IntArray  # pair indexes, grouped by offer, the offer's favourite first
    by_cand: IntArray  # pair indexes, grouped by candidate, the candidate's favourite first
    at_offer: IntArray  # per pair: pairs at the same offer that the offer strictly prefers
    at_cand: IntArray  # per pair: pairs of the same candidate that the candidate strictly prefers


def _positions(prep: Prepared) -> _Positions:
    cand_rank, offer_rank = preference_ranks(prep)
    pairs = prep.pairs
    # Ranks are global positions of a sort whose first key is the offer (or candidate), so sorting by them groups.
    by_offer, by_cand = np.argsort(offer_rank), np.argsort(cand_rank)
    return _Positions(
        by_offer=by_offer,
        by_cand=by_cand,
        at_offer=_within_group(pairs.offer, by_offer),
        at_cand=_within_group(pairs.cand, by_cand),
    )


def _within_group(key: IntArray, order: IntArray) -> IntArray:
    """Per element, its position within its key's group in `order` (which lists each group contiguously)."""
    n = len(order)
    sorted_key = key[order]
    first = np.searchsorted(sorted_key, sorted_key, side="left")
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n) - first
    return out


def _uses_offer_terms(prep: Prepared, pos: _Positions) -> tuple[IntArray, BoolArray]:
    """Pairs that get a row (offer has slots) and, per pair, whether its row needs the offer's terms."""
    slots = prep.tables.offers.slots[prep.pairs.offer]
    guarded = np.flatnonzero(slots > 0).astype(np.int64)
    full_possible = pos.at_offer >= slots
    return guarded, full_possible


def count_terms(prep: Prepared) -> int:
    """Nonzeros of the no-blocking rows (they grow with the square of the preference lists' lengths)."""
    pos = _positions(prep)
    guarded, offer_terms = _uses_offer_terms(prep, pos)
    per_row = pos.at_cand[guarded] + 1 + np.where(offer_terms[guarded], pos.at_offer[guarded], 0)
    return int(per_row.sum())


def _prefix_entries(order: IntArray, counts: IntArray, inclusive: bool) -> tuple[IntArray, IntArray]:
    """For each pair k emitting counts[k] > 0 entries: (k, the counts[k] pairs just before k in `order`), with k
    itself as the last of them when `inclusive`. Returns (owner pair, column pair) per entry."""
    n = len(order)
    sorted_counts = counts[order]
    total = int(sorted_counts.sum())
    owner_at = np.repeat(np.arange(n), sorted_counts)
    offset = np.arange(total) - np.repeat(np.cumsum(sorted_counts) - sorted_counts, sorted_counts)
    # Entries of the owner at sorted position p are positions p - count .. p - 1 (shifted by one when inclusive).
    col_at = owner_at - sorted_counts[owner_at] + offset + (1 if inclusive else 0)
    return order[owner_at], order[col_at]


def no_blocking(prep: Prepared, max_terms: int = MAX_TERMS) -> NoBlocking:
    """The no-blocking rows in coordinate form (see the module docstring); TooManyTerms past `max_terms`."""
    terms = count_terms(prep)
    if terms > max_terms:
        raise TooManyTerms(
            f"forbidding blocking pairs needs {terms:,} constraint terms (limit {max_terms:,}): the preference "
            "lists are too long for this round; shorten them (wishes, clinic rankings, commute) or split the round"
        )
    pairs, slots = prep.pairs, prep.tables.offers.slots
    n = len(pairs)
    pos = _positions(prep)
    guarded, offer_terms = _uses_offer_terms(prep, pos)
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[guarded] = np.arange(len(guarded))
    has_row = row_of >= 0
    weight = np.where(offer_terms, slots[pairs.offer], 1)
    cand_owner, cand_col = _prefix_entries(pos.by_cand, np.where(has_row, pos.at_cand + 1, 0), True)
    offer_counts = np.where(has_row & offer_terms, pos.at_offer, 0)
    offer_owner, offer_col = _prefix_entries(pos.by_offer, offer_counts, False)
    row = np.concatenate([row_of[offer_owner], row_of[cand_owner]])
    col = np.concatenate([offer_col, cand_col])
    coef = np.concatenate([np.ones(len(offer_owner), dtype=np.int64), weight[cand_owner]])
    order = np.argsort(row, kind="stable")
    return NoBlocking(
        pair=guarded.astype(np.int64),
        rhs=weight[guarded].astype(np.int64),
        row=row[order],
        col=col[order].astype(np.int64),
        coef=coef[order].astype(np.int64),
    )


def no_blocking_rows(prep: Prepared, max_terms: int = MAX_TERMS) -> list[tuple[IntArray, IntArray, int]]:
    """One row per eligible pair at an offer with slots: sum(coef * x[cols]) >= rhs holds for every row exactly
    when the matching x has no blocking pair. TooManyTerms when the rows would exceed `max_terms` nonzeros."""
    return no_blocking(prep, max_terms).rows()


def preference_ranks(prep: Prepared) -> tuple[IntArray, IntArray]:
    """Per pair, its position in its candidate's and in its offer's preference order (lower is preferred)."""
    # Candidates rank by wish, then pair score, then offer index; offers by the clinic's ranking, then pair score,
    # then candidate index. Positions are global, so compare them only within one candidate or one offer.
    pairs, comps, score = prep.pairs, prep.scores.components, prep.scores.total
    n = len(pairs)
    cand_rank = np.empty(n, dtype=np.int64)
    cand_rank[np.lexsort((pairs.offer, -score, -comps["wish"], pairs.cand))] = np.arange(n)
    offer_rank = np.empty(n, dtype=np.int64)
    offer_rank[np.lexsort((pairs.cand, -score, -comps["clinic"], pairs.offer))] = np.arange(n)
    return cand_rank, offer_rank


def matched_pairs(prep: Prepared, matched: Matched) -> IntArray:
    """Pair indexes of a solution given as pair indexes, picks or a Solution (its pairs must be eligible)."""
    if isinstance(matched, Solution):
        t, n_offers = prep.tables, max(1, len(prep.instance.offers))
        keys = prep.pairs.cand * n_offers + prep.pairs.offer
        wanted = np.array(
            [t.candidates.index[a.candidate_id] * n_offers + t.offers.index[a.offer_id] for a in matched.assignments],
            dtype=np.int64,
        )
        at = np.clip(np.searchsorted(keys, wanted), 0, max(0, len(keys) - 1))
        if len(wanted) and (not len(keys) or (keys[at] != wanted).any()):
            raise ValueError("the solution matches a pair that is not eligible")
        return at.astype(np.int64)
    out = np.array([m.pair if isinstance(m, Pick) else int(m) for m in matched], dtype=np.int64)
    if len(out) and (out.min() < 0 or out.max() >= len(prep.pairs)):
        raise ValueError("pair index out of range")
    return out


def blocking_pairs(prep: Prepared, matched: Matched) -> list[tuple[int, int]]:
    """Eligible (candidate, offer) pairs that would both rather be together than keep what they have."""
    # The candidate prefers the offer to its match (or is unmatched); the offer has a free slot or prefers the
    # candidate to its worst holder. Preferences are those of `deferred_acceptance`.
    pairs, slots = prep.pairs, prep.tables.offers.slots
    chosen = matched_pairs(prep, matched)
    if len(np.unique(pairs.cand[chosen])) != len(chosen):
        raise ValueError("a candidate is matched twice")
    cand_rank, offer_rank = preference_ranks(prep)
    current = np.full(len(prep.instance.candidates), _UNMATCHED, dtype=np.int64)
    current[pairs.cand[chosen]] = cand_rank[chosen]
    held = np.bincount(pairs.offer[chosen], minlength=len(prep.instance.offers))
    worst = np.full(len(prep.instance.offers), -1, dtype=np.int64)
    np.maximum.at(worst, pairs.offer[chosen], offer_rank[chosen])
    wants = cand_rank < current[pairs.cand]
    welcome = (held[pairs.offer] < slots[pairs.offer]) | (offer_rank < worst[pairs.offer])
    return [(int(pairs.cand[k]), int(pairs.offer[k])) for k in np.flatnonzero(wants & welcome)]


def count_blocking_pairs(prep: Prepared, matched: Matched) -> int:
    """How many blocking pairs a solution has (0: stable under the stated preferences)."""
    return len(blocking_pairs(prep, matched))
