"""Shadow prices against re-solved LPs: a price lies between the gain of a little more and the loss of a little
less (the LP value is concave in every right-hand side), equals the difference quotient where the LP is linear,
and has the sign that makes more money or more seats worth something."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from matching.generators.generate import generate
from matching.input.instance import Floor, Instance
from matching.input.validate import load_instance
from matching.model.spec import (
    BUDGET,
    CANDIDATE,
    EARMARK,
    FLOOR,
    FUNDING_CHOICE,
    GENERAL,
    NO_BLOCKING,
    OFFER,
    SUPERVISOR,
    SUPERVISOR_CHOICE,
    UNIT_CAP,
    linear_model,
    objective_tiers,
)
from matching.reports.prices import (
    Prices,
    model_rows,
    plain_prices,
    round_prices,
    shadow_prices,
)
from matching.rules.prepare import Prepared, prepare
from matching.solvers.baselines import lp_bound
from matching.solvers.relaxation import relax
from matching.solvers.solve import solve
from tests.factories import candidate, make, offer, programme, supervisor, unit

FIXTURES = sorted(Path("fixtures/small").glob("*.json"))
# Small generated rounds whose budgets bind (generate's default); checked below not to change eligibility when a
# budget moves by a krona or a hundred.
RANDOM = [(40, 20, 1), (40, 20, 3), (60, 30, 0), (60, 30, 1)]
DELTAS = (1, 100)


def fixture(name: str) -> Instance:
    return load_instance(Path("fixtures/small") / name)


def generated(c: int, o: int, seed: int) -> Instance:
    return generate(c, o, seed=seed)


def lp(prep: Prepared) -> float:
    """The placements LP, solved independently of matching.reports.prices (scipy milp without integrality)."""
    return lp_bound(prep, np.ones(len(prep.pairs), dtype=np.int64))


def placements(prep: Prepared) -> Prices:
    prices = shadow_prices(prep)
    assert prices is not None
    return prices


def with_programme(inst: Instance, pid: str, **update: Any) -> Instance:
    progs = [p.model_copy(update=update) if p.id == pid else p for p in inst.programmes]
    return inst.model_copy(update={"programmes": progs})


def with_earmark(inst: Instance, pid: str, eid: str, amount_change: int, budget_change: int) -> Instance:
    prog = next(p for p in inst.programmes if p.id == pid)
    marks = tuple(
        e.model_copy(update={"amount": e.amount + amount_change}) if e.id == eid else e for e in prog.earmarks
    )
    return with_programme(inst, pid, earmarks=marks, budget=prog.budget + budget_change)


def with_policy(inst: Instance, **update: Any) -> Instance:
    return inst.with_policy(**update)


def with_side_rows() -> Instance:
    """A generated round with a floor and no blocking pairs allowed: the model has a row for each."""
    inst = generated(40, 20, 1)
    return with_policy(inst, floors=(Floor(group="profession", value="nurse", min_count=1),), forbid_blocking=True)


def with_capacity(inst: Instance, sid: str, capacity: int) -> Instance:
    sups = [s.model_copy(update={"capacity": capacity}) if s.id == sid else s for s in inst.supervisors]
    return inst.model_copy(update={"supervisors": sups})


def assert_same_eligibility(a: Prepared, b: Prepared, what: str) -> None:
    """A budget or cap change must not change which pairs and funding rows exist (else the LPs differ in kind)."""
    for name in ("cand", "offer", "fund_pair", "fund_programme", "fund_grant", "fund_earmark"):
        assert np.array_equal(getattr(a.pairs, name), getattr(b.pairs, name)), f"{what} changes eligibility ({name})"


def assert_sandwich(base: float, up: float, down: float, d: float, price: float, what: str) -> None:
    """(LP(b+d) - LP(b)) / d <= price <= (LP(b) - LP(b-d)) / d, up to the LP solver's accuracy."""
    tol = 1e-8 / d + 1e-10
    gain, loss = (up - base) / d, (base - down) / d
    assert gain <= price + tol, f"{what}: one more gains {gain}, more than the price {price}"
    assert price <= loss + tol, f"{what}: one less loses {loss}, less than the price {price}"


