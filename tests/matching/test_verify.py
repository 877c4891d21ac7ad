"""verify(): a solved round has no violations; tampering with one fact of the solution breaks exactly one rule.

Default pair (tests.factories): six-month physician PTJ from 2027-03-01, 6 x (30,000 + 4,000) = 204,000 SEK.
"""

from __future__ import annotations

from typing import Any

import pytest

from matching.input.instance import Instance
from matching.model.solution import Assignment, Solution
from matching.reports.verify import verify
from matching.solvers.solve import solve
from tests.factories import candidate, make, offer, programme, supervisor

GRANT = 6 * (30_000 + 4_000)


def rules(instance: Instance, solution: Solution) -> set[str]:
    """The hard rules a (tampered) solution breaks; its report figures are tested apart below."""
    return {v.rule for v in verify(instance, solution, report=False)}


def solved(instance: Instance) -> Solution:
    solution = solve(instance)
    assert verify(instance, solution) == []
    return solution


def changed(solution: Solution, index: int = 0, **update: Any) -> Solution:
    """The solution with one assignment's fields replaced."""
    assignments = list(solution.assignments)
    assignments[index] = assignments[index].model_copy(update=update)
    return solution.model_copy(update={"assignments": assignments})


def with_extra(solution: Solution, extra: Assignment) -> Solution:
    return solution.model_copy(update={"assignments": [*solution.assignments, extra]})


def all_paid_by(solution: Solution, programme_id: str) -> Solution:
    assignments = [a.model_copy(update={"programme_id": programme_id}) for a in solution.assignments]
    return solution.model_copy(update={"assignments": assignments})


def two_physicians(o2_supervisors: tuple[str, ...] = ("S2",), **kw: Any) -> Instance:
    """Two candidates, two offers at unit U1: O1 supervised by S1, O2 by S2 (or the given supervisors)."""
    return make(
        candidates=[candidate("C1"), candidate("C2")],
        offers=[offer("O1", supervisors=("S1",)), offer("O2", supervisors=o2_supervisors)],
        supervisors=[supervisor("S1"), supervisor("S2")],
        **kw,
    )


# --- valid solutions -----------------------------------------------------------------------------------------------


def test_solved_default_instance_has_no_violation() -> None:
    instance = make()
    solution = solve(instance)
    assert solution.placements == 1
    assert verify(instance, solution) == []


def test_empty_solution_of_an_unpinned_round_has_no_violation() -> None:
    instance = make()
    assert verify(instance, solve(instance).model_copy(update={"assignments": []}), report=False) == []


def _contested_round() -> Instance:
    """Five physicians for four offers; a budget for three, a unit cap and shared supervisors all bind."""
    return make(
        candidates=[candidate(f"C{i}", ready_since=f"2026-0{i}-01") for i in range(1, 6)],
        offers=[
            offer("O1", supervisors=("S1",), slots=2),
            offer("O2", supervisors=("S1", "S2")),
            offer("O3", supervisors=("S2",), months=6, start="2027-09-01"),
            offer("O4", supervisors=("S3",), monthly_salary=20_000),
        ],
        supervisors=[supervisor("S1", capacity=2), supervisor("S2"), supervisor("S3")],
        programmes=[
            programme("P1", budget=3 * GRANT, unit_caps={"medium": 2 * GRANT}, spend_by="2028-12-31"),
            programme("P2", budget=GRANT, cofunding_share=0.5, spend_by="2028-12-31"),
        ],
    )


@pytest.mark.parametrize("method", ["auto", "cp_sat", "greedy"])
def test_every_method_gives_a_valid_solution(method: str) -> None:
    instance = _contested_round()
    solution = solve(instance, method=method)  # type: ignore[arg-type]
    assert solution.placements >= 3
    assert verify(instance, solution) == []


def test_one_supervisor_seat_serves_two_placements_that_do_not_overlap() -> None:
    instance = make(
        candidates=[candidate("C1"), candidate("C2")],
        offers=[offer("O1"), offer("O2", start="2027-09-01")],
        programmes=[programme(spend_by="2028-12-31")],
    )
    solution = solve(instance)
    assert {a.supervisor_id for a in solution.assignments} == {"S1"}
    assert solution.placements == 2
    assert verify(instance, solution) == []


