"""Every hard rule, flipped on its own: the default eligible pair is then excluded by exactly that rule.

Each case starts from `tests.factories` (candidate C1, offer O1 at unit U1 with supervisor S1, programme P1: a
six-month physician PTJ from 2027-03-01 costing 6 x (30,000 + 4,000) = 204,000 SEK, paid in full by P1) and
changes one fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from matching.input.instance import Instance
from matching.rules.eligibility import PAIR_RULES, PROGRAMME_RULES, OfferVerdict, eligible_pairs, explain_candidate
from tests.factories import candidate, make, offer, programme, supervisor

GRANT = 6 * (30_000 + 4_000)  # what P1 pays for the default pair


@dataclass(frozen=True)
class Flip:
    """One change to the default instance that breaks `rule` and nothing else."""

    rule: str
    variant: str = ""
    candidate: dict[str, Any] = field(default_factory=dict)
    offer: dict[str, Any] = field(default_factory=dict)
    supervisor: dict[str, Any] = field(default_factory=dict)
    programme: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    no_programmes: bool = False

    @property
    def id(self) -> str:
        return f"{self.rule}[{self.variant}]" if self.variant else self.rule

    def instance(self) -> Instance:
        return make(
            candidates=[candidate(**self.candidate)],
            offers=[offer(**self.offer)],
            supervisors=[supervisor(**self.supervisor)],
            programmes=[] if self.no_programmes else [programme(**self.programme)],
            **self.policy,
        )


PAIR_FLIPS = [
    Flip("offer_status", "withdrawn", offer={"status": "withdrawn"}),
    Flip("offer_status", "draft", offer={"status": "draft"}),
    Flip("offer_status", "filled", offer={"status": "filled"}),
    Flip("profession", candidate={"profession": "nurse"}),
    Flip("forbidden", policy={"forbids": [{"candidate_id": "C1", "offer_id": "O1"}]}),
    Flip("ladder_stage", "no_decision", candidate={"ladder": {"ptj_decision": None}}),
    Flip("ladder_stage", "decision_after_start", candidate={"ladder": {"ptj_decision": "2027-03-02"}}),
    Flip("practical_test", candidate={"ladder": {"practical_test": "2027-03-02"}}),
    Flip("language", candidate={"cefr": "B2"}),
    Flip("language_proof", candidate={"language_proof": "sfi_d"}),
    Flip("special_authorisation", candidate={"ladder": {"special_authorisation": "none"}}),
    Flip("availability", "from_after_start", candidate={"available_from": "2027-03-02"}),
    Flip("availability", "until_before_end", candidate={"available_until": "2027-08-30"}),
    # Half time stretches the six PTJ months to twelve; spend_by is moved so that funding still holds.
    Flip("period_length", candidate={"part_time": 0.5}, programme={"spend_by": "2028-12-31"}),
    Flip(
        "commute",
        candidate={"residence_county": "12", "residence_municipality": "1280", "max_commute_km": 100},
    ),
    Flip("supervisor", "unlicensed", supervisor={"licensed": False}),
    Flip("supervisor", "other_profession", supervisor={"profession": "nurse"}),
    Flip("supervisor", "leaves_before_end", supervisor={"available_until": "2027-07-31"}),
    Flip("supervisor", "arrives_after_start", supervisor={"available_from": "2027-04-01"}),
    Flip("supervisor", "no_capacity", supervisor={"capacity": 0}),
    Flip("funding", "no_programme", no_programmes=True),
]

PROGRAMME_FLIPS = [
    Flip("programme_open", "closed", programme={"status": "closed", "cutoff": "2027-01-10"}),
    Flip(
        "programme_open",
        "round_before_window",
        programme={"window_start": "2027-02-01", "window_end": "2027-12-31"},
    ),
    Flip("programme_profession", programme={"professions": ["nurse", "dentist"]}),
    Flip("programme_offer_kind", programme={"offer_kinds": ["language_placement"]}),
    Flip("programme_unit", "county", programme={"unit_counties": ["12", "14"]}),
    Flip("programme_unit", "ownership", programme={"unit_ownerships": ["private_public_funding"]}),
    Flip("programme_residence", "county", programme={"residence_counties": ["12"]}),
    Flip("programme_residence", "status", programme={"residence_statuses": ["asylum_seeker", "temporary_protection"]}),
    # The placement runs through August 2027; a spend-by date of 30 August leaves August unpaid.
    Flip("programme_spend_by", programme={"spend_by": "2027-08-30"}),
    Flip("programme_covers", programme={"covers": ["course_fee"]}),
    Flip("programme_candidate_cap", programme={"candidate_cap": GRANT - 1}),
    Flip("programme_unit_cap", programme={"unit_caps": {"small": GRANT, "medium": GRANT - 1, "large": GRANT}}),
    Flip("programme_budget", programme={"budget": GRANT - 1}),
]


def default_with(**change: dict[str, Any]) -> Instance:
    """The default instance with some facts changed (and no rule meant to break)."""
    return Flip("", **change).instance()  # type: ignore[arg-type]


def verdict(instance: Instance, candidate_id: str = "C1", offer_id: str = "O1") -> OfferVerdict:
    return next(v for v in explain_candidate(instance, candidate_id) if v.offer_id == offer_id)


def eligible_ids(instance: Instance) -> set[tuple[str, str]]:
    pairs = eligible_pairs(instance)
    return {
        (instance.candidates[c].id, instance.offers[o].id)
        for c, o in zip(pairs.cand.tolist(), pairs.offer.tolist(), strict=True)
    }


def test_default_pair_is_eligible() -> None:
    instance = make()
    assert verdict(instance).failed_rules == []
    assert verdict(instance).programmes == {"P1": []}
    assert eligible_ids(instance) == {("C1", "O1")}


def test_every_rule_has_a_flip() -> None:
    assert {f.rule for f in PAIR_FLIPS + PROGRAMME_FLIPS} == set(PAIR_RULES) | set(PROGRAMME_RULES)


@pytest.mark.parametrize("flip", PAIR_FLIPS, ids=[f.id for f in PAIR_FLIPS])
def test_pair_rule_alone_excludes_the_pair(flip: Flip) -> None:
    instance = flip.instance()
    assert verdict(instance).failed_rules == [flip.rule]
    assert ("C1", "O1") not in eligible_ids(instance)


@pytest.mark.parametrize("flip", PROGRAMME_FLIPS, ids=[f.id for f in PROGRAMME_FLIPS])
def test_programme_rule_alone_excludes_the_pair(flip: Flip) -> None:
    instance = flip.instance()
    result = verdict(instance)
    assert result.failed_rules == ["funding"]
    assert result.programmes == {"P1": [flip.rule]}
    assert ("C1", "O1") not in eligible_ids(instance)


# --- boundaries: the day a rule starts to hold ------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"candidate": {"ladder": {"ptj_decision": "2027-03-01"}}}, id="ptj_decision_on_start"),
        pytest.param({"candidate": {"ladder": {"practical_test": "2027-03-01"}}}, id="practical_test_on_start"),
        pytest.param({"candidate": {"available_from": "2027-03-01"}}, id="available_from_start"),
        pytest.param({"candidate": {"available_until": "2027-08-31"}}, id="available_until_last_day"),
        pytest.param({"candidate": {"cefr": "C2"}}, id="language_above_minimum"),
        pytest.param({"candidate": {"ladder": {"special_authorisation": "applied"}}}, id="authorisation_applied"),
        pytest.param({"supervisor": {"available_until": "2027-08-31"}}, id="supervisor_until_last_day"),
        pytest.param({"programme": {"spend_by": "2027-08-31"}}, id="spend_by_last_day"),
        pytest.param({"programme": {"candidate_cap": GRANT}}, id="candidate_cap_equal_to_grant"),
        pytest.param({"programme": {"unit_caps": {"medium": GRANT}}}, id="unit_cap_equal_to_grant"),
        pytest.param({"programme": {"budget": GRANT}}, id="budget_equal_to_grant"),
        pytest.param({"programme": {"covers": ["salary"]}}, id="covers_salary_only"),
        pytest.param({"programme": {"covers": ["course_fee"]}, "offer": {"course_fee": 5000}}, id="covers_course_fee"),
    ],
)
def test_rule_holds_at_its_boundary(change: dict[str, dict[str, Any]]) -> None:
    instance = default_with(**change)
    assert verdict(instance).failed_rules == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"candidate": {"language_proof": "sfi_d"}, "offer": {"kind": "provtjanstgoring"}}, id="not_ptj"),
        pytest.param(
            {
                "candidate": {"language_proof": "sfi_d", "profession": "nurse"},
                "offer": {"profession": "nurse", "min_cefr": "B1"},
                "supervisor": {"profession": "nurse"},
            },
            id="nurse_ptj",
        ),
    ],
)
def test_language_proof_is_required_only_for_a_physician_ptj(change: dict[str, dict[str, Any]]) -> None:
    assert verdict(default_with(**change)).failed_rules == []


def test_special_authorisation_not_needed_outside_exclusive_right_professions() -> None:
    instance = default_with(
        candidate={"profession": "nurse", "ladder": {"special_authorisation": "none"}},
        offer={"profession": "nurse"},
        supervisor={"profession": "nurse"},
    )
    assert verdict(instance).failed_rules == []


def test_part_time_fits_a_long_enough_offer() -> None:
    instance = default_with(candidate={"part_time": 0.5}, offer={"months": 12}, programme={"spend_by": "2028-12-31"})
    assert verdict(instance).failed_rules == []


def test_commute_within_limit_from_a_neighbouring_municipality() -> None:
    # Solna (0184) lies a few km from Stockholm's seat.
    instance = default_with(candidate={"residence_municipality": "0184", "max_commute_km": 20})
    assert verdict(instance).failed_rules == []


@pytest.mark.parametrize(("limit", "eligible"), [(5.6, True), (5.5, False)])
def test_a_commute_exactly_at_the_limit_is_within_it(limit: float, eligible: bool) -> None:
    # Solna's seat is 5.6 km from Stockholm's (to 0.1 km, as the commute rule reads it).
    instance = default_with(candidate={"residence_municipality": "0184", "max_commute_km": limit})
    assert eligible_ids(instance) == ({("C1", "O1")} if eligible else set())
    assert verdict(instance).failed_rules == ([] if eligible else ["commute"])


# --- paused programmes: applications before the cut-off are still handled -----------------------------------------

PAUSED = {"status": "paused", "cutoff": "2027-01-10"}


@pytest.mark.parametrize("applied_on", ["2027-01-01", "2027-01-09"])
def test_paused_programme_pays_applications_before_cutoff(applied_on: str) -> None:
    instance = default_with(candidate={"applied_on": applied_on}, programme=PAUSED)
    assert verdict(instance).failed_rules == []
    assert eligible_ids(instance) == {("C1", "O1")}


@pytest.mark.parametrize("applied_on", ["2027-01-10", "2027-01-12"])
def test_paused_programme_refuses_applications_from_cutoff_on(applied_on: str) -> None:
    instance = default_with(candidate={"applied_on": applied_on}, programme=PAUSED)
    assert verdict(instance).failed_rules == ["funding"]
    assert verdict(instance).programmes == {"P1": ["programme_open"]}
    assert eligible_ids(instance) == set()


@pytest.mark.parametrize(("ready_since", "funded"), [("2027-01-05", True), ("2027-01-12", False)])
def test_paused_programme_takes_ready_since_as_application_date(ready_since: str, funded: bool) -> None:
    instance = default_with(candidate={"ready_since": ready_since}, programme=PAUSED)
    assert verdict(instance).failed_rules == ([] if funded else ["funding"])


# --- earmarks: set-aside money serves only its own professions ----------------------------------------------------


def _earmark_instance(earmarks: list[dict[str, Any]]) -> Instance:
    """A physician pair (grant 204,000) and a nurse pair (3 months: grant 102,000), budget 300,000."""
    return make(
        candidates=[
            candidate("C1"),
            candidate("N1", profession="nurse", ladder={"special_authorisation": "none"}),
        ],
        offers=[offer("O1"), offer("ON", supervisors=("SN",), profession="nurse", min_cefr="B2")],
        supervisors=[supervisor("S1"), supervisor("SN", profession="nurse")],
        programmes=[programme(budget=300_000, earmarks=earmarks)],
    )


NURSE_EARMARK = {"id": "E1", "amount": 250_000, "professions": ["nurse"]}


def test_without_earmark_both_pairs_are_funded() -> None:
    assert eligible_ids(_earmark_instance([])) == {("C1", "O1"), ("N1", "ON")}


def test_nurse_earmark_leaves_too_little_general_money_for_a_physician() -> None:
    instance = _earmark_instance([NURSE_EARMARK])
    result = verdict(instance, "C1", "O1")
    assert result.failed_rules == ["funding"]
    assert result.programmes == {"P1": ["programme_budget"]}


def test_nurse_earmark_is_room_for_a_nurse() -> None:
    # The nurse grant (102,000) exceeds the general part (50,000): it fits only with the earmark.
    instance = _earmark_instance([NURSE_EARMARK])
    assert verdict(instance, "N1", "ON").failed_rules == []
    assert eligible_ids(instance) == {("N1", "ON")}


def test_earmark_for_another_profession_gives_no_room() -> None:
    instance = _earmark_instance([{**NURSE_EARMARK, "professions": ["dentist"]}])
    assert eligible_ids(instance) == set()
    assert verdict(instance, "N1", "ON").programmes == {"P1": ["programme_budget"]}


# --- far-future dates ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"candidate": {"available_until": "9999-12-31"}}, id="candidate_available_until"),
        pytest.param({"supervisor": {"available_until": "9999-12-31"}}, id="supervisor_available_until"),
        pytest.param({"programme": {"spend_by": "9999-12-31"}}, id="programme_spend_by"),
    ],
)
def test_last_representable_date_is_open_ended(change: dict[str, dict[str, Any]]) -> None:
    instance = default_with(**change)
    assert verdict(instance).failed_rules == []