def budget_changes(inst: Instance) -> list[tuple[str, int, Prepared, Prepared]]:
    """Per programme and delta, the rounds with that programme's budget raised and lowered."""
    out = []
    for prog in inst.programmes:
        for d in DELTAS:
            if prog.budget - d < sum(e.amount for e in prog.earmarks):
                continue  # no valid instance below the earmarks; only the fixtures without slack get here
            up = prepare(with_programme(inst, prog.id, budget=prog.budget + d))
            down = prepare(with_programme(inst, prog.id, budget=prog.budget - d))
            out.append((prog.id, d, up, down))
    return out


# --- the row map -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inst",
    [*(fixture(p.name) for p in FIXTURES), *(generated(*r) for r in RANDOM), with_side_rows()],
    ids=lambda i: i.name,
)
def test_row_labels_name_the_columns_their_rows_hold(inst: Instance) -> None:
    prep = prepare(inst)
    model = linear_model(prep)
    rows = model_rows(model)
    assert len(rows.kind) == len(model.rows.lb)
    assert np.array_equal(rows.lb, model.rows.lb) and np.array_equal(rows.ub, model.rows.ub)
    # The rows also hold the variables their names say.
    matrix = model.rows.constraint().A.tocsr()
    pairs, sups = prep.pairs, prep.supervisors
    fund_unit = prep.tables.offers.unit[pairs.offer[pairs.fund_pair]]
    counts = {str(kind): int((rows.kind == kind).sum()) for kind in set(rows.kind.tolist())}
    assert counts.get(CANDIDATE, 0) == len(inst.candidates) and counts.get(OFFER, 0) == len(inst.offers)
    assert counts.get(SUPERVISOR_CHOICE, 0) == counts.get(FUNDING_CHOICE, 0) == len(pairs)
    assert counts.get(FLOOR, 0) == len(inst.policy.floors)
    assert counts.get(NO_BLOCKING, 0) == 0 or inst.policy.forbid_blocking
    for i, kind in enumerate(rows.kind):
        cols = matrix.indices[matrix.indptr[i] : matrix.indptr[i + 1]]
        owner, detail = int(rows.owner[i]), int(rows.detail[i])
        if kind == CANDIDATE:
            assert set(cols) == set(np.flatnonzero(pairs.cand == owner))
        elif kind == OFFER:
            assert set(cols) == set(np.flatnonzero(pairs.offer == owner))
        elif kind == SUPERVISOR:
            assert len(cols) and (sups.choice[cols - model.sup_at] == owner).all()
            assert (prep.tables.offers.start_month[pairs.offer[sups.pair[cols - model.sup_at]]] <= detail).all()
        elif kind in (BUDGET, UNIT_CAP):
            fund = cols - model.fund_at
            assert (pairs.fund_programme[fund] == owner).all()
            assert kind == BUDGET or (fund_unit[fund] == detail).all()
        elif kind == FLOOR:
            assert set(cols) <= set(range(len(pairs)))
        elif kind in (GENERAL, EARMARK):
            fund = cols[(cols >= model.fund_at) & (cols < model.fund_at + len(pairs.fund_pair))] - model.fund_at
            assert (pairs.fund_programme[fund] == owner).all()
            assert (pairs.fund_earmark[fund] == (-1 if kind == GENERAL else detail)).all()


# --- budgets -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inst", [*(fixture(p.name) for p in FIXTURES), *(generated(*r) for r in RANDOM)], ids=lambda i: i.name
)
def test_budget_price_lies_between_gain_and_loss(inst: Instance) -> None:
    prep = prepare(inst)
    prices, base = placements(prep), lp(prep)
    assert prices.lp_value == pytest.approx(base, abs=1e-7)
    by_id = {p.programme_id: p for p in prices.programmes}
    for pid, d, up, down in budget_changes(inst):
        assert_same_eligibility(prep, up, f"{pid} budget +{d}")
        assert_same_eligibility(prep, down, f"{pid} budget -{d}")
        assert_sandwich(base, lp(up), lp(down), d, by_id[pid].per_krona, f"{inst.name} {pid} budget ±{d}")


def test_random_rounds_have_binding_budgets() -> None:
    """The sandwich above is not vacuous: the generated rounds price their money."""
    positive = 0
    for r in RANDOM:
        prices = placements(prepare(generated(*r)))
        assert all(p.per_krona >= 0 for p in prices.programmes)
        positive += sum(p.binding for p in prices.programmes)
    assert positive >= len(RANDOM)