# --- ids and counts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["candidate_id", "offer_id", "supervisor_id", "programme_id"])
def test_unknown_id_breaks_known_id(field: str) -> None:
    instance = make()
    assert rules(instance, changed(solved(instance), **{field: "X9"})) == {"known_id"}


def test_candidate_placed_twice_breaks_one_offer_per_candidate() -> None:
    instance = make(
        offers=[offer("O1", supervisors=("S1",)), offer("O2", supervisors=("S2",))],
        supervisors=[supervisor("S1"), supervisor("S2")],
    )
    solution = solved(instance)
    [placed] = solution.assignments
    other = "O2" if placed.offer_id == "O1" else "O1"
    twice = with_extra(solution, placed.model_copy(update={"offer_id": other, "supervisor_id": "S" + other[1]}))
    assert rules(instance, twice) == {"one_offer_per_candidate"}


def test_offer_over_its_slots_breaks_slots() -> None:
    instance = make(candidates=[candidate("C1"), candidate("C2")], supervisors=[supervisor(capacity=2)])
    solution = solved(instance)
    [placed] = solution.assignments
    other = "C2" if placed.candidate_id == "C1" else "C1"
    assert rules(instance, with_extra(solution, placed.model_copy(update={"candidate_id": other}))) == {"slots"}


# --- supervisors ---------------------------------------------------------------------------------------------------


def test_supervisor_not_listed_on_the_offer_breaks_supervisor_of_offer() -> None:
    instance = make(supervisors=[supervisor("S1"), supervisor("S2")])
    assert rules(instance, changed(solved(instance), supervisor_id="S2")) == {"supervisor_of_offer"}


@pytest.mark.parametrize(
    "second",
    [
        pytest.param({"licensed": False}, id="unlicensed"),
        pytest.param({"profession": "nurse"}, id="other_profession"),
    ],
)
def test_unqualified_supervisor_breaks_supervisor_qualified(second: dict[str, Any]) -> None:
    instance = make(
        offers=[offer(supervisors=("S1", "S2"))], supervisors=[supervisor("S1"), supervisor("S2", **second)]
    )
    assert rules(instance, changed(solved(instance), supervisor_id="S2")) == {"supervisor_qualified"}


@pytest.mark.parametrize(
    "second",
    [
        pytest.param({"available_until": "2027-05-31"}, id="leaves_early"),
        pytest.param({"available_from": "2027-04-01"}, id="arrives_late"),
    ],
)
def test_supervisor_away_during_the_stay_breaks_supervisor_available(second: dict[str, Any]) -> None:
    instance = make(
        offers=[offer(supervisors=("S1", "S2"))], supervisors=[supervisor("S1"), supervisor("S2", **second)]
    )
    assert rules(instance, changed(solved(instance), supervisor_id="S2")) == {"supervisor_available"}


def test_supervisor_with_two_trainees_at_once_breaks_supervisor_capacity() -> None:
    instance = two_physicians(o2_supervisors=("S2", "S1"))
    solution = solved(instance)
    at_o2 = next(k for k, a in enumerate(solution.assignments) if a.offer_id == "O2")
    assert rules(instance, changed(solution, at_o2, supervisor_id="S1")) == {"supervisor_capacity"}


# --- amounts -------------------------------------------------------------------------------------------------------


def _half_funded() -> Instance:
    return make(programmes=[programme(cofunding_share=0.5)])


