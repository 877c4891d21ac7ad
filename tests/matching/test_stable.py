"""Stable mode: the no-blocking rows hold exactly for matchings without a blocking pair; deferred acceptance
funded afterwards adds up; the comparison shows what stability costs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from matching.generators.generate import generate
from matching.input.instance import Instance
from matching.model.side import satisfied
from matching.model.stability import TooManyTerms, blocking_pairs, count_terms, no_blocking, no_blocking_rows
from matching.reports.verify import verify
from matching.rules.prepare import prepare
from matching.solvers.baselines import feasible_picks
from matching.solvers.solve import solve
from matching.solvers.stable import compare, count_blocking, funded_deferred_acceptance
from tests.factories import candidate, make, offer, programme, supervisor, unit
from tests.matching.test_baselines import all_matchings
from tests.matching.test_baselines import textbook as textbook_round


def preference_instance(seed: int, n_cands: int, n_offers: int, **policy: Any) -> Instance:
    """A small round with random wishes, clinic rankings, slots (some 0) and language levels."""
    rng = np.random.default_rng(seed)
    sups = [supervisor(f"S{i}", capacity=int(rng.integers(1, 3))) for i in range(n_offers)]
    offers = [
        offer(
            f"O{i}", supervisors=(f"S{i}",), slots=int(rng.choice([0, 1, 1, 2])), min_cefr=str(rng.choice(["B2", "C1"]))
        )
        for i in range(n_offers)
    ]
    cand_ids = [f"C{c}" for c in range(n_cands)]
    places = [o["id"] for o in offers] + ["U1"]
    cands = [
        candidate(
            cid,
            cefr=str(rng.choice(["B2", "C1"])),
            wishes=[str(w) for w in rng.choice(places, size=int(rng.integers(0, len(places) + 1)), replace=False)],
            ready_since=f"2026-{int(rng.integers(1, 13)):02d}-01",
        )
        for cid in cand_ids
    ]
    for o in offers:
        o["clinic_ranking"] = [
            str(c) for c in rng.choice(cand_ids, size=int(rng.integers(0, n_cands + 1)), replace=False)
        ]
    budget = int(rng.integers(1, 4)) * 204_000 + 50_000  # a placement costs 204,000 SEK: money often binds
    return make(candidates=cands, offers=offers, supervisors=sups, programmes=[programme(budget=budget)], **policy)


def textbook() -> Instance:
    """Three residents, three hospitals with one slot each: two stable matchings (the baselines tests' round)."""
    return textbook_round().instance


def tiny_instances() -> list[Instance]:
    """Generated rounds of 4-6 candidates and 2-3 offers that have pairs, random preference rounds and the
    textbook example."""
    generated = [generate(c, o, seed=s) for c, o, s in ((5, 3, 3), (5, 3, 22), (6, 3, 13), (5, 2, 8), (4, 3, 59))]
    return [*generated, *(preference_instance(seed, 5, 3) for seed in range(12)), textbook()]


@pytest.mark.parametrize("inst", tiny_instances(), ids=lambda inst: inst.name or "preference")
def test_rows_hold_exactly_for_matchings_without_blocking_pairs(inst: Instance) -> None:
    prep = prepare(inst)
    assert len(prep.pairs) >= 3
    rows = no_blocking_rows(prep)
    with_slots = prep.tables.offers.slots[prep.pairs.offer] > 0
    assert len(rows) == int(with_slots.sum())
    matchings = all_matchings(prep)
    for chosen in matchings:
        stable = not blocking_pairs(prep, chosen)
        assert satisfied(rows, chosen) == stable, chosen
    assert any(not blocking_pairs(prep, m) for m in matchings)  # deferred acceptance's matching, at least


def test_the_rows_are_well_formed_and_counted() -> None:
    prep = prepare(preference_instance(7, 6, 4))
    block = no_blocking(prep)
    assert count_terms(prep) == len(block.col) == sum(len(cols) for cols, _, _ in block.rows())
    assert (np.diff(block.row) >= 0).all()
    for r, (cols, coef, rhs) in enumerate(block.rows()):
        k = int(block.pair[r])
        assert k in cols.tolist() and len(set(cols.tolist())) == len(cols)
        # Columns are pairs of the guarded candidate, or pairs at the guarded offer, nothing else.
        mine = (prep.pairs.cand[cols] == prep.pairs.cand[k]) | (prep.pairs.offer[cols] == prep.pairs.offer[k])
        assert mine.all() and rhs >= 1 and (coef >= 1).all()
    with pytest.raises(TooManyTerms, match="constraint terms"):
        no_blocking_rows(prep, max_terms=count_terms(prep) - 1)


def test_no_pairs_no_rows() -> None:
    prep = prepare(generate(4, 2, seed=0))
    assert len(prep.pairs) == 0
    assert no_blocking_rows(prep) == [] and count_terms(prep) == 0


# --- Deferred acceptance, funded -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_funded_deferred_acceptance_adds_up_and_is_valid(seed: int) -> None:
    inst = generate(40, 12, seed=seed)
    prep = prepare(inst)
    funded = funded_deferred_acceptance(prep)
    assert not blocking_pairs(prep, funded.matched)
    assert funded.solution.placements + funded.dropped == len(funded.matched)
    assert {p.pair for p in funded.picks} <= set(funded.matched)
    assert verify(inst, funded.solution) == []
    for use in funded.solution.money:
        assert use.granted <= use.budget
    assert count_blocking(inst, funded.solution) == count_blocking(prep, funded.picks)


def competing_round(budget: int = 1_000_000, **policy: Any) -> Instance:
    """A and B both want X, which ranks A first; only A can also go to Y (which needs C2)."""
    return make(
        candidates=[
            candidate("A", cefr="C2", wishes=["X", "Y"]),
            candidate("B", cefr="C1", wishes=["X"]),
        ],
        offers=[
            offer("X", clinic_ranking=["A", "B"]),
            offer("Y", supervisors=("S2",), min_cefr="C2", clinic_ranking=["A"]),
        ],
        supervisors=[supervisor("S1"), supervisor("S2")],
        units=[unit()],
        programmes=[programme(budget=budget)],
        **policy,
    )


def test_deferred_acceptance_drops_what_money_cannot_pay() -> None:
    # Two candidates, two offers each wanted by one of them; money for one placement (204,000 SEK each).
    inst = make(
        candidates=[candidate("A", wishes=["X"]), candidate("B", wishes=["Y"])],
        offers=[offer("X", clinic_ranking=["A"]), offer("Y", supervisors=("S2",), clinic_ranking=["B"])],
        supervisors=[supervisor("S1"), supervisor("S2")],
        programmes=[programme(budget=300_000)],
    )
    row = compare(inst, time_limit_s=5).rows[0]
    assert row.method == "deferred_acceptance"
    assert (row.placements, row.dropped, row.granted) == (1, 1, 204_000)
    assert row.money == {"P1": 204_000}
    # The one left out (B) blocks with Y, which has a free slot.
    assert row.blocking_pairs == 1 and row.blocking_examples == [("B", "Y")]


# --- Comparison ----------------------------------------------------------------------------------------------------


def test_compare_shows_the_optimiser_places_more_with_blocking_pairs() -> None:
    result = compare(competing_round(), time_limit_s=5)
    da, opt, _ = result.rows
    assert [r.method for r in result.rows] == ["deferred_acceptance", "optimiser", "optimiser_no_blocking"]
    assert (da.placements, da.dropped, da.blocking_pairs) == (1, 0, 0)
    assert opt.status == "OPTIMAL" and opt.placements == 2 > da.placements
    assert opt.blocking_pairs == 1 and opt.blocking_examples == [("A", "X")]
    assert opt.granted == 2 * 204_000 and opt.money == {"P1": 408_000}
    assert result.summary[0].startswith("Deferred acceptance places 1")
    assert "The optimiser places 2" in result.summary[1]


def test_compare_forbidding_blocking_pairs() -> None:
    # Needs the lead's wiring of policy.forbid_blocking into matching.solve/cpsat (matching.model.side calls
    # no_blocking_rows); without it this row comes out as the plain optimiser, with 1 blocking pair.
    result = compare(competing_round(), time_limit_s=5)
    stable = result.rows[2]
    assert stable.method == "optimiser_no_blocking"
    assert stable.status == "OPTIMAL" and stable.blocking_pairs == 0 and stable.placements == 1
    assert "Stability costs 1 placement against the optimiser." in result.summary


def test_compare_says_when_no_stable_matching_can_be_paid() -> None:
    # Needs the lead's wiring too. The only stable matching is {A-X, B-Y} (X ranks A first, B's other wish is Y),
    # and any part of it leaves a blocking pair; money pays for one placement, so no stable matching fits.
    inst = make(
        candidates=[candidate("A", wishes=["X"]), candidate("B", wishes=["X", "Y"])],
        offers=[offer("X", clinic_ranking=["A", "B"]), offer("Y", supervisors=("S2",), clinic_ranking=["B"])],
        supervisors=[supervisor("S1"), supervisor("S2")],
        programmes=[programme(budget=300_000)],
    )
    result = compare(inst, time_limit_s=5)
    da, opt, stable = result.rows
    assert (da.placements, da.dropped) == (1, 1) and opt.placements == 1
    assert stable.status == "INFEASIBLE" and stable.blocking_pairs is None and stable.placements == 0
    assert result.summary[2] == "No matching without blocking pairs fits the supervisor seats and the money."


@pytest.mark.parametrize("seed", range(6))
def test_forbid_blocking_solves_to_the_best_stable_fundable_matching(seed: int) -> None:
    # Needs the lead's wiring: the solver's answer equals enumeration over stable matchings that can be paid.
    inst = preference_instance(50 + seed, 5, 3, forbid_blocking=True)
    prep = prepare(inst)
    fundable = [m for m in all_matchings(prep) if not blocking_pairs(prep, m) and feasible_picks(prep, m) is not None]
    solution = solve(inst)
    if not fundable:
        assert solution.status == "INFEASIBLE"
        return
    assert solution.status == "OPTIMAL"
    assert verify(inst, solution) == []
    assert count_blocking(prep, solution) == 0
    assert solution.placements == max(len(m) for m in fundable)
