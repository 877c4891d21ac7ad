"""Re-runs with minimal disruption (policy.keep) and floors per group (policy.floors)."""

from __future__ import annotations

import pytest

from matching.generators.generate import generate
from matching.input.instance import Floor, Instance, Offer, OfferStatus, Pair
from matching.input.validate import InvalidInstance
from matching.model.spec import objective_tiers
from matching.reports.verify import verify
from matching.rules.prepare import prepare
from matching.solvers.baselines import milp
from matching.solvers.solve import solve
from tests.factories import candidate, make, offer, supervisor


def _with(instance: Instance, **policy: object) -> Instance:
    return instance.with_policy(**policy)


def _pairs(solution: object) -> set[tuple[str, str]]:
    return {(a.candidate_id, a.offer_id) for a in solution.assignments}  # type: ignore[attr-defined]


def _disrupt(instance: Instance, placed: set[tuple[str, str]], seed: int) -> Instance:
    """A budget cut, a withdrawn offer or a declined (forbidden) pair, as happen between rounds."""
    kind = seed % 3
    if kind == 0:
        programmes = tuple(
            p.model_copy(update={"budget": p.budget * 6 // 10, "earmarks": ()}) for p in instance.programmes
        )
        return instance.model_copy(update={"programmes": programmes})
    if kind == 1 and placed:
        gone = sorted(placed)[seed % len(placed)][1]
        offers = tuple(_withdrawn(o) if o.id == gone else o for o in instance.offers)
        return instance.model_copy(update={"offers": offers})
    declined = sorted(placed)[: 1 + seed % 2]
    return _with(instance, forbids=tuple(Pair(candidate_id=c, offer_id=o) for c, o in declined))


@pytest.mark.parametrize("seed", range(40))
def test_rerun_keeps_every_proposal_that_need_not_change(seed: int) -> None:
    first = _with(generate(10 + seed % 5, 5 + seed % 3, seed=seed, binding_budgets=True), time_limit_s=10.0)
    before = _pairs(solve(first))
    changed = _disrupt(first, before, seed)
    keep = tuple(Pair(candidate_id=c, offer_id=o) for c, o in sorted(before))
    rerun = _with(changed, keep=keep)
    solution = solve(rerun)
    assert solution.status == "OPTIMAL"
    assert verify(rerun, solution) == []
    kept = _pairs(solution) & before
    # No larger set of earlier proposals can be kept (HiGHS on the same round is the exact reference) ...
    prep = prepare(rerun)
    reference = milp(prep, objective_tiers(prep))
    assert reference.status == "OPTIMAL" and reference.objectives[0] == len(kept)
    # ... and none of the dropped ones could have been kept alongside the others.
    for dropped in sorted(before - kept):
        pins = tuple(Pair(candidate_id=c, offer_id=o) for c, o in sorted(kept | {dropped}))
        try:
            forced = solve(_with(changed, pins=pins))
        except InvalidInstance as exc:
            assert "pin_eligible" in str(exc)  # no longer eligible: withdrawn, declined or unfundable
            continue
        assert forced.status == "INFEASIBLE"


def _three_for_two() -> Instance:
    """Two one-slot offers at one unit, three candidates; C3 scores best at both."""
    return make(
        candidates=[
            candidate("C1", specialty="pediatrics"),
            candidate("C2", specialty="pediatrics"),
            candidate("C3"),
        ],
        supervisors=[supervisor("S1"), supervisor("S2")],
        offers=[offer("O1", supervisors=("S1",)), offer("O2", supervisors=("S2",))],
    )


def test_keep_outranks_placements_and_score_in_lexicographic_mode() -> None:
    instance = _three_for_two()
    fresh = _pairs(solve(instance))
    assert "C3" in {c for c, _ in fresh}
    keep = (Pair(candidate_id="C1", offer_id="O1"), Pair(candidate_id="C2", offer_id="O2"))
    kept = solve(_with(instance, keep=keep))
    assert _pairs(kept) == {("C1", "O1"), ("C2", "O2")}
    assert kept.stats["kept_objective"] == 2


def test_weighted_mode_keeps_by_keep_value() -> None:
    instance = _with(_three_for_two(), objective="weighted")
    keep = (Pair(candidate_id="C1", offer_id="O1"), Pair(candidate_id="C2", offer_id="O2"))
    assert _pairs(solve(_with(instance, keep=keep, keep_value=10_000))) == {("C1", "O1"), ("C2", "O2")}
    assert "C3" in {c for c, _ in _pairs(solve(_with(instance, keep=keep, keep_value=0)))}


def test_keep_names_known_objects() -> None:
    with pytest.raises(InvalidInstance) as err:
        make(keep=[{"candidate_id": "C9", "offer_id": "O1"}])
    assert err.value.issues[0].path == "policy.keep[0]" and err.value.issues[0].rule == "known_id"


def _by_country() -> Instance:
    """One slot; the Iranian-trained candidate scores higher than the Syrian-trained one."""
    return make(
        candidates=[
            candidate("IR1", country_of_training="IR"),
            candidate("SY1", country_of_training="SY", cefr="C2", specialty="x"),
        ],
    )


def test_a_floor_places_its_group() -> None:
    instance = _by_country()
    assert {c for c, _ in _pairs(solve(instance))} == {"IR1"}
    floored = _with(instance, floors=(Floor(group="country", value="SY", min_count=1),))
    solution = solve(floored)
    assert {c for c, _ in _pairs(solution)} == {"SY1"}
    assert verify(floored, solution) == []
    # verify checks floors on its own: the unfloored answer breaks the floor.
    assert [v.rule for v in verify(floored, solve(instance))] == ["floor"]


def test_floors_that_cannot_all_be_met_are_reported_not_broken() -> None:
    instance = _with(
        _by_country(),
        floors=(Floor(group="country", value="SY", min_count=1), Floor(group="country", value="IR", min_share=1.0)),
    )
    solution = solve(instance)
    assert solution.status == "INFEASIBLE" and solution.assignments == []
    assert "floors" in str(solution.stats["no_solution"])


def test_a_floor_larger_than_its_group_is_invalid_input() -> None:
    with pytest.raises(InvalidInstance) as err:
        make(floors=[{"group": "profession", "value": "nurse", "min_count": 1}])
    issue = err.value.issues[0]
    assert (issue.path, issue.rule) == ("policy.floors[0]", "floor_within_group")


@pytest.mark.parametrize(
    ("floor", "rule"),
    [
        ({"group": "country", "value": "SY"}, "floor_limit"),
        ({"group": "country", "value": "SY", "min_count": 1, "min_share": 0.5}, "floor_limit"),
        ({"group": "waiting_band", "value": "forever", "min_count": 0}, "waiting_band"),
    ],
)
def test_bad_floors_name_the_rule(floor: dict[str, object], rule: str) -> None:
    with pytest.raises(InvalidInstance) as err:
        make(floors=[floor])
    assert rule in str(err.value)


@pytest.mark.parametrize("seed", range(12))
def test_share_floors_hold_on_random_rounds(seed: int) -> None:
    instance = generate(14, 6, seed=seed, binding_budgets=True)
    profession = instance.candidates[0].profession.value
    floored = _with(instance, time_limit_s=10.0, floors=(Floor(group="profession", value=profession, min_share=0.3),))
    solution = solve(floored)
    assert solution.status in ("OPTIMAL", "FEASIBLE", "INFEASIBLE")
    if solution.status != "INFEASIBLE":
        assert verify(floored, solution) == []


def _withdrawn(offer: Offer) -> Offer:
    return offer.model_copy(update={"status": OfferStatus.WITHDRAWN})
