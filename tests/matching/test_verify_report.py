"""verify checks a solution's own figures, and states the rules with its own code (rulebook): a bug in the
solver's rules cannot pass its own check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from matching.generators.generate import generate
from matching.reports.verify import verify
from matching.rules import eligibility, rulebook
from matching.rules.eligibility import check_pairs
from matching.rules.tables import build_tables
from matching.solvers.solve import solve
from tests.factories import candidate, make, offer, programme


def report_rules(**update: Any) -> set[str]:
    instance = make(candidates=[candidate("C1"), candidate("C2")], programmes=[programme(cofunding_share=0.5)])
    solution = solve(instance)
    assert verify(instance, solution) == []
    return {v.rule for v in verify(instance, solution.model_copy(update=update))}


def test_placement_count_and_total_score_must_match_the_matches() -> None:
    assert report_rules(placements=2) == {"report_placements"}
    assert report_rules(score=1) == {"report_score"}


def test_each_score_must_be_its_weighted_breakdown() -> None:
    instance = make()
    solution = solve(instance)
    [a] = solution.assignments
    wrong = a.model_copy(update={"score": a.score + 1})
    tampered = solution.model_copy(update={"assignments": [wrong], "score": a.score + 1})
    assert {v.rule for v in verify(instance, tampered)} == {"report_score"}
    odd = a.model_copy(update={"breakdown": {**a.breakdown, "language": 1001}})
    assert {v.rule for v in verify(instance, solution.model_copy(update={"assignments": [odd]}))} == {
        "report_breakdown"
    }


def test_every_unplaced_candidate_needs_a_reason() -> None:
    instance = make(candidates=[candidate("C1"), candidate("C2")])
    solution = solve(instance)
    assert len(solution.unmatched) == 1
    assert {v.rule for v in verify(instance, solution.model_copy(update={"unmatched": []}))} == {"report_unmatched"}
    twice = solution.model_copy(update={"unmatched": solution.unmatched * 2})
    assert {v.rule for v in verify(instance, twice)} == {"report_unmatched"}


@pytest.mark.parametrize("field", ["granted", "matches", "committed", "left", "budget"])
def test_money_per_programme_must_match_the_matches(field: str) -> None:
    instance = make()
    solution = solve(instance)
    [use] = solution.money
    wrong = use.model_copy(update={field: (getattr(use, field) or 0) + 1})
    assert {v.rule for v in verify(instance, solution.model_copy(update={"money": [wrong]}))} == {"report_money"}
    assert {v.rule for v in verify(instance, solution.model_copy(update={"money": []}))} == {"report_money"}


def test_a_bug_in_the_solvers_rule_is_caught_by_verifys_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # The candidate has C1, the only offer asks for C2: a solver whose language rule is broken places them anyway.
    instance = make(offers=[offer(min_cefr="C2")])
    assert solve(instance).placements == 0
    rules = eligibility._pair_rules

    def broken(*args: Any) -> dict[str, np.ndarray]:
        found = rules(*args)
        found["language"] = np.ones_like(found["language"])
        return found

    monkeypatch.setattr(eligibility, "_pair_rules", broken)
    placed = solve(instance)
    assert placed.placements == 1
    assert {v.rule for v in verify(instance, placed, report=False)} == {"language"}


@pytest.mark.parametrize("seed", range(25))
def test_the_rulebook_and_the_vectorised_rules_agree_on_every_pair(seed: int) -> None:
    instance = generate(30, 15, seed=seed, binding_budgets=seed % 2 == 0)
    tables = build_tables(instance)
    n_c, n_o = len(instance.candidates), len(instance.offers)
    cand, off = np.repeat(np.arange(n_c), n_o), np.tile(np.arange(n_o), n_c)
    checks = check_pairs(instance, tables, cand, off)
    units = {u.id: u for u in instance.units}
    skip = {"supervisor", "funding"}  # verify checks these on the match itself (its supervisor, its programme)
    money = {"programme_budget", "programme_unit_cap", "programme_candidate_cap"}  # over all matches in verify
    for k in range(len(cand)):
        c, o = instance.candidates[int(cand[k])], instance.offers[int(off[k])]
        unit = units[o.unit_id]
        months = rulebook.months_of(c, o)
        assert months == int(checks.costs.months[k])
        assert set(rulebook.pair_failures(instance, c, o, unit, months)) == set(checks.failed(k)) - skip, (c.id, o.id)
        costs = rulebook.costs_of(c, o, months)
        assert sum(costs.values()) == int(checks.costs.total[k])
        for g, prog in enumerate(instance.programmes):
            grant = rulebook.grant_of(prog, costs)
            assert grant == int(checks.programmes.grant[k, g])
            vector = {rule for rule, mask in checks.programmes.rules.items() if not mask[k, g]} - money
            assert set(rulebook.programme_failures(instance, c, o, unit, prog, months, grant)) == vector
