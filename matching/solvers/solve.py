"""Solving a round: min-cost flow when no side constraint can bind, CP-SAT otherwise, then the explained result."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Literal

import numpy as np

from matching.input.instance import Instance
from matching.input.validate import InvalidInstance, Issue
from matching.model.side import satisfied, side_rows
from matching.model.solution import Assignment, ProgrammeUse, Solution
from matching.reports.reasons import explain_unmatched
from matching.rules.eligibility import explain_candidate
from matching.rules.ledger import Ledger, Use
from matching.rules.prepare import Prepared, prepare
from matching.rules.tables import IntArray
from matching.solvers.cpsat import (
    Model,
    Progress,
    TierResult,
    relative_gap,
    solve_combined,
    solve_restricted,
    solve_tiers,
    tier_ceiling,
    tier_totals,
)
from matching.solvers.flow import FlowOverflow, max_weight_assignment
from matching.solvers.greedy import Pick, Preference, greedy, pinned_pairs, place_in_order
from matching.solvers.relaxation import Relaxation, relax

Method = Literal["auto", "cp_sat", "flow", "greedy"]
LP_HINT_MAX_ROWS = 100_000  # funding rows; national rounds (~350k) take HiGHS over a minute


def kept_pairs(prep: Prepared) -> IntArray:
    """Per pair, 1 when the policy asks to keep it (an earlier proposal), else 0."""
    t, pairs, width = prep.tables, prep.pairs, max(1, len(prep.instance.offers))
    keep = prep.instance.policy.keep
    wanted = [t.candidates.index[p.candidate_id] * width + t.offers.index[p.offer_id] for p in keep]
    return np.isin(pairs.cand * width + pairs.offer, wanted).astype(np.int64)


def objective_tiers(prep: Prepared) -> list[tuple[str, IntArray]]:
    """Per-pair values of each objective tier, most important first."""
    policy = prep.instance.policy
    score = prep.scores.total
    kept = kept_pairs(prep) if policy.keep else None
    if policy.objective == "weighted":
        bonus = policy.keep_value * kept if kept is not None else 0
        return [("weighted", score + policy.placement_value + bonus)]
    # Keeping earlier proposals outranks everything: a re-run changes only what it must.
    tiers = [("kept", kept)] if kept is not None else []
    tiers.append(("placements", np.ones(len(score), dtype=np.int64)))
    if policy.waiting_priority:
        tiers.append(("waiting", prep.waiting_days.astype(np.int64)))
    tiers.append(("score", score))
    return tiers


def tier_weights(prep: Prepared, tiers: list[tuple[str, IntArray]]) -> list[int]:
    """A weight per tier such that each tier outweighs everything after it; FlowOverflow past 64 bits."""
    weights = []
    weight = 1
    for _, values in reversed(tiers):
        weights.append(weight)
        weight *= tier_ceiling(prep, values) + 1
    if weight >= 2**62 // max(1, len(prep.instance.candidates)):
        raise FlowOverflow("tiers too large to combine in 64-bit integers")
    return weights[::-1]


def combined_values(prep: Prepared, tiers: list[tuple[str, IntArray]]) -> IntArray:
    """One value per pair that orders solutions like the tiers do."""
    total = np.zeros(len(prep.pairs), dtype=np.int64)
    for weight, (_, values) in zip(tier_weights(prep, tiers), tiers, strict=True):
        total += weight * values
    return total


def check_pins(prep: Prepared) -> None:
    """Pinned pairs must be eligible; otherwise say which rules exclude them."""
    keys = set(zip(prep.pairs.cand.tolist(), prep.pairs.offer.tolist(), strict=True))
    issues = []
    for i, pin in enumerate(prep.instance.policy.pins):
        key = (prep.tables.candidates.index[pin.candidate_id], prep.tables.offers.index[pin.offer_id])
        if key in keys:
            continue
        verdict = next(
            v for v in explain_candidate(prep.instance, pin.candidate_id, prep.tables) if v.offer_id == pin.offer_id
        )
        rules = ", ".join(verdict.failed_rules)
        issues.append(Issue(f"policy.pins[{i}]", None, "(pair)", "pin_eligible", f"pinned pair breaks: {rules}"))
    per_offer = Counter(pin.offer_id for pin in prep.instance.policy.pins)
    for offer in prep.instance.offers:
        if per_offer[offer.id] > offer.slots:
            issues.append(
                Issue(
                    "policy.pins",
                    offer.id,
                    "offer_id",
                    "pin_slots",
                    f"{per_offer[offer.id]} pins at offer {offer.id}, which has {offer.slots} slot(s)",
                )
            )
    if issues:
        raise InvalidInstance(issues)


def solve(instance: Instance, *, method: Method = "auto", progress: Progress | None = None) -> Solution:
    """Decide a round: who goes where, who supervises, who pays; with status, objective, bound and gap."""
    started = time.monotonic()
    prep = prepare(instance)
    check_pins(prep)
    tiers = objective_tiers(prep)
    picks, results, used = solve_prepared(prep, tiers, method, progress)
    return build_solution(prep, picks, results, used, time.monotonic() - started)


def solve_prepared(
    prep: Prepared, tiers: list[tuple[str, IntArray]], method: Method, progress: Progress | None = None
) -> tuple[list[Pick], list[TierResult], str]:
    """The dispatch on a prepared instance (pins already checked): the picks, each tier's result, the method used."""
    if method == "greedy":
        picks = greedy(prep, combined_values(prep, tiers))
        # Greedy cannot prove anything; if it could not seat every pin, it has no valid solution to offer.
        valid = {p.pair for p in picks} >= set(pinned_pairs(prep)) and satisfied(
            side_rows(prep), [p.pair for p in picks]
        )
        return picks, _tier_report(prep, tiers, picks, "FEASIBLE" if valid else "UNKNOWN"), "greedy"
    if method in ("auto", "flow") and prep.is_flow:
        try:
            picks = _flow_picks(prep, combined_values(prep, tiers))
            return picks, _tier_report(prep, tiers, picks, "OPTIMAL"), "min_cost_flow"
        except FlowOverflow:
            if method == "flow":
                raise
    if method == "flow":
        raise ValueError("min-cost flow does not apply: a supervisor, budget or cap constraint can bind")
    limit, started = prep.instance.policy.time_limit_s, time.monotonic()
    hint, lp = _hint(prep, tiers, lp_seconds=limit / 4)
    try:
        weights = tier_weights(prep, tiers)
    except FlowOverflow:
        picks, results = solve_tiers(Model(prep).build(), tiers, hint, progress)
        return picks, results, "cp_sat"
    if lp is not None:
        # Good solutions mostly use pairs that the LP uses: solving that small model first gives a far better start.
        for support in _lp_supports(prep, tiers, lp, seconds=limit / 8):
            hint = solve_restricted(Model(prep).build(), tiers, weights, support, hint, seconds=min(5.0, limit / 6))
    # The HiGHS LP bound is often far tighter than CP-SAT's own within the time limit; both are valid.
    bound = lp.bound if lp is not None else None
    # Deterministic rounds get a fixed share, not what the wall clock leaves, so that a re-run repeats exactly.
    deterministic = prep.instance.policy.deterministic
    remaining = limit / 2 if deterministic else max(0.1, limit - (time.monotonic() - started))
    picks, results = solve_combined(
        Model(prep).build(), tiers, weights, hint, progress, known_bound=bound, seconds=remaining
    )
    return picks, _tighten_last_tier(prep, tiers, results), "cp_sat"