def test_binding_budget_price_is_the_one_krona_difference() -> None:
    """300,000 SEK pays for 1.39 placements of 216,000 SEK: each krona more places 1/216,000 more (LP)."""
    inst = fixture("budget_funds_one.json")
    prep = prepare(inst)
    price = placements(prep).programmes[0]
    assert price.binding and price.per_krona > 0  # a wrong sign would make more money worth less
    assert price.per_krona == pytest.approx(1 / 216_000, rel=1e-9)
    assert price.per_100k_sek == pytest.approx(100_000 / 216_000, rel=1e-9)
    assert price.lp_spent == pytest.approx(300_000)
    up = prepare(with_programme(inst, "P1", budget=300_001))
    assert_same_eligibility(prep, up, "P1 budget +1")
    assert abs((lp(up) - lp(prep)) - price.per_krona) <= 1e-9


def test_slack_budget_price_is_zero() -> None:
    inst = fixture("one_slot_two_candidates.json")
    prep = prepare(inst)
    price = placements(prep).programmes[0]
    assert price.per_krona == 0 and price.per_100k_sek == 0 and not price.binding
    down = prepare(with_programme(inst, "P1", budget=inst.programmes[0].budget - 100))
    assert lp(down) == pytest.approx(lp(prep), abs=1e-9)


# --- earmarks and unit caps ----------------------------------------------------------------------------------------


def test_earmark_prices_on_the_nurses_fixture() -> None:
    """Physicians' general money binds; the nurse's earmark has room: more earmarked money is worth nothing, and
    moving a krona out of general money into the earmark costs what a general krona is worth."""
    prices = placements(prepare(fixture("earmark_nurses.json")))
    (mark,) = prices.earmarks
    assert mark.per_krona == 0
    assert mark.moved_per_krona == pytest.approx(-1 / 216_000, rel=1e-9)
    assert prices.programmes[0].per_krona == pytest.approx(1 / 216_000, rel=1e-9)


def scarce_earmark() -> Instance:
    """The nurses' fixture with only 50,000 SEK earmarked: the 93,000 SEK nurse placement overflows into general
    money, so the earmark binds."""
    inst = fixture("earmark_nurses.json")
    return with_earmark(inst, "P-EM", "EM-NURSES", 50_000 - inst.programmes[0].earmarks[0].amount, 0)


def test_scarce_earmark_prices() -> None:
    """A krona added and earmarked frees a krona of general money for physicians; a krona moved from general money
    into the earmark frees as much as it takes."""
    prices = placements(prepare(scarce_earmark()))
    (mark,) = prices.earmarks
    assert mark.per_krona == pytest.approx(1 / 216_000, rel=1e-9)
    assert mark.moved_per_krona == 0


@pytest.mark.parametrize(
    "inst",
    [fixture("earmark_nurses.json"), scarce_earmark(), *(generated(*r) for r in RANDOM)],
    ids=lambda i: i.name,
)
def test_earmark_prices_lie_between_gain_and_loss(inst: Instance) -> None:
    prep = prepare(inst)
    prices, base = placements(prep), lp(prep)
    checked = 0
    for mark in prices.earmarks:
        for d in DELTAS:
            # Added: the budget and the earmark grow together. Moved: the earmark grows out of general money.
            for field, budget_too in (("per_krona", True), ("moved_per_krona", False)):
                up = prepare(with_earmark(inst, mark.programme_id, mark.earmark_id, d, d if budget_too else 0))
                down = prepare(with_earmark(inst, mark.programme_id, mark.earmark_id, -d, -d if budget_too else 0))
                assert_same_eligibility(prep, up, f"{mark.earmark_id} +{d}")
                assert_same_eligibility(prep, down, f"{mark.earmark_id} -{d}")
                what = f"{inst.name} {mark.earmark_id} {field} ±{d}"
                assert_sandwich(base, lp(up), lp(down), d, getattr(mark, field), what)
                checked += 1
    assert checked


