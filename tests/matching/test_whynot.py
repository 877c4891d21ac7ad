"""Why not matched: each cause class on a hand-built round, with the smallest change checked by re-solving."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from matching.generators.generate import generate
from matching.input.instance import Instance
from matching.model.solution import Solution
from matching.model.spec import objective_tiers
from matching.reports.changes import Change, apply_changes
from matching.reports.whynot import WhyNot, summarise, why_not, why_not_all
from matching.rules.prepare import prepare
from matching.rules.tables import distance_km, municipality_numbers
from matching.solvers.solve import build_solution, solve, solve_prepared
from tests import factories

# Every default makes a pair eligible: a physician in Stockholm (0180), ready for PTJ, C1 with Svenska 3; a
# six-month PTJ from 2027-03-01 at 30,000 + 4,000 SEK a month, so one match costs 204,000 SEK.
COST = 6 * (30_000 + 4_000)


def cand(cid: str, **kw: Any) -> dict[str, Any]:
    return factories.candidate(cid, **{"ready_since": "2026-06-01", **kw})


def unit(uid: str = "U1", municipality: str = "0180", **kw: Any) -> dict[str, Any]:
    return factories.unit(uid, municipality=municipality, **kw)


def sup(sid: str = "S1", unit_id: str = "U1", capacity: int = 1) -> dict[str, Any]:
    return factories.supervisor(sid, unit_id, capacity=capacity)


def offer(oid: str = "O1", unit_id: str = "U1", sups: tuple[str, ...] = ("S1",), **kw: Any) -> dict[str, Any]:
    return factories.offer(oid, unit_id, supervisors=sups, **kw)


def prog(pid: str = "P1", budget: int = 2_000_000, **kw: Any) -> dict[str, Any]:
    return factories.programme(pid, budget=budget, **kw)


def build(
    candidates: list[dict[str, Any]],
    offers: list[dict[str, Any]] | None = None,
    supervisors: list[dict[str, Any]] | None = None,
    units: list[dict[str, Any]] | None = None,
    programmes: list[dict[str, Any]] | None = None,
    **policy: Any,
) -> Instance:
    return factories.make(
        candidates=candidates,
        units=units or [unit()],
        supervisors=supervisors or [sup()],
        offers=offers or [offer()],
        programmes=programmes or [prog()],
        **{"time_limit_s": 5, **policy},
    )


# The favoured candidate wins any contest: waited longer, wishes for the offer, and scores on specialty.
FAVOURED = {"ready_since": "2025-01-15", "wishes": ["O1"], "specialty": "allmänmedicin"}
PLAIN = {"ready_since": "2026-10-15", "specialty": "radiology"}


def forbid(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"candidate_id": c, "offer_id": o} for c, o in pairs]


def placed(solution: Solution) -> dict[str, str]:
    return {a.candidate_id: a.offer_id for a in solution.assignments}


def places(instance: Instance, changes: list[Change], cid: str) -> bool:
    """Apply the changes and re-solve the whole round (keeping nothing): is the candidate placed?"""
    return cid in placed(solve(apply_changes(instance, changes)))


def explain(instance: Instance, cid: str) -> tuple[Solution, WhyNot]:
    solution = solve(instance)
    assert cid not in placed(solution)
    result = why_not(instance, solution, cid)
    assert result.placed_at is not None, result.note
    return solution, result


# --- no_eligible_offer ------------------------------------------------------------------------------------------


def test_a_language_level_below_the_offer_is_fixed_by_reaching_c1() -> None:
    instance = build([cand("C1", cefr="B2")])
    _, w = explain(instance, "C1")
    assert w.cause == "no_eligible_offer"
    assert w.nearest_offers == {"O1": ["language"]}
    assert w.change == [Change(target="candidate", id="C1", set={"cefr": "C1"})]
    assert w.change_text == ["candidate C1: cefr B2 -> C1"]
    assert w.verified and w.tries == 1 and w.placed_at.offer_id == "O1" and w.placements_after == 1
    assert places(instance, w.change, "C1")


def test_language_level_and_proof_change_together() -> None:
    instance = build([cand("C7", cefr="B2", language_proof="none")])
    _, w = explain(instance, "C7")
    assert w.nearest_offers == {"O1": ["language", "language_proof"]}
    assert w.change is not None and w.change[0].set == {"cefr": "C1", "language_proof": "tisus"}
    assert w.change_text[0].startswith("candidate C7: cefr B2 -> C1, language_proof none -> tisus")
    assert places(instance, w.change, "C7")


def test_a_commute_too_short_is_extended_to_the_distance_in_whole_km() -> None:
    # Södertälje (0181) is about 29 km from Stockholm (0180).
    instance = build([cand("C1", max_commute_km=20)], units=[unit("U1", municipality="0181")])
    _, w = explain(instance, "C1")
    assert w.cause == "no_eligible_offer" and w.nearest_offers == {"O1": ["commute"]}
    numbers = municipality_numbers()
    km = math.ceil(float(distance_km()[numbers["0180"], numbers["0181"]]))
    assert km == 29
    assert w.change == [Change(target="candidate", id="C1", set={"max_commute_km": km})]
    assert w.change_text == [f"candidate C1: max_commute_km 20 -> {km} km"]
    assert places(instance, w.change, "C1")
    # One km less is not enough: the rule, not the change, decides.
    assert not places(instance, [Change(target="candidate", id="C1", set={"max_commute_km": km - 1})], "C1")


def test_the_practical_test_is_dated_by_the_offer_start() -> None:
    instance = build([cand("C1", ladder={"practical_test": "2027-05-02"})])
    _, w = explain(instance, "C1")
    assert w.nearest_offers == {"O1": ["practical_test"]}
    assert w.change is not None and w.change[0].set == {"ladder": {"practical_test": "2027-03-01"}}
    assert "pass the practical test by 2027-03-01" in w.change_text[0]
    assert places(instance, w.change, "C1")


def test_an_offer_made_eligible_but_full_also_gets_a_slot_and_a_seat() -> None:
    instance = build([cand("C1", **FAVOURED), cand("C2", cefr="B2")])
    _, w = explain(instance, "C2")
    assert w.cause == "no_eligible_offer"
    assert w.change == [
        Change(target="candidate", id="C2", set={"cefr": "C1"}),
        Change(target="offer", id="O1", set={"slots": 2}),
        Change(target="supervisor", id="S1", set={"capacity": 2}),
    ]
    assert w.placements_after == 2 and w.displaced == []
    assert places(instance, w.change, "C2")


def test_an_offer_no_change_to_the_candidate_can_open_is_not_tried() -> None:
    instance = build([cand("C1", cefr="B2")], forbids=forbid([("C1", "O1")]))
    w = why_not(instance, solve(instance), "C1")
    assert w.cause == "no_eligible_offer" and w.nearest_offers == {"O1": ["forbidden", "language"]}
    assert w.change is None and not w.verified and w.tries == 0
    assert w.note.startswith("no change to try")


# --- no_capacity ------------------------------------------------------------------------------------------------


def test_no_capacity_names_the_supervisor_and_adds_a_seat() -> None:
    # One supervisor seat for two overlapping offers; each candidate may take only one of them.
    offers = [offer("O1"), offer("O2", start="2027-05-01")]
    instance = build([cand("C1", **FAVOURED), cand("C2")], offers=offers, forbids=forbid([("C1", "O2"), ("C2", "O1")]))
    _, w = explain(instance, "C2")
    assert w.cause == "no_capacity"
    assert [(s.supervisor_id, s.unit_id, s.capacity) for s in w.seats_taken] == [("S1", "U1", 1)]
    assert w.full_offers == []
    assert w.change == [Change(target="supervisor", id="S1", set={"capacity": 2})]
    assert w.change_text == ["supervisor S1 (unit U1): capacity 1 -> 2"]
    assert w.change_kind == "one more supervisor seat at unit U1"
    assert w.placed_at is not None and w.placed_at.offer_id == "O2"
    assert places(instance, w.change, "C2")


# --- out_competed -----------------------------------------------------------------------------------------------


def test_out_competed_names_the_rival_and_the_score_gap_and_adds_a_slot() -> None:
    instance = build([cand("C1", **FAVOURED), cand("C2", **PLAIN)], supervisors=[sup("S1", capacity=2)])
    solution, w = explain(instance, "C2")
    assert w.cause == "out_competed" and w.rival_id == "C1" and w.rival_offer_id == "O1"
    assert w.full_offers == ["O1"]
    # The gap is the rival's score at O1 minus the candidate's own score there.
    prep = prepare(instance)
    k = int(np.flatnonzero(prep.pairs.cand == prep.tables.candidates.index["C2"])[0])
    rival = next(a for a in solution.assignments if a.candidate_id == "C1")
    assert w.score_gap == rival.score - int(prep.scores.total[k]) > 0
    assert w.change == [Change(target="offer", id="O1", set={"slots": 2})]
    assert w.change_text == ["offer O1: slots 1 -> 2"]
    assert places(instance, w.change, "C2")


def test_a_full_offer_with_a_full_supervisor_needs_a_slot_and_a_seat() -> None:
    instance = build([cand("C1", **FAVOURED), cand("C2", **PLAIN)])
    _, w = explain(instance, "C2")
    assert w.cause == "out_competed"
    assert [c.key() for c in w.change or []] == [
        Change(target="offer", id="O1", set={"slots": 2}).key(),
        Change(target="supervisor", id="S1", set={"capacity": 2}).key(),
    ]
    assert places(instance, w.change or [], "C2")
    # Either alone is not enough.
    for single in w.change or []:
        assert not places(instance, [single], "C2")


def test_the_third_in_line_needs_two_more_slots() -> None:
    candidates = [cand("C1", **FAVOURED), cand("C2", ready_since="2025-06-01"), cand("C3", **PLAIN)]
    instance = build(candidates, supervisors=[sup("S1", capacity=3)])
    _, w = explain(instance, "C3")
    # One more slot goes to C2, who scores higher: the re-solve says so, and two more are tried next.
    assert w.change == [Change(target="offer", id="O1", set={"slots": 3})]
    assert w.tries == 2 and w.change_kind == "two more slots at offer O1"
    assert not places(instance, [Change(target="offer", id="O1", set={"slots": 2})], "C3")


# --- no_money ---------------------------------------------------------------------------------------------------


def test_no_money_asks_for_exactly_what_is_missing() -> None:
    budget = 300_000
    instance = build(
        [cand("C1", **FAVOURED), cand("C2", **PLAIN)],
        offers=[offer("O1", slots=2)],
        supervisors=[sup("S1", capacity=2)],
        programmes=[prog("P1", budget=budget)],
    )
    _, w = explain(instance, "C2")
    assert w.cause == "no_money"
    [short] = w.money
    assert (short.programme_id, short.limit, short.left, short.needed) == ("P1", "budget", budget - COST, COST)
    missing = COST - (budget - COST)
    assert w.change == [Change(target="programme", id="P1", set={"budget": budget + missing})]
    assert w.change_text == ["programme P1: budget 300,000 -> 408,000 SEK"]
    assert w.placed_at is not None and w.placed_at.programme_id == "P1"
    assert places(instance, w.change, "C2")
    one_short = [Change(target="programme", id="P1", set={"budget": budget + missing - 1})]
    assert not places(instance, one_short, "C2")


def test_when_a_rival_takes_the_money_for_one_the_money_for_two_is_tried() -> None:
    budget = 300_000
    candidates = [cand("C1", **FAVOURED), cand("C2", ready_since="2025-06-01"), cand("C3", **PLAIN)]
    instance = build(
        candidates,
        offers=[offer("O1", slots=3)],
        supervisors=[sup("S1", capacity=3)],
        programmes=[prog("P1", budget=budget)],
    )
    _, w = explain(instance, "C3")
    assert w.cause == "no_money" and w.tries == 2
    # What is missing for one more match goes to C2, who scores higher; enough for two places both.
    left = budget - COST
    assert not places(instance, [Change(target="programme", id="P1", set={"budget": budget + COST - left})], "C3")
    assert w.change == [Change(target="programme", id="P1", set={"budget": budget + 2 * COST - left})]
    assert w.placements_after == 3


def test_a_binding_unit_cap_is_raised_instead_of_the_budget() -> None:
    instance = build(
        [cand("C1", **FAVOURED), cand("C2", **PLAIN)],
        offers=[offer("O1", slots=2)],
        supervisors=[sup("S1", capacity=2)],
        programmes=[prog("P1", unit_caps={"medium": 250_000, "large": 900_000})],
    )
    _, w = explain(instance, "C2")
    assert w.cause == "no_money"
    [short] = w.money
    assert (short.limit, short.unit_id, short.left, short.needed) == ("unit_cap", "U1", 250_000 - COST, COST)
    assert w.change == [Change(target="programme", id="P1", set={"unit_caps": {"medium": 2 * COST}})]
    assert w.change_text == ["programme P1: unit_caps.medium 250,000 -> 408,000 SEK"]
    changed = apply_changes(instance, w.change)
    assert changed.programmes[0].unit_caps.large == 900_000
    assert places(instance, w.change, "C2")


# --- not_selected -----------------------------------------------------------------------------------------------


def test_not_selected_is_solved_again_for_longer_without_a_change() -> None:
    instance = build(
        [cand("C1", **FAVOURED), cand("C2")],
        offers=[offer("O1"), offer("O2", sups=("S2",))],
        supervisors=[sup("S1"), sup("S2")],
    )
    # A solver stopped early: the optimum without C2's match.
    prep = prepare(instance)
    picks, results, method = solve_prepared(prep, objective_tiers(prep), "auto")
    c2 = prep.tables.candidates.index["C2"]
    early = build_solution(prep, [p for p in picks if prep.pairs.cand[p.pair] != c2], results, method, 0.0)
    [unmatched] = early.unmatched
    assert unmatched.reason == "not_selected"
    w = why_not(instance, early, "C2")
    assert w.cause == "not_selected"
    assert w.change == [] and w.verified and w.tries == 1
    assert w.change_kind == "solve longer (no input change)"
    assert w.placed_at is not None and w.placed_at.offer_id == "O2" and w.placements_after == 2


# --- many candidates, and the summary ---------------------------------------------------------------------------


def _two_short_of_seats() -> Instance:
    """Two supervisors with one seat each at U1, two offers each; every candidate may take one offer only."""
    offers = [offer(f"O{i}", sups=(f"S{(i + 1) // 2}",), start=f"2027-0{i + 1}-01") for i in (1, 2, 3, 4)]
    only = {"C1": "O1", "C2": "O2", "C3": "O3", "C4": "O4"}
    forbids = forbid([(c, o["id"]) for c in only for o in offers if o["id"] != only[c]])
    favoured = {"ready_since": "2025-01-15", "specialty": "allmänmedicin"}
    candidates = [cand("C1", **favoured), cand("C2", **PLAIN), cand("C3", **favoured), cand("C4", **PLAIN)]
    return build(candidates, offers=offers, supervisors=[sup("S1"), sup("S2")], forbids=forbids)


def test_why_not_all_and_the_summary_count_causes_and_changes() -> None:
    instance = _two_short_of_seats()
    solution = solve(instance)
    assert placed(solution) == {"C1": "O1", "C3": "O3"}
    results = why_not_all(instance, solution, seconds_total=30, per_candidate=10)
    assert [w.candidate_id for w in results] == ["C2", "C4"]
    assert {w.cause for w in results} == {"no_capacity"}
    assert [w.change_text for w in results] == [
        ["supervisor S1 (unit U1): capacity 1 -> 2"],
        ["supervisor S2 (unit U1): capacity 1 -> 2"],
    ]
    summary = summarise(results)
    assert summary.total == 2 and summary.causes == {"no_capacity": 2}
    assert [(c.kind, c.candidates, c.candidate_ids) for c in summary.changes] == [
        ("one more supervisor seat at unit U1", 2, ["C2", "C4"])
    ]
    assert (summary.verified, summary.not_placed, summary.not_computed) == (2, 0, 0)
    assert "one more supervisor seat at unit U1: 2 candidates" in summary.lines()


def test_no_time_left_gives_the_cause_but_no_change() -> None:
    instance = _two_short_of_seats()
    results = why_not_all(instance, solve(instance), seconds_total=0, per_candidate=10)
    assert [(w.cause, w.computed, w.tries, w.change) for w in results] == [("no_capacity", False, 0, None)] * 2
    assert all(w.note == "not computed: time budget used up" for w in results)
    summary = summarise(results)
    assert (summary.verified, summary.not_placed, summary.not_computed) == (0, 0, 2)


def test_the_summary_counts_every_class_and_change() -> None:
    two = [cand("C1", **FAVOURED), cand("C2", **PLAIN)]
    roomy = {"offers": [offer("O1", slots=2)], "supervisors": [sup("S1", capacity=2)]}
    cases = [
        (build([cand("C1", cefr="B2")]), "C1"),
        (build([cand("C0", cefr="B2"), *two], supervisors=[sup("S1", capacity=2)]), "C2"),
        (build(two, programmes=[prog(budget=300_000)], **roomy), "C2"),
    ]
    results = [why_not(instance, solve(instance), cid) for instance, cid in cases]
    summary = summarise(results)
    assert summary.causes == {"no_eligible_offer": 1, "out_competed": 1, "no_money": 1}
    assert summary.total == 3 and summary.verified == 3
    assert sorted(c.kind for c in summary.changes) == [
        "candidate change: cefr",
        "more budget in programme P1",
        "one more slot at offer O1",
    ]


def test_a_matched_or_unknown_candidate_is_refused() -> None:
    instance = build([cand("C1")])
    solution = solve(instance)
    with pytest.raises(ValueError, match="matched"):
        why_not(instance, solution, "C1")
    with pytest.raises(ValueError, match="unknown"):
        why_not(instance, solution, "C9")


@pytest.mark.parametrize("seed", [0, 3])
def test_the_batched_path_gives_the_same_smallest_changes_as_one_by_one(seed: int) -> None:
    instance = generate(30, 12, seed=seed, binding_budgets=True).with_policy(time_limit_s=2, deterministic=True)
    solution = solve(instance)
    batched = why_not_all(instance, solution, seconds_total=60, per_candidate=2)
    single = [why_not(instance, solution, u.candidate_id, seconds=30) for u in solution.unmatched]
    assert [w.candidate_id for w in batched] == [u.candidate_id for u in solution.unmatched]
    assert any(w.verified for w in batched) and any(w.computed and not w.verified for w in batched)
    for b, s in zip(batched, single, strict=True):
        assert (b.change, b.verified, b.tries, b.placed_at, b.note) == (
            s.change,
            s.verified,
            s.tries,
            s.placed_at,
            s.note,
        )
        assert b.computed
    for w in batched:
        if w.verified:
            # The round's proposals are kept: the re-solve places everyone the round placed, and this candidate.
            assert w.placements_after is not None and w.placements_after > solution.placements
            assert w.displaced == []