def _lp_supports(prep: Prepared, tiers: list[tuple[str, IntArray]], lp: Relaxation, seconds: float) -> list[IntArray]:
    """Pairs used by the combined LP; then those and the pairs used by the LP of the last tier with the earlier
    tiers held at the combined LP's level.

    The combined LP favours the first tier so strongly that its support misses pairs that good later-tier
    solutions need; the second LP adds them.
    """
    used = lp.pair > 1e-6
    supports = [np.flatnonzero(used)]
    if len(tiers) > 1:
        held = tuple((values, math.floor(float(values @ lp.pair) + 1e-6)) for _, values in tiers[:-1])
        last = relax(prep, tiers[-1][1], time_limit=seconds, at_least=held)
        if last is not None:
            supports.append(np.flatnonzero(used | (last.pair > 1e-6)))
    return supports


def _tighten_last_tier(
    prep: Prepared, tiers: list[tuple[str, IntArray]], results: list[TierResult]
) -> list[TierResult]:
    """With every earlier tier proven, bound the last by its LP with the earlier tiers held at their optimum."""
    if len(results) < 2 or any(r.status != "OPTIMAL" for r in results[:-1]) or results[-1].status == "OPTIMAL":
        return results
    held = tuple((values, r.objective) for (_, values), r in zip(tiers[:-1], results[:-1], strict=True))
    lp = relax(prep, tiers[-1][1], at_least=held)
    if lp is None:
        return results
    last = results[-1]
    bound = max(last.objective, min(last.bound, math.floor(lp.bound + 1e-6)))
    status = "OPTIMAL" if bound == last.objective else last.status
    return [*results[:-1], TierResult(last.name, status, last.objective, bound, last.seconds)]