def test_unit_cap_price_is_the_difference_quotient() -> None:
    """Two 36,000 SEK grants at a small unit capped at 60,000: each krona of cap places 1/36,000 more (LP)."""
    inst = fixture("unit_cap_size_class.json")
    prep = prepare(inst)
    prices, base = placements(prep), lp(prep)
    (cap,) = prices.unit_caps
    assert (cap.programme_id, cap.unit_id, cap.cap) == ("P-CAP", "U-SMALL", 60_000)
    assert cap.per_krona == pytest.approx(1 / 36_000, rel=1e-9)
    caps = inst.programmes[0].unit_caps
    assert caps.small is not None
    for d in DELTAS:
        up = prepare(with_programme(inst, "P-CAP", unit_caps=caps.model_copy(update={"small": caps.small + d})))
        down = prepare(with_programme(inst, "P-CAP", unit_caps=caps.model_copy(update={"small": caps.small - d})))
        assert_same_eligibility(prep, up, "small cap +d")
        assert_same_eligibility(prep, down, "small cap -d")
        # U-SMALL is the only small unit, so the size-class cap and the unit's cap move together.
        assert_sandwich(base, lp(up), lp(down), d, cap.per_krona, f"small cap ±{d}")
        assert (lp(up) - base) / d == pytest.approx(cap.per_krona, rel=1e-6)


# --- supervisor seats and slots ------------------------------------------------------------------------------------


@pytest.mark.parametrize("r", RANDOM[:3])
def test_seat_price_lies_between_gain_and_loss(r: tuple[int, int, int]) -> None:
    inst = generated(*r)
    prep = prepare(inst)
    prices, base = placements(prep), lp(prep)
    priced = [s for s in prices.supervisors if s.per_seat > 0]
    # Every priced seat, and a few that are not.
    for seat in priced + [s for s in prices.supervisors if s.per_seat == 0][:3]:
        assert seat.capacity >= 1 and seat.per_seat >= 0
        up = lp(prepare(with_capacity(inst, seat.supervisor_id, seat.capacity + 1)))
        down = lp(prepare(with_capacity(inst, seat.supervisor_id, seat.capacity - 1)))
        assert_sandwich(base, up, down, 1, seat.per_seat, f"{inst.name} {seat.supervisor_id} capacity ±1")
    assert priced
    best = {u.unit_id: u.per_seat for u in prices.units}
    for s in prices.supervisors:
        assert s.per_seat <= best[s.unit_id]


def bottleneck() -> Instance:
    """One supervisor with one seat for two overlapping one-slot offers, two candidates and money for both."""
    return make(
        candidates=[candidate("C1"), candidate("C2")],
        units=[unit("U1")],
        supervisors=[supervisor("S1", "U1", capacity=1, available_until="2028-06-30")],
        offers=[offer("O1", "U1", ("S1",)), offer("O2", "U1", ("S1",), start="2027-04-01")],
        programmes=[programme("P1", budget=2_000_000, spend_by="2028-06-30")],
    )


def test_bottleneck_supervisor_seat_is_worth_one_placement() -> None:
    inst = bottleneck()
    prep = prepare(inst)
    prices = placements(prep)
    (seat,) = prices.supervisors
    assert seat.per_seat == 1.0
    assert [(u.unit_id, u.supervisor_id, u.per_seat) for u in prices.units] == [("U1", "S1", 1.0)]
    assert all(o.per_slot == 0 for o in prices.offers) and all(p.per_krona == 0 for p in prices.programmes)
    more, fewer = with_capacity(inst, "S1", 2), with_capacity(inst, "S1", 0)
    # The LP is linear here: each seat places exactly one more.
    assert lp(prepare(more)) - lp(prep) == pytest.approx(1.0) == lp(prep) - lp(prepare(fewer))
    assert solve(more).placements == solve(inst).placements + 1 == 2
    lines = plain_prices([prices], prep=prep)
    assert lines == ["Unit U1: one more supervisor seat (S1) would place about 1 more candidate (LP estimate)"]


