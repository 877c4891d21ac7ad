"""Stable mode: a side-by-side comparison of deferred acceptance, the optimiser and the optimiser with blocking
pairs forbidden (the rows that forbid them are in `matching.model.stability`)."""

from __future__ import annotations

import heapq
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from matching.input.instance import Instance
from matching.model.solution import Out, Solution, Status
from matching.model.stability import Matched, _within_group, blocking_pairs, preference_ranks
from matching.rules.prepare import Prepared, prepare
from matching.solvers.greedy import Pick, place_in_order
from matching.solvers.solve import build_solution, solve

EXAMPLES = 5  # blocking pairs listed by id in a comparison row
Method = Literal["deferred_acceptance", "optimiser", "optimiser_no_blocking"]


@dataclass(frozen=True)
class DAResult:
    """Outcome of candidate-proposing deferred acceptance."""

    pairs: list[int]  # matched pairs, indexes into prep.pairs, sorted
    proposals: int
    blocking: list[tuple[int, int]] = field(default_factory=list)  # (candidate, offer); empty when stable


def deferred_acceptance(prep: Prepared) -> DAResult:
    """Candidate-proposing deferred acceptance (Gale-Shapley, offer capacity = slots) over the eligible pairs."""
    # Supervisors, money and pins are ignored: stability is about the stated preferences only.
    pairs, slots = prep.pairs, prep.tables.offers.slots
    cand_rank, offer_rank = preference_ranks(prep)
    by_pref = np.argsort(cand_rank)  # grouped by candidate (candidate is the first sort key), best first
    bounds = np.searchsorted(pairs.cand[by_pref], np.arange(len(prep.instance.candidates) + 1))
    cursor = bounds[:-1].copy()
    held: dict[int, list[tuple[int, int]]] = {}  # offer -> heap of (-offer rank, pair): the worst holder on top
    free = deque(int(c) for c in np.unique(pairs.cand))
    proposals = 0
    while free:
        c = free.popleft()
        if cursor[c] >= bounds[c + 1]:
            continue
        k = int(by_pref[cursor[c]])
        cursor[c] += 1
        proposals += 1
        o = int(pairs.offer[k])
        heap = held.setdefault(o, [])
        heapq.heappush(heap, (-int(offer_rank[k]), k))
        if len(heap) > slots[o]:
            _, rejected = heapq.heappop(heap)
            free.append(int(pairs.cand[rejected]))
    matched = sorted(k for heap in held.values() for _, k in heap)
    return DAResult(pairs=matched, proposals=proposals, blocking=blocking_pairs(prep, matched))


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
