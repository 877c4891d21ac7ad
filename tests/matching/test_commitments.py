"""Commitments: placements accepted in earlier rounds keep their money and supervisor months in every later round.

Default pair (tests.factories): six-month physician PTJ from 2027-03-01 (March-August), 6 x (30,000 + 4,000) =
204,000 SEK, paid in full by P1.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from matching.generators.generate import generate
from matching.input.instance import Commitment, Instance
from matching.input.validate import InvalidInstance, load_instance
from matching.model.solution import Assignment, Solution
from matching.model.spec import objective_tiers
from matching.reports.verify import verify
from matching.rules.eligibility import grant_amount
from matching.rules.limits import committed_limits
from matching.rules.prepare import prepare
from matching.solvers.baselines import brute_force, milp
from matching.solvers.solve import solve
from tests.factories import candidate, instance_dict, make, offer, programme, supervisor, unit

GRANT = 6 * (30_000 + 4_000)


def commitment(cid: str = "K1", **kw: Any) -> dict[str, Any]:
    """CAND-X accepted at unit U1 with supervisor S1, March-August 2027, 204,000 SEK from P1."""
    return {
        "id": cid,
        "candidate_id": "CX",
        "unit_id": "U1",
        "offer_id": "O0",
        "supervisor_id": "S1",
        "programme_id": "P1",
        "start": "2027-03-01",
        "months": 6,
        "grant": GRANT,
        **kw,
    }


def with_commitments(commitments: list[dict[str, Any]], **kw: Any) -> Instance:
    return load_instance({**instance_dict(**kw), "commitments": commitments})


def rules(instance: Instance, solution: Solution) -> set[str]:
    return {v.rule for v in verify(instance, solution)}


# --- money -----------------------------------------------------------------------------------------------------------


def test_a_committed_grant_counts_against_the_budget() -> None:
    # Budget for two placements; one is committed already, so only one of the two candidates can be placed now.
    kw: dict[str, Any] = {
        "candidates": [candidate("C1"), candidate("C2")],
        "offers": [offer("O1", slots=2)],
        "supervisors": [supervisor("S1", capacity=3)],
        "programmes": [programme(budget=2 * GRANT)],
    }
    before = solve(make(**kw))
    assert before.placements == 2
    instance = with_commitments([commitment()], **kw)
    after = solve(instance)
    assert after.placements == 1
    assert verify(instance, after) == []
    money = after.money[0]
    assert (money.committed, money.granted, money.left) == (GRANT, GRANT, 0)
    # The first round's answer ignores the commitment: verify sees the programme overdrawn.
    assert rules(instance, before) >= {"budget"}


def test_committed_earmarked_money_is_spent_from_the_earmark_first() -> None:
    # 100k earmarked for nurses; a committed physician grant cannot use it, so general money is what is left.
    prog = programme(budget=GRANT + 150_000, earmarks=[{"id": "E1", "amount": 150_000, "professions": ["nurse"]}])
    instance = with_commitments([commitment(grant=140_000, earmark_id="E1")], programmes=[prog])
    limits = committed_limits(instance)
    assert limits.earmark_left[0].tolist() == [10_000]
    assert limits.general_left.tolist() == [GRANT]
    # Over the earmark: the rest spills into general money.
    spill = committed_limits(with_commitments([commitment(grant=160_000, earmark_id="E1")], programmes=[prog]))
    assert spill.earmark_left[0].tolist() == [0]
    assert spill.general_left.tolist() == [GRANT - 10_000]


def test_committed_general_money_leaves_nothing_for_a_physician() -> None:
    prog = programme(budget=GRANT + 150_000, earmarks=[{"id": "E1", "amount": 150_000, "professions": ["nurse"]}])
    instance = with_commitments([commitment(grant=GRANT, supervisor_id=None)], programmes=[prog])
    solution = solve(instance)
    assert solution.placements == 0
    assert solution.unmatched[0].reason in ("no_eligible_offer", "no_money")


def test_a_committed_grant_counts_against_the_unit_cap() -> None:
    caps = {"unit_caps": {"medium": GRANT + 50_000}}
    instance = with_commitments([commitment(grant=100_000, supervisor_id=None)], programmes=[programme(**caps)])
    solution = solve(instance)
    assert solution.placements == 0  # 204,000 more would take the unit to 304,000 over a 254,000 cap
    loose = with_commitments([commitment(grant=50_000, supervisor_id=None)], programmes=[programme(**caps)])
    assert solve(loose).placements == 1
    # Another unit's commitment does not touch U1's cap.
    other = with_commitments(
        [commitment(grant=100_000, unit_id="U2", supervisor_id="S2")],
        units=[unit("U1"), unit("U2")],
        supervisors=[supervisor("S1"), supervisor("S2", unit_id="U2")],
        programmes=[programme(**caps)],
    )
    assert solve(other).placements == 1


def test_a_committed_grant_to_the_same_candidate_counts_against_the_candidate_cap() -> None:
    # C1 was placed before, interrupted after two months: 68,000 SEK paid; the cap of 250,000 leaves 182,000.
    kw: dict[str, Any] = {"programmes": [programme(candidate_cap=250_000)]}
    interrupted = commitment(candidate_id="C1", supervisor_id=None, months=2, grant=68_000)
    assert solve(with_commitments([interrupted], **kw)).placements == 0
    assert solve(with_commitments([{**interrupted, "candidate_id": "C9"}], **kw)).placements == 1


def test_verify_checks_the_candidate_cap_with_commitments() -> None:
    kw: dict[str, Any] = {"programmes": [programme(candidate_cap=250_000)]}
    fresh = solve(make(**kw))
    instance = with_commitments([commitment(candidate_id="C1", supervisor_id=None, months=2, grant=68_000)], **kw)
    assert "candidate_cap" in rules(instance, fresh)


# --- supervisors -----------------------------------------------------------------------------------------------------


def test_a_committed_placement_takes_the_supervisors_seat_in_its_months_only() -> None:
    # S1 has one seat, committed March-August. A stay from March cannot use S1; one from September can.
    assert solve(with_commitments([commitment()])).placements == 0
    later = {"offers": [offer(start="2027-09-01")], "programmes": [programme(spend_by="2028-06-30")]}
    assert solve(with_commitments([commitment()], **later)).placements == 1
    # A commitment from September leaves March-August free; one from August overlaps in August.
    assert solve(with_commitments([commitment(start="2027-09-01")])).placements == 1
    assert solve(with_commitments([commitment(start="2027-08-01")])).placements == 0


def test_a_partly_overlapping_commitment_binds_in_the_overlap() -> None:
    # Capacity 2: one seat is committed May-October, so two new stays from March would hold three seats in May.
    kw: dict[str, Any] = {
        "candidates": [candidate("C1"), candidate("C2")],
        "offers": [offer("O1", slots=2)],
        "supervisors": [supervisor("S1", capacity=2)],
    }
    assert solve(make(**kw)).placements == 2
    instance = with_commitments([commitment(start="2027-05-01")], **kw)
    solution = solve(instance)
    assert solution.placements == 1
    assert verify(instance, solution) == []
    assert "supervisor_capacity" in rules(instance, solve(make(**kw)))


def test_an_interrupted_commitment_frees_the_seat_after_its_last_month() -> None:
    # Interrupted after March and April: from May the seat is free again.
    instance = with_commitments([commitment(months=2)], offers=[offer(start="2027-05-01")])
    assert solve(instance).placements == 1
    assert solve(with_commitments([commitment(months=3)], offers=[offer(start="2027-05-01")])).placements == 0


# --- input ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"unit_id": "U9"}, "unit_id", "known_id"),
        ({"supervisor_id": "S9"}, "supervisor_id", "known_id"),
        ({"programme_id": "P9"}, "programme_id", "known_id"),
        ({"earmark_id": "E9"}, "earmark_id", "known_id"),
    ],
)
def test_a_commitment_must_name_known_objects(change: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(InvalidInstance) as caught:
        with_commitments([commitment(**change)])
    found = {(i.path, i.object_id, i.field, i.rule) for i in caught.value.issues}
    assert ("commitments[0]", "K1", field, rule) in found


def test_a_commitment_supervisor_must_work_at_its_unit() -> None:
    with pytest.raises(InvalidInstance) as caught:
        with_commitments(
            [commitment(unit_id="U2")],
            units=[unit("U1"), unit("U2")],
        )
    assert [i.rule for i in caught.value.issues] == ["supervisor_same_unit"]


def test_grants_are_rounded_half_up_in_integer_arithmetic() -> None:
    # The binary float 0.29 is 0.28999...: 0.29 x 27,050 = 7,844.5 must give 7,845, not 7,844.
    assert int(grant_amount(0.29, 27_050)) == 7_845
    assert int(grant_amount(0.5, 3)) == 2
    assert int(grant_amount(0.5, 5)) == 3
    instance = make(
        offers=[offer(monthly_salary=27_050, monthly_supervisor_fee=0, months=1)],
        candidates=[candidate(ptj_months=1)],
        programmes=[programme(cofunding_share=0.29)],
    )
    [a] = solve(instance).assignments
    assert (a.grant, a.unit_share) == (7_845, 27_050 - 7_845)


def test_part_time_salary_is_exact() -> None:
    # 0.7 x 30,001 x 5 months = 105,003.5 -> 105,004 (float: 105003.49999...).
    instance = make(
        offers=[offer(monthly_salary=30_001, monthly_supervisor_fee=0, months=8)],
        candidates=[candidate(ptj_months=3, part_time=0.7)],
    )
    [a] = solve(instance).assignments
    assert a.months == 5
    assert a.total_cost == 105_004


# --- properties: later rounds never exceed a limit ------------------------------------------------------------------


def _committed_round(instance: Instance, first: Solution, rng: random.Random) -> Instance:
    """The next round after some of `first`'s proposals were accepted: those candidates leave, their offers lose a
    slot, and their money and supervisor months become commitments."""
    accepted = [a for a in first.assignments if rng.random() < 0.6]
    units = {o.id: o.unit_id for o in instance.offers}
    taken: dict[str, int] = {}
    for a in accepted:
        taken[a.offer_id] = taken.get(a.offer_id, 0) + 1
    gone = {a.candidate_id for a in accepted}
    commitments = [
        Commitment(
            id=f"K{i}",
            candidate_id=a.candidate_id,
            unit_id=units[a.offer_id],
            offer_id=a.offer_id,
            supervisor_id=a.supervisor_id,
            programme_id=a.programme_id,
            earmark_id=a.earmark_id,
            start=a.start,
            months=a.months,
            grant=a.grant,
        )
        for i, a in enumerate(accepted)
    ]
    offers = [
        o.model_copy(
            update={
                "slots": o.slots - taken.get(o.id, 0),
                "clinic_ranking": tuple(c for c in o.clinic_ranking if c not in gone),
            }
        )
        for o in instance.offers
    ]
    data = instance.model_copy(
        update={
            "candidates": tuple(c for c in instance.candidates if c.id not in gone),
            "offers": tuple(offers),
            "commitments": tuple(commitments),
            "policy": instance.policy.model_copy(update={"pins": (), "forbids": (), "keep": ()}),
        }
    )
    return load_instance(data.model_dump(mode="json"))  # checked like any input


def _fresh(instance: Instance, seed: int) -> Instance:
    """The same region with a new pool of candidates (the first round's candidates who were not accepted stay)."""
    newcomers = generate(len(instance.candidates) + 4, len(instance.offers), seed=seed + 77, binding_budgets=True)
    renamed = tuple(c.model_copy(update={"id": f"N{c.id}", "wishes": ()}) for c in newcomers.candidates)
    grown = instance.model_copy(update={"candidates": instance.candidates + renamed})
    return load_instance(grown.model_dump(mode="json"))


@pytest.mark.parametrize("seed", range(40))
def test_later_rounds_with_commitments_never_exceed_a_limit(seed: int) -> None:
    rng = random.Random(seed)
    base = generate(10 + seed % 12, 6 + seed % 5, seed=seed, binding_budgets=True)
    base = base.with_policy(time_limit_s=10.0, deterministic=True)
    first = solve(base)
    second_input = _fresh(_committed_round(base, first, rng), seed)
    second = solve(second_input, method=("auto", "cp_sat", "greedy")[seed % 3])  # type: ignore[arg-type]
    assert second.status in ("OPTIMAL", "FEASIBLE")
    assert verify(second_input, second) == []
    committed = {k.programme_id: 0 for k in second_input.commitments}
    for k in second_input.commitments:
        committed[k.programme_id] += k.grant
    for use in second.money:
        assert use.committed == committed.get(use.programme_id, 0)
        assert use.left == use.budget - use.committed - use.granted
        assert use.left is not None and use.left >= 0


@pytest.mark.parametrize("seed", range(100, 130))
def test_optimum_with_commitments_equals_brute_force_and_the_mip(seed: int) -> None:
    rng = random.Random(seed)
    base = generate(6 + seed % 3, 3 + seed % 2, seed=seed, binding_budgets=True).with_policy(time_limit_s=10.0)
    committed = _committed_round(base, solve(base), rng)
    # Everyone competes again, against what was committed; fewer candidates until brute force can enumerate.
    candidates = base.candidates
    while True:
        instance = committed.model_copy(update={"candidates": candidates, "policy": base.policy})
        prep = prepare(instance)
        if len(prep.pairs) <= 14:
            break
        candidates = candidates[:-1]
    tiers = objective_tiers(prep)
    best = brute_force(prep, tiers, max_pairs=16)
    solution = solve(instance, method="cp_sat")
    reference = milp(prep, tiers, time_limit=60.0)
    totals = [int(values[best].sum()) for _, values in tiers]
    assert [int(solution.stats[f"{name}_objective"]) for name, _ in tiers] == totals
    assert [r.objective for r in reference.tiers] == totals
    assert verify(instance, solution) == []


def test_verify_reports_assignments_that_ignore_commitments() -> None:
    instance = with_commitments([commitment()])
    stale = Solution(
        status="OPTIMAL",
        method="test",
        objective=0,
        bound=0,
        gap=0,
        placements=1,
        score=0,
        wall_time_s=0,
        assignments=[
            Assignment(
                candidate_id="C1",
                offer_id="O1",
                supervisor_id="S1",
                programme_id="P1",
                start=instance.offers[0].start,
                months=6,
                total_cost=GRANT,
                grant=GRANT,
                unit_share=0,
                score=0,
                breakdown={},
            )
        ],
    )
    assert {v.rule for v in verify(instance, stale, report=False)} == {"supervisor_capacity"}
