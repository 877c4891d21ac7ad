"""Baselines against each other and against the engine: Hungarian = min-cost flow, deferred acceptance is stable
and candidate-optimal, HiGHS = brute force = CP-SAT, and HiGHS solutions pass verify."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from matching.input.instance import Instance
from matching.model.spec import objective_tiers
from matching.model.stability import blocking_pairs, count_blocking_pairs, preference_ranks
from matching.reports.verify import verify
from matching.rules.prepare import Prepared, prepare
from matching.solvers.baselines import (
    brute_force,
    feasible_picks,
    hungarian,
    lp_bound,
    milp,
)
from matching.solvers.flow import max_weight_assignment
from matching.solvers.greedy import pinned_pairs
from matching.solvers.objective import combined_values
from matching.solvers.solve import build_solution, solve
from matching.solvers.stable import deferred_acceptance
from tests.factories import candidate, make, offer, programme, supervisor, unit

SPECIALTIES = ("allmänmedicin", "kirurgi", "psykiatri", "internal medicine", "")


def random_instance(
    seed: int, n_cands: int, n_offers: int, *, n_units: int = 3, max_slots: int = 2, pin: bool = False, **policy: Any
) -> Instance:
    """A small random round where supervisors are shared, budgets and unit caps bind and earmarks matter."""
    rng = np.random.default_rng(seed)
    units = [unit(f"U{u}", size_class=str(rng.choice(["small", "medium", "large"]))) for u in range(n_units)]
    sups = []
    for u in range(n_units):
        for j in range(int(rng.integers(1, 3))):
            extra = {"available_until": "2027-11-30"} if rng.random() < 0.3 else {}
            sups.append(supervisor(f"S{u}_{j}", f"U{u}", capacity=int(rng.integers(1, 3)), **extra))
    offers = []
    for i in range(n_offers):
        u = int(rng.integers(n_units))
        mine = [s["id"] for s in sups if s["unit_id"] == f"U{u}"]
        chosen = rng.choice(mine, size=int(rng.integers(1, len(mine) + 1)), replace=False)
        offers.append(
            offer(
                f"O{i}",
                f"U{u}",
                tuple(str(s) for s in chosen),
                kind="ptj" if rng.random() < 0.6 else "training_seat",
                specialty=str(rng.choice(SPECIALTIES)),
                start=f"2027-{int(rng.integers(3, 9)):02d}-01",
                months=int(rng.integers(6, 10)),
                slots=int(rng.integers(1, max_slots + 1)) if rng.random() < 0.9 else 0,
                monthly_salary=int(rng.integers(20, 41)) * 1000,
                monthly_supervisor_fee=int(rng.integers(0, 6)) * 1000,
                min_cefr=str(rng.choice(["B2", "C1"])),
                course_fee=int(rng.choice([0, 0, 15_000])),
            )
        )
    places = [o["id"] for o in offers] + [u["id"] for u in units]
    cands = []
    for c in range(n_cands):
        extra = {"available_until": "2027-12-31"} if rng.random() < 0.2 else {}
        wishes = rng.choice(places, size=int(rng.integers(0, min(4, len(places)) + 1)), replace=False)
        cands.append(
            candidate(
                f"C{c}",
                cefr=str(rng.choice(["B2", "C1", "C2"])),
                ptj_months=int(rng.integers(4, 7)),
                part_time=float(rng.choice([1.0, 1.0, 1.0, 0.75])),
                specialty=str(rng.choice(SPECIALTIES)),
                ready_since=f"2026-{int(rng.integers(1, 13)):02d}-01",
                wishes=[str(w) for w in wishes],
                **extra,
            )
        )
    cand_ids = [c["id"] for c in cands]
    for o in offers:
        o["clinic_ranking"] = [
            str(c) for c in rng.choice(cand_ids, size=int(rng.integers(0, n_cands + 1)), replace=False)
        ]
    progs = []
    for g in range(int(rng.integers(1, 3))):
        budget = int(rng.integers(2, 8)) * 100_000
        kw: dict[str, Any] = {"budget": budget, "spend_by": "2028-12-31"}
        if rng.random() < 0.6:
            kw["earmarks"] = [{"id": f"E{g}", "amount": budget // 2, "offer_kinds": ["training_seat"]}]
            if rng.random() < 0.5:
                kw["earmarks"].append({"id": f"F{g}", "amount": budget // 4, "professions": ["physician"]})
        if rng.random() < 0.3:
            kw["candidate_cap"] = 200_000
        if rng.random() < 0.3:
            kw["covers"] = ["salary", "course_fee"]
        if rng.random() < 0.6:
            kw["unit_caps"] = {"small": 150_000, "medium": 300_000}
        kw["cofunding_share"] = float(rng.choice([1.0, 0.75, 0.5]))
        progs.append(programme(f"P{g}", **kw))
    if rng.random() < 0.5:
        policy.setdefault(
            "forbids", [{"candidate_id": str(rng.choice(cand_ids)), "offer_id": str(rng.choice(offers)["id"])}]
        )
    data: dict[str, Any] = {
        "candidates": cands,
        "offers": offers,
        "supervisors": sups,
        "units": units,
        "programmes": progs,
        **policy,
    }
    inst = make(**data)
    if pin:
        prep = prepare(inst)
        # An offer without slots passes eligibility, but a pin there cannot hold (see the report on check_pins).
        open_pairs = np.flatnonzero(prep.tables.offers.slots[prep.pairs.offer] > 0)
        if len(open_pairs):
            k = int(rng.choice(open_pairs))
            pair = {
                "candidate_id": cand_ids[int(prep.pairs.cand[k])],
                "offer_id": offers[int(prep.pairs.offer[k])]["id"],
            }
            inst = make(**data, pins=[pair])
    return inst


def tier_values(prep: Prepared, chosen: list[int]) -> list[int]:
    """Objective of each tier for a set of pairs."""
    return [int(values[chosen].sum()) for _, values in objective_tiers(prep)]


def assert_verified(prep: Prepared, picks: list[Any]) -> None:
    """A Solution built from the picks breaks no rule."""
    solution = build_solution(prep, picks, [], "test", 0.0)
    assert verify(prep.instance, solution) == []


# --- Hungarian ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_slots", [1, 3])
@pytest.mark.parametrize("seed", range(6))
def test_hungarian_equals_min_cost_flow(seed: int, max_slots: int) -> None:
    prep = prepare(random_instance(seed, 9, 6, max_slots=max_slots, pin=seed % 2 == 1))
    pairs, slots = prep.pairs, prep.tables.offers.slots
    for values in (
        prep.scores.total,
        np.ones(len(pairs), dtype=np.int64),
        combined_values(prep, objective_tiers(prep)),
    ):
        chosen = hungarian(prep, values)
        _, best = max_weight_assignment(pairs.cand, pairs.offer, values, slots, pinned_pairs(prep))
        assert int(values[chosen].sum()) == best
        assert len(set(pairs.cand[chosen].tolist())) == len(chosen)
        assert (np.bincount(pairs.offer[chosen], minlength=len(slots)) <= slots).all()
        assert set(pinned_pairs(prep)) <= set(chosen)


def test_hungarian_is_the_optimum_where_nothing_binds() -> None:
    inst = make(
        candidates=[candidate(f"C{i}", specialty=s) for i, s in enumerate(("kirurgi", "psykiatri", ""))],
        offers=[offer("O1", specialty="kirurgi"), offer("O2", supervisors=("S2",), specialty="psykiatri")],
        supervisors=[supervisor("S1"), supervisor("S2")],
        programmes=[programme(budget=5_000_000)],
        objective="weighted",
    )
    prep = prepare(inst)
    assert prep.is_flow
    (tier,) = objective_tiers(prep)
    chosen = hungarian(prep, tier[1])
    result = milp(prep, [tier])
    assert int(tier[1][chosen].sum()) == result.objectives[0]
    assert [prep.instance.candidates[int(c)].id for c in prep.pairs.cand[chosen]] == ["C0", "C1"]


# --- Deferred acceptance -----------------------------------------------------------------------------------------


def textbook() -> Prepared:
    """Three residents, three hospitals; the candidate- and offer-optimal stable matchings differ."""
    return prepare(
        make(
            candidates=[
                candidate("A", wishes=["X", "Y", "Z"]),
                candidate("B", wishes=["Y", "X", "Z"]),
                candidate("C", wishes=["X", "Y", "Z"]),
            ],
            offers=[
                offer("X", clinic_ranking=["B", "A", "C"]),
                offer("Y", supervisors=("S2",), clinic_ranking=["A", "B", "C"]),
                offer("Z", supervisors=("S3",), clinic_ranking=["A", "B", "C"]),
            ],
            supervisors=[supervisor("S1"), supervisor("S2"), supervisor("S3")],
        )
    )


def named(prep: Prepared, chosen: list[int]) -> set[tuple[str, str]]:
    """(candidate id, offer id) of pairs."""
    inst, pairs = prep.instance, prep.pairs
    return {(inst.candidates[int(pairs.cand[k])].id, inst.offers[int(pairs.offer[k])].id) for k in chosen}


def pair_index(prep: Prepared, cid: str, oid: str) -> int:
    """Index of the pair (cid, oid) in prep.pairs."""
    c, o = prep.tables.candidates.index[cid], prep.tables.offers.index[oid]
    return int(np.flatnonzero((prep.pairs.cand == c) & (prep.pairs.offer == o))[0])


def test_deferred_acceptance_is_candidate_optimal_on_the_textbook_example() -> None:
    prep = textbook()
    result = deferred_acceptance(prep)
    assert named(prep, result.pairs) == {("A", "X"), ("B", "Y"), ("C", "Z")}
    assert result.blocking == []
    offer_optimal = [pair_index(prep, "A", "Y"), pair_index(prep, "B", "X"), pair_index(prep, "C", "Z")]
    assert count_blocking_pairs(prep, offer_optimal) == 0


def test_blocking_pairs_of_an_unstable_matching() -> None:
    prep = textbook()
    unstable = [pair_index(prep, "A", "Z"), pair_index(prep, "B", "Y"), pair_index(prep, "C", "X")]
    # A prefers X and Y to Z; X ranks A above C and Y ranks A above B.
    assert blocking_pairs(prep, unstable) == [(0, 0), (0, 1)]
    # Unmatched C blocks with X (now free) but not with Y or Z, whose holders rank above C.
    assert blocking_pairs(prep, unstable[:2]) == [(0, 0), (0, 1), (2, 0)]


def test_blocking_pairs_accepts_solutions_and_picks() -> None:
    prep = textbook()
    solution = solve(prep.instance, method="cp_sat")
    result = milp(prep, objective_tiers(prep))
    by_solution = count_blocking_pairs(prep, solution)
    assert by_solution == count_blocking_pairs(
        prep, [pair_index(prep, a.candidate_id, a.offer_id) for a in solution.assignments]
    )
    assert count_blocking_pairs(prep, result.picks()) == count_blocking_pairs(prep, result.chosen)
    with pytest.raises(ValueError, match="matched twice"):
        blocking_pairs(prep, [pair_index(prep, "A", "X"), pair_index(prep, "A", "Y")])


def all_matchings(prep: Prepared) -> list[list[int]]:
    """Every set of pairs with at most one per candidate and offers within their slots."""
    pairs, slots = prep.pairs, prep.tables.offers.slots
    per_cand: dict[int, list[int | None]] = {}
    for k in range(len(pairs)):
        per_cand.setdefault(int(pairs.cand[k]), [None]).append(k)
    out = []
    for combo in itertools.product(*per_cand.values()):
        chosen = [k for k in combo if k is not None]
        if (np.bincount(pairs.offer[chosen], minlength=len(slots)) <= slots).all():
            out.append(chosen)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_deferred_acceptance_is_stable_and_candidate_optimal(seed: int) -> None:
    prep = prepare(random_instance(100 + seed, 5, 4, max_slots=2))
    assert len(prep.pairs) <= 20
    result = deferred_acceptance(prep)
    assert result.blocking == [] and count_blocking_pairs(prep, result.pairs) == 0
    cand_rank, _ = preference_ranks(prep)
    n = len(prep.instance.candidates)

    def ranks(chosen: list[int]) -> np.ndarray:
        out = np.full(n, np.iinfo(np.int64).max)
        out[prep.pairs.cand[chosen]] = cand_rank[chosen]
        return out

    mine = ranks(result.pairs)
    stable = [m for m in all_matchings(prep) if count_blocking_pairs(prep, m) == 0]
    assert stable
    for other in stable:
        assert (mine <= ranks(other)).all()


# --- HiGHS MIP ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_milp_equals_brute_force_on_tiny_instances(seed: int) -> None:
    prep = prepare(random_instance(200 + seed, 4, 3, n_units=2, pin=seed % 3 == 0, waiting_priority=seed % 4 == 1))
    tiers = objective_tiers(prep)
    best = brute_force(prep, tiers)
    result = milp(prep, tiers)
    assert result.status == "OPTIMAL"
    assert result.objectives == tier_values(prep, best)
    assert result.objectives == tier_values(prep, result.chosen)
    picks = feasible_picks(prep, best)
    assert picks is not None
    assert_verified(prep, picks)
    assert_verified(prep, result.picks())


@pytest.mark.parametrize("seed", range(6))
def test_milp_equals_cp_sat(seed: int) -> None:
    inst = random_instance(300 + seed, 10, 7, pin=seed % 2 == 0)
    prep = prepare(inst)
    assert not prep.is_flow
    result = milp(prep, objective_tiers(prep))
    solution = solve(inst, method="cp_sat")
    assert result.status == solution.status == "OPTIMAL"
    assert result.objectives == [solution.stats["placements_objective"], solution.stats["score_objective"]]
    assert result.lp_bound >= result.objectives[-1] - 1e-6
    built = build_solution(prep, result.picks(), result.tiers, "highs", result.seconds)
    assert verify(inst, built) == []
    assert built.placements == result.objectives[0] and built.score == result.objectives[1]


@pytest.mark.parametrize(("objective", "waiting"), [("weighted", False), ("lexicographic", True)])
def test_milp_equals_cp_sat_in_other_objective_modes(objective: str, waiting: bool) -> None:
    inst = random_instance(400, 10, 6, objective=objective, waiting_priority=waiting)
    prep = prepare(inst)
    result = milp(prep, objective_tiers(prep))
    solution = solve(inst, method="cp_sat")
    assert result.status == solution.status == "OPTIMAL"
    names = [name for name, _ in objective_tiers(prep)]
    assert result.objectives == [solution.stats[f"{name}_objective"] for name in names]
    assert_verified(prep, result.picks())


def shared_supervisor(second_start: str) -> Prepared:
    """Two offers that share one supervisor with one seat."""
    return prepare(
        make(
            candidates=[candidate("C1"), candidate("C2")],
            offers=[offer("O1"), offer("O2", start=second_start)],
            programmes=[programme(spend_by="2028-12-31")],
        )
    )


def test_milp_shares_a_supervisor_over_time() -> None:
    overlapping = shared_supervisor("2027-05-01")
    assert milp(overlapping, objective_tiers(overlapping)).objectives[0] == 1
    after = shared_supervisor("2027-09-01")
    result = milp(after, objective_tiers(after))
    assert result.objectives[0] == 2
    assert_verified(after, result.picks())


def test_milp_keeps_earmarked_money_for_its_own_matches() -> None:
    # Each match costs 6 x 34,000 = 204,000 SEK; 210,000 of the 460,000 are for training seats only, so the
    # 250,000 left pay for one PTJ, not two.
    earmark = {"id": "E1", "amount": 210_000, "offer_kinds": ["training_seat"]}
    inst = make(
        candidates=[candidate("C1"), candidate("C2"), candidate("C3")],
        offers=[offer("O1", slots=2, supervisors=("S1",)), offer("T1", kind="training_seat", supervisors=("S2",))],
        supervisors=[supervisor("S1", capacity=2), supervisor("S2")],
        programmes=[programme(budget=460_000, earmarks=[earmark])],
    )
    prep = prepare(inst)
    result = milp(prep, objective_tiers(prep))
    assert result.objectives[0] == 2
    assert sorted(o for _, o in named(prep, result.chosen)) == ["O1", "T1"]
    assert result.objectives == tier_values(prep, brute_force(prep, objective_tiers(prep)))
    assert_verified(prep, result.picks())


def test_milp_respects_unit_caps_by_size_class() -> None:
    inst = make(
        candidates=[candidate("C1"), candidate("C2")],
        units=[unit("U1", size_class="small"), unit("U2", size_class="large")],
        offers=[offer("O1", slots=2), offer("O2", unit_id="U2", supervisors=("S2",))],
        supervisors=[supervisor("S1", capacity=2), supervisor("S2", unit_id="U2")],
        programmes=[programme(unit_caps={"small": 250_000})],
    )
    prep = prepare(inst)
    result = milp(prep, objective_tiers(prep))
    assert result.objectives[0] == 2
    assert sorted(o for _, o in named(prep, result.chosen)) == ["O1", "O2"]
    assert_verified(prep, result.picks())


def test_pins_that_cannot_all_hold() -> None:
    # Two pinned pairs whose offers share one supervisor with one seat over the same months.
    inst = make(
        candidates=[candidate("C1"), candidate("C2")],
        offers=[offer("O1"), offer("O2")],
        pins=[{"candidate_id": "C1", "offer_id": "O1"}, {"candidate_id": "C2", "offer_id": "O2"}],
    )
    prep = prepare(inst)
    assert milp(prep, objective_tiers(prep)).status == "INFEASIBLE"
    with pytest.raises(ValueError, match="pins"):
        brute_force(prep, objective_tiers(prep))


def test_lp_bound_is_an_upper_bound() -> None:
    prep = prepare(random_instance(500, 10, 6, objective="weighted"))
    tiers = objective_tiers(prep)
    result = milp(prep, tiers)
    bound = lp_bound(prep, tiers[0][1])
    assert bound >= result.objectives[0] - 1e-6
    assert bound == pytest.approx(result.lp_bound)
    assert int(tiers[0][1][hungarian(prep, tiers[0][1])].sum()) >= result.objectives[0]


def test_empty_round() -> None:
    prep = prepare(make(candidates=[candidate("C1", cefr="B1")]))
    tiers = objective_tiers(prep)
    assert len(prep.pairs) == 0
    assert milp(prep, tiers).objectives == [0, 0]
    assert brute_force(prep, tiers) == [] == hungarian(prep, tiers[-1][1])
    assert deferred_acceptance(prep).pairs == []
    assert lp_bound(prep, tiers[-1][1]) == 0.0


def test_generated_instances_agree_with_cp_sat_and_brute_force() -> None:
    from matching.generators.generate import generate

    for seed in range(3):
        inst = generate(60, 30, seed=seed, binding_budgets=True)
        prep = prepare(inst)
        tiers = objective_tiers(prep)
        result = milp(prep, tiers)
        solution = solve(inst, method="cp_sat")
        assert result.objectives == [solution.stats[f"{name}_objective"] for name, _ in tiers]
        assert_verified(prep, result.picks())
        tiny = prepare(generate(10, 6, seed=seed, binding_budgets=True))
        if len(tiny.pairs) <= 16:
            tiny_tiers = objective_tiers(tiny)
            assert milp(tiny, tiny_tiers).objectives == tier_values(tiny, brute_force(tiny, tiny_tiers))