def _flow_picks(prep: Prepared, values: IntArray) -> list[Pick]:
    pairs = prep.pairs
    chosen, _ = max_weight_assignment(pairs.cand, pairs.offer, values, prep.tables.offers.slots, pinned_pairs(prep))
    sup, fund = prep.free_supervisor, prep.free_programme
    return [Pick(pair=int(k), supervisor=int(sup[k]), fund_row=int(fund[k])) for k in chosen]


def _hint(prep: Prepared, tiers: list[tuple[str, IntArray]], lp_seconds: float) -> tuple[list[Pick], Relaxation | None]:
    """A feasible start, the best of a few greedy orders and a rounded LP; and the LP relaxation of the combined
    tiers (None when the tiers cannot be combined or the LP did not finish)."""
    combined = True
    try:
        values = combined_values(prep, tiers)
    except FlowOverflow:
        values, combined = tiers[-1][1], False
    pins = pinned_pairs(prep)
    by_value = np.lexsort((np.arange(len(values)), -values))
    relaxed, _ = max_weight_assignment(prep.pairs.cand, prep.pairs.offer, values, prep.tables.offers.slots, pins)
    flow_first = [*relaxed[np.argsort(-values[relaxed], kind="stable")], *by_value]
    # When money binds, cheap matches place more people: try the cheapest funding first too.
    cheapest = np.full(len(prep.pairs), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(cheapest, prep.pairs.fund_pair, prep.pairs.fund_grant)
    by_cost = np.lexsort((-values, cheapest))
    candidates = [place_in_order(prep, [*pins, *order]) for order in (flow_first, by_value, by_cost)]
    # HiGHS needs far longer than a round's time limit for the LP of very large models: skip it there.
    lp = relax(prep, values, time_limit=lp_seconds) if len(prep.pairs.fund_pair) <= LP_HINT_MAX_ROWS else None
    if lp is not None:
        # The LP optimum is nearly integral on assignments: round it by walking pairs in order of LP value.
        by_lp = np.lexsort((-values, -np.round(lp.pair, 6)))
        preference = Preference(supervisor=lp.supervisor, funding=lp.funding)
        candidates.append(place_in_order(prep, [*pins, *by_lp], preference=preference))
    best = max(candidates, key=lambda picks: tier_totals(picks, tiers))
    return best, (lp if combined else None)


def _tier_report(prep: Prepared, tiers: list[tuple[str, IntArray]], picks: list[Pick], status: str) -> list[TierResult]:
    chosen = np.array([p.pair for p in picks], dtype=np.int64)
    out = []
    for name, values in tiers:
        value = int(values[chosen].sum()) if len(chosen) else 0
        bound = value if status == "OPTIMAL" else tier_ceiling(prep, values)
        out.append(TierResult(name, status, value, bound, 0.0))
    return out


def build_solution(
    prep: Prepared, picks: list[Pick], results: list[TierResult], method: str, seconds: float
) -> Solution:
    """Assignments with money and score breakdown, reasons for the unmatched, and money per programme."""
    inst, pairs = prep.instance, prep.pairs
    ledger = Ledger(inst, prep.tables.limits)
    assignments = []
    for p in sorted(picks, key=lambda p: p.pair):
        a = _assignment(prep, p)
        assignments.append(a)
        ledger.add(
            Use(a.candidate_id, a.offer_id, a.supervisor_id, a.programme_id, _start(prep, p.pair), a.months, a.grant)
        )
    # The tier that decides the gap: the first one not proven optimal (the last one when all are).
    last = next((r for r in results if r.status != "OPTIMAL"), results[-1]) if results else None
    last = last or TierResult("none", "UNKNOWN", 0, 0, 0.0)
    status = _overall_status(results)
    stats: dict[str, float | int | str] = {
        "gap_tier": last.name,
        "eligible_pairs": len(pairs),
        "candidates": len(inst.candidates),
        "offers": len(inst.offers),
    }
    if status not in ("OPTIMAL", "FEASIBLE"):
        stats["no_solution"] = _no_solution(prep, status)
    for r in results:
        stats[f"{r.name}_objective"] = r.objective
        stats[f"{r.name}_bound"] = r.bound
        stats[f"{r.name}_status"] = r.status
    return Solution(
        status=status,
        method=method,
        objective=float(last.objective),
        bound=float(last.bound),
        gap=relative_gap(last.objective, last.bound) if status in ("OPTIMAL", "FEASIBLE") else 1.0,
        placements=len(assignments),
        score=sum(a.score for a in assignments),
        wall_time_s=round(seconds, 3),
        assignments=assignments,
        # Without a solution there is nothing to explain; `stats["no_solution"]` says why.
        unmatched=explain_unmatched(prep, assignments, ledger) if status in ("OPTIMAL", "FEASIBLE") else [],
        money=[
            ProgrammeUse(
                programme_id=g.id,
                budget=g.budget,
                granted=ledger.granted(g.id),
                matches=sum(1 for a in assignments if a.programme_id == g.id),
                earmarks={e.id: ledger.earmark_used[(g.id, k)] for k, e in enumerate(g.earmarks)},
                committed=int(prep.tables.limits.committed[i]),
                left=g.budget - int(prep.tables.limits.committed[i]) - ledger.granted(g.id),
            )
            for i, g in enumerate(inst.programmes)
        ],
        stats=stats,
    )


def _no_solution(prep: Prepared, status: str) -> str:
    policy = prep.instance.policy
    rules = [name for name, on in (("the floors", policy.floors), ("no blocking pairs", policy.forbid_blocking)) if on]
    if status == "INFEASIBLE" and rules:
        return f"no matching meets {' and '.join(rules)} together with the pins, capacity and money"
    if status == "INFEASIBLE":
        return "no matching meets the pins together with capacity and money"
    return "no valid matching was found within the time limit"


def _overall_status(results: list[TierResult]) -> str:
    if not results:
        return "UNKNOWN"
    if any(r.status not in ("OPTIMAL", "FEASIBLE") for r in results):
        return next(r.status for r in results if r.status not in ("OPTIMAL", "FEASIBLE"))
    return "OPTIMAL" if all(r.status == "OPTIMAL" for r in results) else "FEASIBLE"


def _start(prep: Prepared, k: int) -> int:
    return int(prep.tables.offers.start_month[prep.pairs.offer[k]])


def _assignment(prep: Prepared, pick: Pick) -> Assignment:
    inst, pairs = prep.instance, prep.pairs
    k, row = pick.pair, pick.fund_row
    offer = inst.offers[int(pairs.offer[k])]
    prog = inst.programmes[int(pairs.fund_programme[row])]
    mark = int(pairs.fund_earmark[row])
    grant, total = int(pairs.fund_grant[row]), int(pairs.total_cost[k])
    return Assignment(
        candidate_id=inst.candidates[int(pairs.cand[k])].id,
        offer_id=offer.id,
        supervisor_id=inst.supervisors[pick.supervisor].id,
        programme_id=prog.id,
        earmark_id=prog.earmarks[mark].id if mark >= 0 else None,
        start=offer.start,
        months=int(pairs.months[k]),
        total_cost=total,
        grant=grant,
        unit_share=total - grant,
        score=int(prep.scores.total[k]),
        breakdown=prep.scores.breakdown(k),
    )
