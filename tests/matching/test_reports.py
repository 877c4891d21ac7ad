"""Fairness report and floor prices, round diffs, the plain objective statement and provenance."""

from __future__ import annotations

from matching.input.instance import Floor, Instance, Offer, OfferStatus, Pair, Policy
from matching.reports.changes import Change, apply_changes
from matching.reports.diff import round_diff
from matching.reports.fairness import floor_prices, group_rows, tier_objectives
from matching.reports.provenance import differences, versions
from matching.reports.statement import objective_statement
from matching.rules.ledger import Ledger
from matching.rules.prepare import Prepared
from matching.solvers.solve import solve
from tests.factories import candidate, make, offer, supervisor


def _with(instance: Instance, **policy: object) -> Instance:
    return instance.with_policy(**policy)


def _by_country() -> Instance:
    """One slot; the Iranian-trained candidate scores higher than the Syrian-trained one."""
    return make(
        candidates=[
            candidate("IR1", country_of_training="IR"),
            candidate("SY1", country_of_training="SY", specialty="x", ready_since="2024-01-01"),
        ],
    )


def test_group_rows_give_rate_and_mean_score_per_group() -> None:
    instance = _by_country()
    solution = solve(instance)
    rows = {(r.group, r.value): r for r in group_rows(instance, solution)}
    ir, sy = rows[("country", "IR")], rows[("country", "SY")]
    assert (ir.candidates, ir.matched, ir.rate, ir.mean_score) == (1, 1, 1.0, solution.assignments[0].score)
    assert (sy.matched, sy.rate, sy.mean_score) == (0, 0.0, None)
    assert rows[("profession", "physician")].rate == 0.5
    assert {r.value for r in rows.values() if r.group == "waiting_band"} == {"6_12m", "over_2y"}
    assert rows[("county", "01")].candidates == 2


def test_a_floor_that_binds_has_a_price_found_by_re_solving() -> None:
    instance = _with(_by_country(), floors=(Floor(group="country", value="SY", min_count=1),))
    solution = solve(instance)
    [price] = floor_prices(instance, solution)
    unfloored = tier_objectives(solve(_with(instance, floors=())))
    assert price.placed == 1 and price.required == 1
    assert price.lost["placements"] == 0
    assert price.lost["score"] == unfloored["score"] - tier_objectives(solution)["score"] > 0
    assert "costs" in price.statement and "score" in price.statement
    rows = {(r.group, r.value): r for r in group_rows(instance, solution)}
    assert rows[("country", "SY")].floor == 1


def test_a_floor_already_met_costs_nothing() -> None:
    instance = _with(_by_country(), floors=(Floor(group="country", value="IR", min_share=1.0),))
    [price] = floor_prices(instance, solve(instance))
    assert set(price.lost.values()) == {0}
    assert "costs nothing" in price.statement


def test_diff_says_who_lost_a_place_and_why() -> None:
    instance = make(
        candidates=[candidate("C1"), candidate("C2", specialty="x")],
        supervisors=[supervisor("S1"), supervisor("S2")],
        offers=[offer("O1", supervisors=("S1",)), offer("O2", supervisors=("S2",))],
    )
    before = solve(instance)
    assert len(before.assignments) == 2
    gone = before.assignments[0].offer_id
    offers = tuple(_withdrawn(o) if o.id == gone else o for o in instance.offers)
    keep = tuple(Pair(candidate_id=a.candidate_id, offer_id=a.offer_id) for a in before.assignments)
    after_instance = _with(instance.model_copy(update={"offers": offers}), keep=keep)
    diff = round_diff(before, after_instance, solve(after_instance))
    assert diff.kept == 1 and not diff.moved and not diff.added
    [lost] = diff.lost
    assert lost.before == gone and f"offer {gone} is withdrawn" in lost.why
    assert diff.summary == "1 kept their place, 0 moved, 0 added, 1 lost a place"


def test_objective_statement_names_priorities_weights_and_side_rules() -> None:
    plain = " ".join(objective_statement(Policy()))
    assert "place as many candidates as possible; then maximise the total match score" in plain
    assert "3 x specialty fit" in plain
    keep = (Pair(candidate_id="C1", offer_id="O1"),)
    floors = (Floor(group="profession", value="nurse", min_share=0.25),)
    rich = " ".join(objective_statement(Policy(keep=keep, floors=floors, forbid_blocking=True, waiting_priority=True)))
    assert rich.index("keep as many of the 1 earlier proposals") < rich.index("place as many")
    assert "waited longest" in rich and "25% of profession=nurse" in rich and "blocking pairs" in rich
    weighted = " ".join(objective_statement(Policy(objective="weighted", placement_value=7000)))
    assert "7,000 per placement" in weighted


def test_provenance_lists_solver_versions_and_their_differences() -> None:
    now = versions()
    assert now["ortools"].startswith("9.15") and "python" in now and "scipy" in now
    assert differences(now, now) == {}
    assert differences({**now, "ortools": "9.14.0"}, now) == {"ortools": ("9.14.0", now["ortools"])}


def _withdrawn(offer: Offer) -> Offer:
    return offer.model_copy(update={"status": OfferStatus.WITHDRAWN})


