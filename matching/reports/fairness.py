"""Fairness report of a round: match rate and mean score per group, and the price of each floor.

The price of a floor is what the round's objective loses by it: the round is solved again without that floor
(every other floor kept), and the difference per objective tier is reported.
"""

from __future__ import annotations

from collections import defaultdict

from matching.input.instance import Instance
from matching.model.solution import Out, Solution
from matching.rules.groups import GROUP_KINDS, group_of
from matching.solvers.solve import solve


class GroupRow(Out):
    """One group's outcome."""

    group: str
    value: str
    candidates: int
    matched: int
    rate: float
    mean_score: float | None  # of the matched; None when nobody in the group was matched
    floor: int | None = None  # placements a floor requires, if one is set


class FloorPrice(Out):
    """What one floor costs the round."""

    floor: str
    required: int
    placed: int
    status_without: str
    objective_with: dict[str, int]
    objective_without: dict[str, int]
    lost: dict[str, int]  # per tier: without the floor minus with it (positive: the floor costs this much)
    statement: str


def tier_objectives(solution: Solution) -> dict[str, int]:
    """The solution's value of each objective tier, from its stats."""
    suffix = "_objective"
    return {k[: -len(suffix)]: int(v) for k, v in solution.stats.items() if k.endswith(suffix)}


def group_rows(instance: Instance, solution: Solution) -> list[GroupRow]:
    """Match rate and mean score of every profession, county, country of training and waiting band."""
    score = {a.candidate_id: a.score for a in solution.assignments}
    floors = {(f.group, f.value): f for f in instance.policy.floors}
    rows = []
    for kind in GROUP_KINDS:
        members: dict[str, list[str]] = defaultdict(list)
        for c in instance.candidates:
            members[group_of(c, kind, instance)].append(c.id)
        for value, ids in sorted(members.items()):
            scores = [score[i] for i in ids if i in score]
            floor = floors.get((kind, value))
            rows.append(
                GroupRow(
                    group=kind,
                    value=value,
                    candidates=len(ids),
                    matched=len(scores),
                    rate=round(len(scores) / len(ids), 4),
                    mean_score=round(sum(scores) / len(scores), 1) if scores else None,
                    floor=floor.required(len(ids)) if floor else None,
                )
            )
    return rows


def floor_prices(instance: Instance, solution: Solution, *, seconds: float | None = None) -> list[FloorPrice]:
    """Each floor's price: the round solved again without it, tier by tier."""
    with_floors = tier_objectives(solution)
    matched = {a.candidate_id for a in solution.assignments}
    out = []
    for i, floor in enumerate(instance.policy.floors):
        others = instance.policy.floors[:i] + instance.policy.floors[i + 1 :]
        update: dict[str, object] = {"floors": others}
        if seconds is not None:
            update["time_limit_s"] = seconds
        without = solve(instance.with_policy(**update))
        free = tier_objectives(without)
        lost = {tier: free.get(tier, 0) - value for tier, value in with_floors.items()}
        group = [c.id for c in instance.candidates if group_of(c, floor.group, instance) == floor.value]
        out.append(
            FloorPrice(
                floor=floor.label(),
                required=floor.required(len(group)),
                placed=sum(1 for cid in group if cid in matched),
                status_without=without.status,
                objective_with=with_floors,
                objective_without=free,
                lost=lost,
                statement=_price_statement(floor.label(), lost),
            )
        )
    return out


def _price_statement(label: str, lost: dict[str, int]) -> str:
    costs = [f"{value:,} {tier}" for tier, value in lost.items() if value > 0]
    if not costs:
        return f"the floor for {label} costs nothing: the round does as well without it"
    return f"the floor for {label} costs {', '.join(costs)} (re-solved without it)"