def test_slot_price_where_the_slot_binds() -> None:
    """Two candidates, one one-slot offer, a supervisor with two seats: a slot is worth one placement."""
    inst = make(
        candidates=[candidate("C1"), candidate("C2")],
        supervisors=[supervisor("S1", capacity=2)],
        offers=[offer("O1")],
        programmes=[programme("P1", budget=2_000_000)],
    )
    prep = prepare(inst)
    prices = placements(prep)
    assert [(o.offer_id, o.per_slot) for o in prices.offers] == [("O1", 1.0)]
    up = prepare(inst.model_copy(update={"offers": [inst.offers[0].model_copy(update={"slots": 2})]}))
    assert lp(up) - lp(prep) == pytest.approx(1.0)


def test_degenerate_seat_and_slot_are_checked_before_they_are_told() -> None:
    """A full one-slot offer whose only supervisor is also full: the dual prices one of them, but neither alone
    places anyone, and the re-solved sentences say nothing about it."""
    prep = prepare(fixture("one_slot_two_candidates.json"))
    prices = placements(prep)
    assert sum(s.per_seat for s in prices.supervisors) + sum(o.per_slot for o in prices.offers) == 1.0
    assert plain_prices([prices], prep=prep) == []
    assert len(plain_prices([prices])) == 1 and "could place up to about 1 more candidate" in plain_prices([prices])[0]


# --- tiers, plain language and edge cases --------------------------------------------------------------------------


def test_round_prices_follow_the_objective_tiers() -> None:
    inst = generated(60, 30, 0)
    prep = prepare(inst)
    tiers = round_prices(prep)
    assert [p.objective for p in tiers] == [name for name, _ in objective_tiers(prep)] == ["placements", "score"]
    assert [p.held for p in tiers] == [[], ["placements"]]
    assert tiers[0].lp_value == pytest.approx(lp(prep), abs=1e-7)
    held = ((np.ones(len(prep.pairs), dtype=np.int64), int(np.floor(tiers[0].lp_value + 1e-6))),)
    relaxed = relax(prep, prep.scores.total, at_least=held)
    assert relaxed is not None and tiers[1].lp_value == pytest.approx(relaxed.bound, rel=1e-9)
    waiting = with_policy(inst, waiting_priority=True)
    assert [p.objective for p in round_prices(prepare(waiting))] == ["placements", "waiting", "score"]
    assert [p.objective for p in round_prices(prepare(with_policy(inst, objective="weighted")))] == ["weighted"]


def test_round_prices_with_side_rows() -> None:
    """Floors are part of the LP; forbidding blocking pairs makes this round infeasible (as solve finds), and then
    there are no prices."""
    inst = with_side_rows()
    floored = prepare(with_policy(inst, forbid_blocking=False))
    tiers = round_prices(floored)
    assert [p.objective for p in tiers] == ["placements", "score"]
    assert tiers[0].lp_value == pytest.approx(lp(floored), abs=1e-7)
    assert round_prices(prepare(inst)) == []


def test_plain_prices_for_a_binding_budget() -> None:
    prep = prepare(fixture("budget_funds_one.json"))
    tiers = round_prices(prep)
    told = plain_prices(tiers)
    checked = plain_prices(tiers, prep=prep)
    assert told[0] == "Programme P1: 100,000 SEK more could place up to about 0.5 more candidates (LP estimate)"
    assert checked[0] == "Programme P1: 100,000 SEK more would place about 0.5 more candidates (LP estimate)"
    assert checked[1].startswith("Programme P1: 100,000 SEK more would raise the total match score by about ")
    assert checked[1].endswith("(placements kept; LP estimate)")
    assert plain_prices(tiers, top=0) == []


def test_infeasible_lp_gives_none() -> None:
    """Two pins at one offer, with money for only one of them."""
    inst = fixture("budget_funds_one.json")
    pins = [{"candidate_id": "CAND-A", "offer_id": "O1"}, {"candidate_id": "CAND-B", "offer_id": "O1"}]
    pinned = inst.model_copy(update={"policy": inst.policy.model_validate({**inst.policy.model_dump(), "pins": pins})})
    prep = prepare(pinned)
    assert shadow_prices(prep) is None
    assert round_prices(prep) == []


def test_round_without_pairs() -> None:
    inst = make(candidates=[candidate("C1", profession="nurse")])
    prep = prepare(inst)
    assert not len(prep.pairs)
    prices = placements(prep)
    assert prices.lp_value == 0 and [p.per_krona for p in prices.programmes] == [0]
    assert Prices.model_validate_json(prices.model_dump_json()) == prices