def test_diff_names_a_pin_as_the_reason_and_every_added_entry_has_a_why() -> None:
    """Re-run with a pin: the one who lost the offer is told it went to a pinned rival, and the pinned one's entry
    says it was pinned (not "had no other placement", not empty)."""
    instance = make(candidates=[candidate("C1"), candidate("C2", specialty="x")])
    before = solve(instance)
    assert [a.candidate_id for a in before.assignments] == ["C1"]
    pinned = _with(instance, pins=(Pair(candidate_id="C2", offer_id="O1"),))
    diff = round_diff(before, pinned, solve(pinned))
    [lost], [added] = diff.lost, diff.added
    assert lost.candidate_id == "C1" and "went to C2, who was pinned there" in lost.why
    assert "no other placement" not in lost.why
    assert added.candidate_id == "C2" and added.why == "pinned to O1"


def test_what_if_added_entries_say_why() -> None:
    """A second slot places the candidate who was out-competed: the entry names the new placement and the old
    reason."""
    instance = make(candidates=[candidate("C1"), candidate("C2", specialty="x")], supervisors=[supervisor(capacity=2)])
    before = solve(instance)
    more = apply_changes(instance, [Change(target="offer", id="O1", set={"slots": 2})])
    diff = round_diff(before, more, solve(more.with_policy(keep=(Pair(candidate_id="C1", offer_id="O1"),))))
    [added] = diff.added
    assert added.candidate_id == "C2" and added.why.startswith("placed at O1; before: out_competed")


def test_rule_counts_in_batches_equal_one_check_per_candidate() -> None:
    """The reasons of candidates without an eligible offer count the same rules whether their pairs are checked in
    one batch, one candidate at a time, or directly."""
    import numpy as np

    from matching.generators.generate import generate
    from matching.reports import reasons
    from matching.rules.eligibility import check_pairs
    from matching.rules.prepare import prepare

    prep = prepare(generate(80, 20, seed=5))
    without = [c for c in range(len(prep.instance.candidates)) if c not in set(prep.pairs.cand.tolist())]
    assert len(without) > 3
    together = reasons._rule_counts(prep, without)
    old_batch = reasons.CHECK_BATCH
    try:
        reasons.CHECK_BATCH = 1
        alone = reasons._rule_counts(prep, without)
    finally:
        reasons.CHECK_BATCH = old_batch
    assert together == alone
    t = prep.tables
    for ci in without[:5]:
        same = np.flatnonzero(np.array(t.offers.profession, dtype=object) == t.candidates.profession[ci])
        offers = same if len(same) else np.arange(len(prep.instance.offers))
        checks = check_pairs(prep.instance, t, np.full(len(offers), ci), offers)
        direct = {name: int((~mask).sum()) for name, mask in checks.rules.items() if (~mask).any()}
        assert together[ci] == direct


def _reason_asked_pair_by_pair(prep: Prepared, ledger: Ledger, ci: int) -> tuple[str, object]:
    """The reason of an unmatched candidate with eligible pairs, asking the ledger about each pair in turn: the
    first pair with a slot, a free supervisor and a programme that can pay (not selected), else the programmes that
    could pay a pair with a slot and a supervisor (no money), else competition for full offers."""
    inst, pairs = prep.instance, prep.pairs
    starved: set[str] = set()
    for k in [int(k) for k in (pairs.cand == ci).nonzero()[0]]:
        offer = inst.offers[int(pairs.offer[k])]
        if ledger.offer_used[offer.id] >= offer.slots:
            continue
        start = int(prep.tables.offers.start_month[pairs.offer[k]])
        if ledger.free_supervisor(offer.id, start, int(pairs.months[k])) is None:
            continue
        funders = [int(r) for r in (pairs.fund_pair == k).nonzero()[0]]
        progs = [inst.programmes[int(pairs.fund_programme[r])].id for r in funders]
        if any(ledger.money_fits(p, offer.id, int(pairs.fund_grant[r])) for p, r in zip(progs, funders, strict=True)):
            return "not_selected", offer.id
        starved.update(progs)
    return ("no_money", sorted(starved)) if starved else ("competition", None)


def test_the_unmatched_reasons_agree_with_the_ledger_asked_pair_by_pair() -> None:
    """The reasons of the unmatched are worked out for all candidates at once (a loop over their pairs took most of
    a minute at stress scale); each one agrees with the ledger asked about the candidate's pairs one by one, over
    rounds cut short at several points so that every kind of reason occurs."""
    import numpy as np

    from matching.generators.generate import generate
    from matching.model.spec import objective_tiers
    from matching.reports.reasons import explain_unmatched
    from matching.rules.prepare import prepare
    from matching.solvers.greedy import place_in_order
    from matching.solvers.objective import combined_values
    from matching.solvers.solve import settle

    seen: set[str] = set()
    for seed in (1, 2, 3):
        prep = prepare(generate(150, 40, seed=seed, programmes=3))
        values = combined_values(prep, objective_tiers(prep))
        order = np.lexsort((np.arange(len(values)), -values))
        for share in (0.03, 0.3, 1.0):
            picks = place_in_order(prep, [int(k) for k in order[: max(1, int(share * len(order)))]])
            assignments, ledger = settle(prep, picks)
            index = {c.id: i for i, c in enumerate(prep.instance.candidates)}
            for u in explain_unmatched(prep, assignments, ledger):
                seen.add(u.reason)
                if u.reason == "no_eligible_offer":
                    assert not (prep.pairs.cand == index[u.candidate_id]).any()
                    continue
                kind, what = _reason_asked_pair_by_pair(prep, ledger, index[u.candidate_id])
                if kind == "not_selected":
                    assert u.reason == "not_selected" and u.detail.startswith(f"offer {what} still has room")
                elif kind == "no_money":
                    assert u.reason == "no_money" and u.programmes == what
                else:
                    assert u.reason in ("out_competed", "no_capacity")
    assert seen >= {"not_selected", "no_money", "out_competed", "no_eligible_offer"}
