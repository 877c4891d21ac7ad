"""What a round optimises, in plain words, from its policy (shown with every result)."""

from __future__ import annotations

from matching.input.instance import Policy, Weights

_COMPONENT_WORDS = {
    "specialty": "specialty fit",
    "language": "language level above the minimum",
    "distance": "short commute",
    "wish": "the candidate's wishes",
    "clinic": "the clinic's ranking",
    "waiting": "time waited",
    "start": "early start",
}


def score_formula(weights: Weights) -> str:
    """E.g. `3 x specialty fit + 1 x language level ... (each part 0-1000)`."""
    used = [(getattr(weights, name), words) for name, words in _COMPONENT_WORDS.items() if getattr(weights, name)]
    parts = [f"{weight} x {words}" for weight, words in used]
    return (" + ".join(parts) or "nothing (all weights are 0)") + " (each part scored 0-1000 per match)"


def objective_statement(policy: Policy) -> list[str]:
    """The round's objective and hard choices, most important first, one sentence each."""
    lines = []
    if policy.objective == "lexicographic":
        order = ["place as many candidates as possible"]
        if policy.keep:
            order.insert(0, f"keep as many of the {len(policy.keep)} earlier proposals as possible")
        if policy.waiting_priority:
            order.append("place the candidates who have waited longest")
        order.append("maximise the total match score")
        lines.append("In order of priority, the round tries to: " + "; then ".join(order) + ".")
    else:
        kept = f", plus {policy.keep_value:,} per earlier proposal kept" if policy.keep else ""
        lines.append(
            f"The round maximises one weighted sum: {policy.placement_value:,} per placement plus the match score"
            f"{kept}. A placement can thus lose to a better-scoring alternative."
        )
    lines.append("Match score = " + score_formula(policy.weights) + ".")
    lines.append(
        "Hard rules are never traded: eligibility, supervisor seats per month, offer slots, budgets, earmarks and caps."
    )
    if policy.pins or policy.forbids:
        lines.append(f"The coordinator fixed {len(policy.pins)} pair(s) and forbade {len(policy.forbids)}.")
    for floor in policy.floors:
        limit = f"{floor.min_count}" if floor.min_count is not None else f"{floor.min_share:.0%}"
        lines.append(f"At least {limit} of {floor.label()} must be placed (a floor).")
    if policy.forbid_blocking:
        lines.append("No candidate and offer may both prefer each other to what they got (no blocking pairs).")
    mode = "deterministic (re-running it gives the same result)" if policy.deterministic else "not deterministic"
    lines.append(f"Solver: seed {policy.seed}, time limit {policy.time_limit_s:g} s, {mode}.")
    return lines
