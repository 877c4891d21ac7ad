"""The solver on hand-checkable instances: each constraint family binds where it should."""

from __future__ import annotations

import pytest

from matching.reports.verify import verify
from matching.solvers.solve import solve
from tests.factories import candidate, make, offer, programme, supervisor, unit


def placed(solution) -> dict[str, str]:
    return {a.candidate_id: a.offer_id for a in solution.assignments}


def test_one_eligible_pair_is_matched_and_paid_in_full() -> None:
    instance = make()
    solution = solve(instance)
    assert solution.status == "OPTIMAL"
    assert solution.method == "min_cost_flow"
    [a] = solution.assignments
    assert (a.candidate_id, a.offer_id, a.supervisor_id, a.programme_id) == ("C1", "O1", "S1", "P1")
    # Six months of 30,000 salary and 4,000 supervisor fee.
    assert a.total_cost == a.grant == 204_000 and a.unit_share == 0
    assert verify(instance, solution) == []


def test_a_shared_supervisor_takes_one_trainee_when_periods_overlap() -> None:
    offers = [offer("O1", start="2027-03-01"), offer("O2", start="2027-06-01")]
    instance = make(candidates=[candidate("C1"), candidate("C2")], offers=offers)
    solution = solve(instance)
    assert solution.method == "mip_highs" and solution.status == "OPTIMAL"
    assert solution.placements == 1
    assert verify(instance, solution) == []


def test_a_shared_supervisor_takes_both_when_periods_follow_each_other() -> None:
    offers = [offer("O1", start="2027-01-01"), offer("O2", start="2027-07-01")]
    instance = make(candidates=[candidate("C1"), candidate("C2")], offers=offers)
    solution = solve(instance)
    assert solution.placements == 2
    assert verify(instance, solution) == []


def test_a_budget_for_one_match_funds_one() -> None:
    instance = make(
        candidates=[candidate("C1"), candidate("C2")],
        offers=[offer("O1", slots=2)],
        supervisors=[supervisor("S1", capacity=2)],
        programmes=[programme("P1", budget=300_000)],
    )
    solution = solve(instance)
    assert solution.placements == 1
    [unmatched] = solution.unmatched
    assert unmatched.reason == "no_money" and unmatched.programmes == ["P1"]


def test_co_funding_splits_the_cost_with_the_unit() -> None:
    instance = make(programmes=[programme("P1", cofunding_share=0.5)])
    [a] = solve(instance).assignments
    assert a.grant == 102_000 and a.unit_share == 102_000


def test_a_unit_cap_by_size_class_binds() -> None:
    instance = make(
        candidates=[candidate("C1"), candidate("C2")],
        offers=[offer("O1", slots=2)],
        supervisors=[supervisor("S1", capacity=2)],
        units=[unit("U1", size_class="small")],
        programmes=[
            programme("P1", covers=["supervisor_fee"], unit_caps={"small": 30_000, "medium": 100_000, "large": 135_000})
        ],
    )
    solution = solve(instance)
    # Each match asks 24,000 SEK of supervisor fee; a small unit may take 30,000.
    assert solution.placements == 1
    assert verify(instance, solution) == []


def test_an_earmark_reserves_money_for_nurses() -> None:
    nurse = {"profession": "nurse", "ladder": {"special_authorisation": "none"}, "language_proof": "tisus"}
    instance = make(
        candidates=[candidate("C1"), candidate("N1", **nurse)],
        offers=[offer("O1"), offer("ON", supervisors=("SN",), profession="nurse", months=3)],
        supervisors=[supervisor("S1"), supervisor("SN", profession="nurse")],
        programmes=[
            programme("P1", budget=250_000, earmarks=[{"id": "E-nurse", "amount": 150_000, "professions": ["nurse"]}])
        ],
    )
    solution = solve(instance)
    # The physician's 204,000 does not fit in the 100,000 of general money; the nurse's 102,000 fits the earmark.
    assert placed(solution) == {"N1": "ON"}
    assert solution.assignments[0].earmark_id == "E-nurse"
    assert verify(instance, solution) == []


def test_pins_and_forbids_are_obeyed() -> None:
    candidates = [candidate("C1", specialty="allmänmedicin"), candidate("C2", specialty="surgery")]
    offers = [offer("O1", supervisors=("S1",)), offer("O2", supervisors=("S2",), specialty="kirurgi")]
    sups = [supervisor("S1"), supervisor("S2")]
    free = solve(make(candidates=candidates, offers=offers, supervisors=sups))
    assert placed(free) == {"C1": "O1", "C2": "O2"}
    pinned = make(
        candidates=candidates, offers=offers, supervisors=sups, pins=[{"candidate_id": "C1", "offer_id": "O2"}]
    )
    assert placed(solve(pinned))["C1"] == "O2"
    forbidden = make(
        candidates=candidates, offers=offers, supervisors=sups, forbids=[{"candidate_id": "C2", "offer_id": "O2"}]
    )
    assert placed(solve(forbidden)).get("C2") != "O2"


