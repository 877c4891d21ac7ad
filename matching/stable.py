"""Stable mode: linear rows that forbid blocking pairs, and a side-by-side comparison of deferred acceptance, the
optimiser and the optimiser with blocking pairs forbidden.

A pair (c, o) blocks when c prefers o to its match (or is unmatched) and o has a free slot or prefers c to its
worst holder (`matching.baselines.blocking_pairs`). With x the pair variables, (c, o) does not block exactly when

    sum of x over pairs at o that o strictly prefers to c  +  slots[o] * sum of x over c's pairs it likes at
    least as much as o  >=  slots[o]

(c is at o or somewhere better, or o is full of candidates it prefers to c). Where fewer than slots[o] pairs at o
rank above c, o can never be full of them, so the row is the same on 0/1 points as "c is at o or somewhere
better" (coefficients 1, right-hand side 1): smaller, and tighter in the LP relaxation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from matching.baselines import Matched, blocking_pairs, deferred_acceptance, preference_ranks
from matching.greedy import Pick, place_in_order
from matching.instance import Instance
from matching.prepare import Prepared, prepare
from matching.solution import Out, Solution, Status
from matching.solve import build_solution, solve
from matching.tables import BoolArray, IntArray

# Nonzeros of the no-blocking rows accepted by default: three int64 arrays of about 40 MB each here, and far more
# inside the solvers. A national round (85k pairs) needs 8.4M; a regional one (6k pairs) 0.2M.
MAX_TERMS = 5_000_000
EXAMPLES = 5  # blocking pairs listed by id in a comparison row

Method = Literal["deferred_acceptance", "optimiser", "optimiser_no_blocking"]


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


def count_blocking(instance_or_prep: Instance | Prepared, solution: Matched) -> int:
    """How many blocking pairs a solution (Solution, picks or pair indexes) has under the stated preferences."""
    prep = instance_or_prep if isinstance(instance_or_prep, Prepared) else prepare(instance_or_prep)
    return len(blocking_pairs(prep, solution))


# --- Comparison ----------------------------------------------------------------------------------------------------


class StableRow(Out):
    """One way of matching the round, with how many blocking pairs it leaves."""

    method: Method
    status: Status
    placements: int
    score: int
    granted: int
    money: dict[str, int]  # programme id -> SEK granted
    blocking_pairs: int | None  # None when there is no matching (infeasible or no solution in time)
    blocking_examples: list[tuple[str, str]]  # a few (candidate id, offer id)
    dropped: int | None = None  # deferred acceptance only: matches that got no supervisor or money
    wall_time_s: float


class StableComparison(Out):
    """Deferred acceptance, the optimiser and the optimiser without blocking pairs on the same round."""

    rows: list[StableRow]
    summary: list[str]


def compare(instance: Instance, *, time_limit_s: float | None = None) -> StableComparison:
    """Deferred acceptance (funded afterwards), the optimiser, and the optimiser with blocking pairs forbidden."""
    prep = prepare(instance)
    limit = instance.policy.time_limit_s if time_limit_s is None else time_limit_s
    rows = [_deferred_acceptance_row(prep)]
    runs: tuple[tuple[Method, bool], ...] = (("optimiser", False), ("optimiser_no_blocking", True))
    for method, forbid in runs:
        solution = solve(instance.with_policy(time_limit_s=limit, forbid_blocking=forbid))
        rows.append(_row(prep, method, solution, solution.status, None))
    return StableComparison(rows=rows, summary=_summary(rows, _limits(instance)))


@dataclass(frozen=True)
class FundedDA:
    """Deferred acceptance's matches and the part of them that got a supervisor and money."""

    matched: list[int]  # DA's pairs (stable under the stated preferences, resources ignored)
    picks: list[Pick]  # the funded ones, with supervisor and funding row
    solution: Solution  # the funded ones as a Solution (status UNKNOWN: nothing is optimised)

    @property
    def dropped(self) -> int:
        """DA matches that could not get a supervisor or money."""
        return len(self.matched) - len(self.picks)


