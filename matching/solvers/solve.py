"""Solving a round: a strategy chosen by the round's structure and size (`matching.solvers.strategies`), within one
end-to-end deadline, then the explained result."""

from __future__ import annotations

import time
from collections import Counter
from typing import Literal

from matching.input.instance import Instance
from matching.input.validate import InvalidInstance, Issue
from matching.model.solution import Assignment, ProgrammeUse, Solution
from matching.model.spec import Tier, objective_tiers
from matching.reports.reasons import explain_unmatched
from matching.rules.eligibility import explain_candidate
from matching.rules.ledger import Ledger
from matching.rules.prepare import Prepared, prepare
from matching.solvers.cpsat import TierResult, relative_gap
from matching.solvers.greedy import Pick, ledger_of
from matching.solvers.select import choose
from matching.solvers.strategies import Context, Deadline, Progress, Reporter

Method = Literal["auto", "cp_sat", "flow", "greedy", "mip", "lns", "lagrange"]


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
    """Decide a round: who goes where, who supervises, who pays; with status, objective, bound and gap.

    `instance.policy.time_limit_s` covers everything from here: preparing, bounds, hints, search and explanations.
    """
    started = time.monotonic()
    deadline = Deadline(started, instance.policy.time_limit_s)
    reporter = Reporter(progress, started)
    reporter.report("prepare")
    prep = prepare(instance)
    check_pins(prep)
    tiers = objective_tiers(prep)
    picks, results, used = solve_prepared(prep, tiers, method, progress, deadline=deadline, reporter=reporter)
    reporter.report("explain")
    return build_solution(prep, picks, results, used, time.monotonic() - started)


def solve_prepared(
    prep: Prepared,
    tiers: list[Tier],
    method: Method,
    progress: Progress | None = None,
    *,
    deadline: Deadline | None = None,
    reporter: Reporter | None = None,
) -> tuple[list[Pick], list[TierResult], str]:
    """The dispatch on a prepared instance (pins already checked): the picks, each tier's result, the method used."""
    now = time.monotonic()
    deadline = deadline or Deadline(now, prep.instance.policy.time_limit_s)
    ctx = Context(prep, tiers, deadline, reporter or Reporter(progress, now))
    outcome = choose(ctx, method).run(ctx)
    return outcome.picks, outcome.results, outcome.method


def settle(prep: Prepared, picks: list[Pick]) -> tuple[list[Assignment], Ledger]:
    """The picks as assignments (in pair order), and the ledger of what they use."""
    ordered = sorted(picks, key=lambda p: p.pair)
    return [_assignment(prep, p) for p in ordered], ledger_of(prep, ordered)


def build_solution(
    prep: Prepared, picks: list[Pick], results: list[TierResult], method: str, seconds: float
) -> Solution:
    """Assignments with money and score breakdown, reasons for the unmatched, and money per programme."""
    inst, pairs = prep.instance, prep.pairs
    assignments, ledger = settle(prep, picks)
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