def test_solution_reports_the_cofunding_split() -> None:
    [a] = solved(_half_funded()).assignments
    assert (a.total_cost, a.grant, a.unit_share) == (GRANT, GRANT // 2, GRANT // 2)


def test_grant_other_than_the_rules_give_breaks_grant_amount() -> None:
    instance = _half_funded()
    solution = solved(instance)
    [a] = solution.assignments
    tampered = changed(solution, grant=a.grant + 1, unit_share=a.unit_share - 1)
    assert rules(instance, tampered) == {"grant_amount"}


@pytest.mark.parametrize(("field", "delta"), [("total_cost", 1), ("unit_share", -1)])
def test_amounts_that_do_not_add_up_break_cost_split(field: str, delta: int) -> None:
    instance = _half_funded()
    solution = solved(instance)
    value = getattr(solution.assignments[0], field)
    assert rules(instance, changed(solution, **{field: value + delta})) == {"cost_split"}


@pytest.mark.parametrize("months", [5, 7])
def test_length_other_than_the_rules_give_breaks_months(months: int) -> None:
    instance = make()
    assert rules(instance, changed(solved(instance), months=months)) == {"months"}


# --- money across matches ------------------------------------------------------------------------------------------


def _overspent(p1: dict[str, Any], p2: dict[str, Any] | None = None) -> tuple[Instance, Solution]:
    """Two physician matches, both moved onto P1 (the solver had to use P2 for one of them)."""
    instance = two_physicians(programmes=[programme("P1", **p1), programme("P2", **(p2 or {}))])
    solution = solved(instance)
    assert solution.placements == 2
    return instance, all_paid_by(solution, "P1")


def test_grants_over_the_budget_break_budget() -> None:
    instance, tampered = _overspent({"budget": GRANT + GRANT // 2})
    assert "budget" in rules(instance, tampered)
    assert rules(instance, tampered) <= {"budget", "earmark"}


def test_budget_overrun_without_earmarks_is_reported_once() -> None:
    instance, tampered = _overspent({"budget": GRANT + GRANT // 2})
    assert rules(instance, tampered) == {"budget"}


def test_general_money_over_the_unearmarked_part_breaks_earmark() -> None:
    # Half funding: 102,000 per match. General part 150,000 takes one physician, not two; the budget takes both.
    nurse_earmark = {"id": "E1", "amount": 250_000, "professions": ["nurse"]}
    instance, tampered = _overspent(
        {"budget": 400_000, "earmarks": [nurse_earmark], "cofunding_share": 0.5}, {"cofunding_share": 0.5}
    )
    assert rules(instance, tampered) == {"earmark"}


def test_grants_to_one_unit_over_its_cap_break_unit_cap() -> None:
    instance, tampered = _overspent({"unit_caps": {"medium": GRANT + GRANT // 2}})
    assert rules(instance, tampered) == {"unit_cap"}


# --- the coordinator's pins, and the hard rules per pair -----------------------------------------------------------


def test_pinned_pair_left_out_breaks_pinned() -> None:
    instance = make(pins=[{"candidate_id": "C1", "offer_id": "O1"}])
    solution = solved(instance)
    assert rules(instance, solution.model_copy(update={"assignments": []})) == {"pinned"}


NO_AUTHORISATION = {"ladder": {"special_authorisation": "none"}}
LANGUAGE_PLACEMENT = {"kind": "language_placement"}  # needs no special authorisation, unlike a PTJ


@pytest.mark.parametrize(
    ("rule", "person", "first", "second", "policy"),
    [
        pytest.param("language", {}, {}, {"min_cefr": "C2"}, {}, id="language"),
        pytest.param("offer_status", {}, {}, {"status": "draft"}, {}, id="offer_status"),
        pytest.param("forbidden", {}, {}, {}, {"forbids": [{"candidate_id": "C1", "offer_id": "O2"}]}, id="forbidden"),
        pytest.param("special_authorisation", NO_AUTHORISATION, LANGUAGE_PLACEMENT, {}, {}, id="authorisation"),
    ],
)
def test_match_to_an_ineligible_offer_breaks_the_pair_rule(
    rule: str, person: dict[str, Any], first: dict[str, Any], second: dict[str, Any], policy: dict[str, Any]
) -> None:
    instance = make(
        candidates=[candidate(**person)],
        offers=[offer("O1", **first), offer("O2", supervisors=("S2",), **second)],
        supervisors=[supervisor("S1"), supervisor("S2")],
        **policy,
    )
    solution = solved(instance)
    assert [a.offer_id for a in solution.assignments] == ["O1"]
    assert rules(instance, changed(solution, offer_id="O2", supervisor_id="S2")) == {rule}


@pytest.mark.parametrize(
    ("rule", "second_programme"),
    [
        pytest.param("programme_profession", {"professions": ["nurse"]}, id="programme_profession"),
        pytest.param("programme_offer_kind", {"offer_kinds": ["training_seat"]}, id="programme_offer_kind"),
        pytest.param("programme_residence", {"residence_counties": ["12"]}, id="programme_residence"),
        pytest.param("programme_open", {"status": "closed", "cutoff": "2027-01-01"}, id="programme_open"),
    ],
)
def test_payment_by_an_ineligible_programme_breaks_the_programme_rule(
    rule: str, second_programme: dict[str, Any]
) -> None:
    instance = make(programmes=[programme("P1"), programme("P2", **second_programme)])
    assert rules(instance, changed(solved(instance), programme_id="P2")) == {rule}