def funded_deferred_acceptance(prep: Prepared) -> FundedDA:
    """DA's matches (pins ignored, like DA), then a supervisor and money for each in turn through the Ledger."""
    started = time.monotonic()
    matched = deferred_acceptance(prep).pairs
    cand_rank, _ = preference_ranks(prep)
    # Candidates who got a higher choice are funded first (first choices before second choices), then by score.
    choice = _within_group(prep.pairs.cand, np.argsort(cand_rank))
    order = sorted(matched, key=lambda k: (int(choice[k]), -int(prep.scores.total[k]), k))
    picks = place_in_order(prep, order)
    solution = build_solution(prep, picks, [], "deferred_acceptance", time.monotonic() - started)
    return FundedDA(matched=matched, picks=picks, solution=solution)


def _deferred_acceptance_row(prep: Prepared) -> StableRow:
    funded = funded_deferred_acceptance(prep)
    return _row(prep, "deferred_acceptance", funded.solution, "FEASIBLE", funded.dropped)


def _row(prep: Prepared, method: Method, solution: Solution, status: Status, dropped: int | None) -> StableRow:
    has_matching = status in ("OPTIMAL", "FEASIBLE")
    blocking = blocking_pairs(prep, solution) if has_matching else []
    ids_c, ids_o = prep.instance.candidates, prep.instance.offers
    return StableRow(
        method=method,
        status=status,
        placements=solution.placements,
        score=solution.score,
        granted=sum(m.granted for m in solution.money),
        money={m.programme_id: m.granted for m in solution.money},
        blocking_pairs=len(blocking) if has_matching else None,
        blocking_examples=[(ids_c[c].id, ids_o[o].id) for c, o in blocking[:EXAMPLES]],
        dropped=dropped,
        wall_time_s=solution.wall_time_s,
    )


def _limits(instance: Instance) -> str:
    """The constraints a stable matching must also meet, in words."""
    policy = instance.policy
    parts = ["the supervisor seats", "the money"]
    parts += [name for name, on in (("the pins", policy.pins), ("the floors", policy.floors)) if on]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _summary(rows: list[StableRow], limits: str) -> list[str]:
    da, opt, stable = rows
    assert da.dropped is not None
    matched = da.placements + da.dropped
    lines = [
        f"Deferred acceptance places {da.placements}"
        + (f" ({da.dropped} of its {matched} matches could not get a supervisor or money)" if da.dropped else "")
        + f"; {_blocking_text(da)}."
    ]
    if opt.blocking_pairs is None:
        lines.append(f"The optimiser found no matching ({opt.status}).")
    else:
        lines.append(f"The optimiser places {opt.placements} with score {opt.score}; {_blocking_text(opt)}.")
    if stable.status == "INFEASIBLE":
        lines.append(f"No matching without blocking pairs fits {limits}.")
    elif stable.blocking_pairs is None:
        lines.append(f"Forbidding blocking pairs, the optimiser found no matching in time ({stable.status}).")
    else:
        text = f"Forbidding blocking pairs places {stable.placements} with score {stable.score}"
        if stable.blocking_pairs:
            text += f", yet {stable.blocking_pairs} blocking pairs remain (the rule was not enforced)"
        lines.append(text + ".")
        if opt.blocking_pairs is not None and not stable.blocking_pairs:
            lines.append(_price(opt, stable))
    return lines


def _price(opt: StableRow, stable: StableRow) -> str:
    lost = opt.placements - stable.placements
    if lost > 0:
        return f"Stability costs {lost} placement{'s' if lost != 1 else ''} against the optimiser."
    if lost < 0:
        return f"Forbidding blocking pairs places {-lost} more than the optimiser (whose objective weighs more)."
    return f"Stability costs no placements; the score changes by {stable.score - opt.score}."


def _blocking_text(row: StableRow) -> str:
    count = row.blocking_pairs or 0
    return "no blocking pairs" if count == 0 else f"{count} blocking pair{'s' if count != 1 else ''}"