def test_lexicographic_places_more_people_than_a_score_maximiser_would() -> None:
    # C1 fits both offers well; C2 fits only O1. Most placements: C1 -> O2, C2 -> O1.
    candidates = [candidate("C1", specialty="kirurgi"), candidate("C2", specialty="allmänmedicin", max_commute_km=5)]
    offers = [
        offer("O1", supervisors=("S1",), specialty="kirurgi"),
        offer("O2", unit_id="U2", supervisors=("S2",), specialty="psykiatri"),
    ]
    units = [unit("U1"), unit("U2", municipality="0184", hsa_id="SE2321000016-U2")]
    sups = [supervisor("S1"), supervisor("S2", unit_id="U2")]
    solution = solve(make(candidates=candidates, offers=offers, units=units, supervisors=sups))
    assert solution.placements == 2
    weighted = solve(
        make(
            candidates=candidates, offers=offers, units=units, supervisors=sups, objective="weighted", placement_value=0
        )
    )
    assert weighted.score >= solution.score


def test_waiting_priority_places_the_longer_waiter() -> None:
    candidates = [
        candidate("C1", ready_since="2026-10-01", specialty="allmänmedicin"),
        candidate("C2", ready_since="2024-01-01", specialty="ortopedi"),
    ]
    plain = solve(make(candidates=candidates, weights={"waiting": 0}))
    assert placed(plain) == {"C1": "O1"}
    priority = solve(make(candidates=candidates, weights={"waiting": 0}, waiting_priority=True))
    assert placed(priority) == {"C2": "O1"}


@pytest.mark.parametrize("method", ["auto", "cp_sat", "greedy"])
def test_every_method_gives_a_valid_solution(method: str) -> None:
    instance = make(
        candidates=[candidate(f"C{i}") for i in range(4)],
        offers=[offer("O1", slots=2), offer("O2", start="2027-09-01")],
        supervisors=[supervisor("S1", capacity=2)],
        programmes=[programme("P1", budget=500_000)],
    )
    solution = solve(instance, method=method)  # type: ignore[arg-type]
    assert verify(instance, solution) == []
    assert solution.status in ("OPTIMAL", "FEASIBLE")


def test_flow_refuses_when_a_side_constraint_binds() -> None:
    instance = make(
        candidates=[candidate("C1"), candidate("C2")],
        programmes=[programme("P1", budget=210_000)],
        offers=[offer("O1", slots=2)],
        supervisors=[supervisor("S1", capacity=2)],
    )
    with pytest.raises(ValueError, match="min-cost flow does not apply"):
        solve(instance, method="flow")


@pytest.mark.parametrize("method", ["cp_sat", "mip"])
def test_progress_is_reported_with_phase_placements_score_bound_and_gap(method: str) -> None:
    seen: list[dict] = []
    instance = make(
        candidates=[candidate("C1"), candidate("C2")], offers=[offer("O1"), offer("O2", start="2027-05-01")]
    )
    solve(instance, method=method, progress=seen.append)  # type: ignore[arg-type]
    assert seen and all({"phase", "elapsed"} <= set(p) for p in seen)
    assert seen[0]["phase"] == "prepare" and seen[-1]["phase"] == "explain"
    figures = [p for p in seen if "bound" in p]
    assert figures and {"placements", "score", "tier", "objective", "gap", "gap_percent"} <= set(figures[-1])
    # Never the combined weighted objective: the figures read as placements (at most 2 here) and score.
    assert all(p["placements"] <= 2 and p["objective"] <= max(p["score"], 2) for p in figures)


def test_unmatched_without_eligible_offer_names_the_rules() -> None:
    instance = make(candidates=[candidate("C1", cefr="B1")])
    [u] = solve(instance).unmatched
    assert u.reason == "no_eligible_offer" and u.rules == {"language": 1}


def test_an_out_competed_candidate_names_the_winner() -> None:
    instance = make(candidates=[candidate("C1", specialty="allmänmedicin"), candidate("C2", specialty="radiology")])
    solution = solve(instance)
    [u] = solution.unmatched
    assert (u.candidate_id, u.reason, u.competitor_id) == ("C2", "out_competed", "C1")
    assert u.score_gap is not None and u.score_gap > 0


def test_more_pins_than_slots_are_refused_before_solving() -> None:
    from matching.input.validate import InvalidInstance

    instance = make(
        candidates=[candidate("C1"), candidate("C2")],
        pins=[{"candidate_id": "C1", "offer_id": "O1"}, {"candidate_id": "C2", "offer_id": "O1"}],
    )
    with pytest.raises(InvalidInstance) as caught:
        solve(instance)
    assert [i.rule for i in caught.value.issues] == ["pin_slots"]


def test_pins_that_cannot_all_hold_are_infeasible_and_greedy_does_not_claim_them() -> None:
    # Two pinned stays overlap on supervisor S1's single seat.
    instance = make(
        candidates=[candidate("C1"), candidate("C2")],
        offers=[offer("O1"), offer("O2")],
        pins=[{"candidate_id": "C1", "offer_id": "O1"}, {"candidate_id": "C2", "offer_id": "O2"}],
    )
    assert solve(instance, method="cp_sat").status == "INFEASIBLE"
    assert solve(instance, method="greedy").status == "UNKNOWN"
