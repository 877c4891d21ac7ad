"""Bad input is refused with InvalidInstance naming the object, the field and the rule, never another exception."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.input.instance import Instance
from matching.input.validate import InvalidInstance, Issue, load_instance
from matching.solvers.solve import solve
from tests.factories import candidate, instance_dict, make, offer, programme, supervisor, unit

Where = tuple[str, str | None, str, str]  # (path, object_id, field, rule)


def issues_of(source: Any) -> list[Issue]:
    with pytest.raises(InvalidInstance) as caught:
        load_instance(source)
    assert caught.value.issues, "InvalidInstance without issues"
    return caught.value.issues


def where(issues: list[Issue]) -> set[Where]:
    return {(i.path, i.object_id, i.field, i.rule) for i in issues}


def with_top(**fields: Any) -> dict[str, Any]:
    return {**instance_dict(), **fields}


def test_factory_instance_is_valid() -> None:
    assert isinstance(load_instance(instance_dict()), Instance)
    assert isinstance(load_instance(json.dumps(instance_dict())), Instance)


# --- references between objects -----------------------------------------------------------------------------------

UNKNOWN_IDS = [
    pytest.param(
        instance_dict(offers=[offer(unit_id="U9")]),
        ("offers[0]", "O1", "unit_id", "known_id"),
        id="offer.unit_id",
    ),
    pytest.param(
        instance_dict(offers=[offer(supervisors=("S1", "S9"))]),
        ("offers[0]", "O1", "supervisor_ids", "known_id"),
        id="offer.supervisor_ids",
    ),
    pytest.param(
        instance_dict(supervisors=[supervisor(unit_id="U9")], offers=[offer(supervisors=())]),
        ("supervisors[0]", "S1", "unit_id", "known_id"),
        id="supervisor.unit_id",
    ),
    pytest.param(
        instance_dict(pins=[{"candidate_id": "C9", "offer_id": "O1"}]),
        ("policy.pins[0]", None, "candidate_id", "known_id"),
        id="pin.candidate_id",
    ),
    pytest.param(
        instance_dict(pins=[{"candidate_id": "C1", "offer_id": "O9"}]),
        ("policy.pins[0]", None, "offer_id", "known_id"),
        id="pin.offer_id",
    ),
    pytest.param(
        instance_dict(forbids=[{"candidate_id": "C9", "offer_id": "O1"}]),
        ("policy.forbids[0]", None, "candidate_id", "known_id"),
        id="forbid.candidate_id",
    ),
    pytest.param(
        instance_dict(forbids=[{"candidate_id": "C1", "offer_id": "O9"}]),
        ("policy.forbids[0]", None, "offer_id", "known_id"),
        id="forbid.offer_id",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(wishes=["O1", "O9"])]),
        ("candidates[0]", "C1", "wishes", "known_id"),
        id="candidate.wishes",
    ),
    pytest.param(
        instance_dict(offers=[offer(clinic_ranking=["C9"])]),
        ("offers[0]", "O1", "clinic_ranking", "known_id"),
        id="offer.clinic_ranking",
    ),
]


@pytest.mark.parametrize(("data", "expected"), UNKNOWN_IDS)
def test_unknown_id_is_named(data: dict[str, Any], expected: Where) -> None:
    assert expected in where(issues_of(data))


def test_supervisor_of_another_unit_is_refused() -> None:
    data = instance_dict(units=[unit("U1"), unit("U2")], supervisors=[supervisor(unit_id="U2")])
    assert where(issues_of(data)) == {("offers[0]", "O1", "supervisor_ids", "supervisor_same_unit")}


DUPLICATES = [
    pytest.param(instance_dict(candidates=[candidate(), candidate()]), "candidates", "C1", id="candidates"),
    pytest.param(instance_dict(units=[unit(), unit()]), "units", "U1", id="units"),
    pytest.param(instance_dict(supervisors=[supervisor(), supervisor()]), "supervisors", "S1", id="supervisors"),
    pytest.param(instance_dict(offers=[offer(), offer()]), "offers", "O1", id="offers"),
    pytest.param(instance_dict(programmes=[programme(), programme()]), "programmes", "P1", id="programmes"),
]


@pytest.mark.parametrize(("data", "kind", "object_id"), DUPLICATES)
def test_duplicate_id_is_named_at_both_places(data: dict[str, Any], kind: str, object_id: str) -> None:
    assert where(issues_of(data)) == {
        (f"{kind}[0]", object_id, "id", "unique_id"),
        (f"{kind}[1]", object_id, "id", "unique_id"),
    }


def test_duplicate_earmark_id_is_refused() -> None:
    earmark = {"id": "E1", "amount": 1000}
    data = instance_dict(programmes=[programme(earmarks=[earmark, earmark])])
    assert where(issues_of(data)) == {("programmes[0]", "P1", "earmarks", "unique_id")}


def test_pair_listed_twice_is_refused() -> None:
    pair = {"candidate_id": "C1", "offer_id": "O1"}
    assert ("policy.forbids[1]", None, "(pair)", "unique_pair") in where(issues_of(instance_dict(forbids=[pair, pair])))


def test_pinned_and_forbidden_pair_is_refused() -> None:
    pair = {"candidate_id": "C1", "offer_id": "O1"}
    data = instance_dict(pins=[pair], forbids=[pair])
    assert ("policy", None, "pins", "pin_not_forbidden") in where(issues_of(data))


# --- values ------------------------------------------------------------------------------------------------------

BAD_VALUES = [
    pytest.param(
        instance_dict(offers=[offer(monthly_salary=-1)]), ("offers[0]", "O1", "monthly_salary", "minimum"), id="salary"
    ),
    pytest.param(
        instance_dict(offers=[offer(course_fee=-100)]), ("offers[0]", "O1", "course_fee", "minimum"), id="course_fee"
    ),
    pytest.param(
        instance_dict(programmes=[programme(budget=-1)]), ("programmes[0]", "P1", "budget", "minimum"), id="budget"
    ),
    pytest.param(
        instance_dict(programmes=[programme(candidate_cap=-5)]),
        ("programmes[0]", "P1", "candidate_cap", "minimum"),
        id="candidate_cap",
    ),
    pytest.param(
        instance_dict(programmes=[programme(earmarks=[{"id": "E1", "amount": -1}])]),
        ("programmes[0].earmarks[0]", "E1", "amount", "minimum"),
        id="earmark_amount",
    ),
    pytest.param(
        instance_dict(programmes=[programme(unit_caps={"small": -1})]),
        ("programmes[0]", "P1", "unit_caps.small", "minimum"),
        id="unit_cap",
    ),
    pytest.param(
        instance_dict(units=[unit(hsa_id="SE2321000017-U1")]), ("units[0]", "U1", "hsa_id", "hsa_id"), id="hsa_luhn"
    ),
    pytest.param(
        instance_dict(units=[unit(hsa_id="SE2321000016-" + "A" * 19)]),
        ("units[0]", "U1", "hsa_id", "hsa_id"),
        id="hsa_too_long",
    ),
    pytest.param(
        instance_dict(units=[unit(hsa_id="2321000016-U1")]), ("units[0]", "U1", "hsa_id", "hsa_id"), id="hsa_no_SE"
    ),
    pytest.param(
        instance_dict(units=[unit(hsa_id="SE2321000016")]), ("units[0]", "U1", "hsa_id", "hsa_id"), id="hsa_no_suffix"
    ),
    pytest.param(instance_dict(units=[unit(orgnr="232100-0017")]), ("units[0]", "U1", "orgnr", "orgnr"), id="orgnr"),
    pytest.param(
        instance_dict(units=[unit(orgnr="232100-001")]), ("units[0]", "U1", "orgnr", "orgnr"), id="orgnr_short"
    ),
    pytest.param(
        instance_dict(units=[unit(municipality="0199")]),
        ("units[0]", "U1", "municipality", "municipality_code"),
        id="unit_municipality",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(residence_municipality="9999")]),
        ("candidates[0]", "C1", "residence_municipality", "municipality_code"),
        id="candidate_municipality",
    ),
    pytest.param(
        instance_dict(units=[unit(county="99")]), ("units[0]", "U1", "county", "county_code"), id="unit_county"
    ),
    pytest.param(
        instance_dict(programmes=[programme(residence_counties=["00"])]),
        ("programmes[0]", "P1", "counties", "county_code"),
        id="programme_county",
    ),
    pytest.param(
        instance_dict(units=[unit(municipality="1280")]),
        ("units[0]", "U1", "municipality", "municipality_in_county"),
        id="unit_municipality_in_county",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(residence_municipality="1280")]),
        ("candidates[0]", "C1", "residence_municipality", "municipality_in_county"),
        id="candidate_municipality_in_county",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(cefr="C3")]), ("candidates[0]", "C1", "cefr", "allowed_values"), id="C3"
    ),
    pytest.param(
        instance_dict(candidates=[candidate(cefr="D1")]), ("candidates[0]", "C1", "cefr", "allowed_values"), id="D1"
    ),
    pytest.param(
        instance_dict(offers=[offer(min_cefr="c1")]), ("offers[0]", "O1", "min_cefr", "allowed_values"), id="c1_lower"
    ),
    pytest.param(
        instance_dict(candidates=[candidate(profession="surgeon")]),
        ("candidates[0]", "C1", "profession", "allowed_values"),
        id="candidate_profession",
    ),
    pytest.param(
        instance_dict(programmes=[programme(professions=["nurse", "healer"])]),
        ("programmes[0]", "P1", "professions", "allowed_values"),
        id="programme_profession",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(shoe_size=42)]),
        ("candidates[0]", "C1", "shoe_size", "unknown_field"),
        id="extra_field_candidate",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(ladder={"driving_licence": "2020-01-01"})]),
        ("candidates[0]", "C1", "ladder.driving_licence", "unknown_field"),
        id="extra_field_ladder",
    ),
    pytest.param(with_top(comment="x"), ("instance", None, "comment", "unknown_field"), id="extra_field_top"),
    pytest.param(
        instance_dict(candidates=[candidate(personnummer="19121212-1212")]),
        ("candidates[0]", "C1", "personnummer", "unknown_field"),
        id="no_personal_identity",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(ladder={"theory_test": "2025-10-01", "practical_test": "2025-09-01"})]),
        ("candidates[0]", "C1", "ladder.practical_test", "ladder_order"),
        id="practical_before_theory",
    ),
    pytest.param(
        instance_dict(programmes=[programme(status="paused")]),
        ("programmes[0]", "P1", "cutoff", "cutoff_required"),
        id="paused_without_cutoff",
    ),
    pytest.param(
        instance_dict(programmes=[programme(budget=100, earmarks=[{"id": "E1", "amount": 101}])]),
        ("programmes[0]", "P1", "earmarks", "earmarks_within_budget"),
        id="earmarks_over_budget",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(wishes=["O1", "O1"])]),
        ("candidates[0]", "C1", "wishes", "unique_wishes"),
        id="wish_twice",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(id="C 1")]), ("candidates[0]", "C 1", "id", "format"), id="id_format"
    ),
    pytest.param(with_top(schema_version=2), ("instance", None, "schema_version", "allowed_values"), id="schema"),
]


@pytest.mark.parametrize(("data", "expected"), BAD_VALUES)
def test_bad_value_is_named(data: dict[str, Any], expected: Where) -> None:
    assert expected in where(issues_of(data))


@pytest.mark.parametrize(("data", "expected"), BAD_VALUES[:6])
def test_bad_value_is_named_in_json_text(data: dict[str, Any], expected: Where) -> None:
    assert expected in where(issues_of(json.dumps(data)))


# Rules over two fields of one object name the object and the field that is out of order.
PERIODS = [
    pytest.param(
        instance_dict(candidates=[candidate(available_from="2027-03-01", available_until="2027-02-28")]),
        ("candidates[0]", "C1", "available_until", "period_order"),
        id="candidate_availability",
    ),
    pytest.param(
        instance_dict(supervisors=[supervisor(available_from="2027-03-01", available_until="2027-01-31")]),
        ("supervisors[0]", "S1", "available_until", "period_order"),
        id="supervisor_availability",
    ),
    pytest.param(
        instance_dict(programmes=[programme(window_start="2027-06-01", window_end="2027-05-31")]),
        ("programmes[0]", "P1", "window_end", "period_order"),
        id="programme_window",
    ),
    pytest.param(
        instance_dict(programmes=[programme(spend_by="2026-12-31")]),
        ("programmes[0]", "P1", "spend_by", "period_order"),
        id="spend_by_before_window",
    ),
]


@pytest.mark.parametrize(("data", "expected"), PERIODS)
def test_period_ending_before_it_starts_is_refused(data: dict[str, Any], expected: Where) -> None:
    assert where(issues_of(data)) == {expected}


def test_every_problem_is_reported_at_once() -> None:
    data = instance_dict(
        candidates=[candidate(cefr="C3"), candidate("C2", residence_municipality="9999")],
        offers=[offer(monthly_salary=-1, unit_id="U1")],
    )
    assert where(issues_of(data)) == {
        ("candidates[0]", "C1", "cefr", "allowed_values"),
        ("candidates[1]", "C2", "residence_municipality", "municipality_code"),
        ("offers[0]", "O1", "monthly_salary", "minimum"),
    }


# --- types and documents -------------------------------------------------------------------------------------------

WRONG_TYPES = [
    pytest.param(instance_dict(offers=[offer(months="six")]), ("offers[0]", "O1", "months"), id="word_for_int"),
    pytest.param(instance_dict(offers=[offer(months=6.5)]), ("offers[0]", "O1", "months"), id="fraction_for_int"),
    pytest.param(instance_dict(programmes=[programme(budget="1 MSEK")]), ("programmes[0]", "P1", "budget"), id="money"),
    pytest.param(instance_dict(candidates=[candidate(part_time="half")]), ("candidates[0]", "C1", "part_time"), id="f"),
    pytest.param(instance_dict(candidates=[candidate(cid=7)]), ("candidates[0]", "7", "id"), id="number_for_id"),
    pytest.param(
        instance_dict(candidates=[candidate(available_from="2027-02-30")]),
        ("candidates[0]", "C1", "available_from"),
        id="impossible_date",
    ),
    pytest.param(
        instance_dict(candidates=[candidate(available_from="next week")]),
        ("candidates[0]", "C1", "available_from"),
        id="text_for_date",
    ),
    pytest.param(
        instance_dict(offers=[offer(supervisors="S1")]), ("offers[0]", "O1", "supervisor_ids"), id="text_for_list"
    ),
    pytest.param(
        instance_dict(candidates=[{**candidate(), "ladder": "done"}]),
        ("candidates[0]", "C1", "ladder"),
        id="text_for_object",
    ),
    pytest.param(
        instance_dict(offers=[offer(licensed="yes")]), ("offers[0]", "O1", "licensed"), id="unknown_and_wrong"
    ),
    pytest.param(with_top(candidates="C1"), ("instance", None, "candidates"), id="text_for_candidates"),
    pytest.param(with_top(candidates={"id": "C1"}), ("instance", None, "candidates"), id="object_for_candidates"),
    pytest.param(with_top(policy=None), ("instance", None, "policy"), id="null_policy"),
    pytest.param(with_top(round_date=None), ("instance", None, "round_date"), id="null_round_date"),
    pytest.param(with_top(candidates=[None]), ("instance", None, "candidates"), id="null_candidate"),
    pytest.param(with_top(candidates=["C1"]), ("instance", None, "candidates"), id="text_candidate"),
]


@pytest.mark.parametrize(("data", "expected"), WRONG_TYPES)
def test_wrong_type_is_named(data: dict[str, Any], expected: tuple[str, str | None, str]) -> None:
    assert expected in {(i.path, i.object_id, i.field) for i in issues_of(data)}


def test_missing_required_field_is_named() -> None:
    data = instance_dict(candidates=[{k: v for k, v in candidate().items() if k != "cefr"}])
    assert ("candidates[0]", "C1", "cefr", "required") in where(issues_of(data))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(instance_dict(offers=[offer(monthly_salary="30000")]), id="numeric_string_for_money"),
        pytest.param(instance_dict(offers=[offer(months=True)]), id="boolean_for_months"),
    ],
)
def test_string_or_boolean_where_a_number_belongs_is_refused(data: dict[str, Any]) -> None:
    issues_of(data)


@pytest.mark.parametrize("text", ["", "{", "{'round_date': '2027-01-15'}", "null x", "round_date: 2027-01-15"])
def test_non_json_text_is_refused(text: str) -> None:
    assert where(issues_of(text)) == {("instance", None, "(document)", "json")}


@pytest.mark.parametrize("text", ["[]", json.dumps([instance_dict()]), "null", "42", '"instance"'])
def test_json_that_is_not_an_object_is_refused(text: str) -> None:
    assert where(issues_of(text)) == {("instance", None, "(document)", "json_object")}


def test_list_is_refused_as_a_source() -> None:
    assert where(issues_of([instance_dict()])) == {("instance", None, "(document)", "json_object")}  # type: ignore[arg-type]


def test_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "round.json"
    path.write_text(json.dumps(instance_dict()), encoding="utf-8")
    assert isinstance(load_instance(path), Instance)
    path.write_text("{oops", encoding="utf-8")
    assert where(issues_of(path)) == {("instance", None, "(document)", "json")}


@pytest.mark.parametrize("raw", [b"\x80{}", b"\xff\xfe\x00"], ids=["latin1_byte", "truncated_utf16"])
def test_undecodable_bytes_are_refused(raw: bytes) -> None:
    assert where(issues_of(raw)) == {("instance", None, "(document)", "json")}


# --- policy ---------------------------------------------------------------------------------------------------------


def test_waiting_priority_needs_lexicographic_objective() -> None:
    data = instance_dict(objective="weighted", waiting_priority=True)
    assert where(issues_of(data)) == {("instance", None, "policy.waiting_priority", "waiting_priority_mode")}


def test_waiting_priority_with_lexicographic_objective_is_valid() -> None:
    assert load_instance(instance_dict(objective="lexicographic", waiting_priority=True)).policy.waiting_priority


def test_candidate_pinned_twice_is_refused() -> None:
    data = instance_dict(
        offers=[offer("O1"), offer("O2")],
        pins=[{"candidate_id": "C1", "offer_id": "O1"}, {"candidate_id": "C1", "offer_id": "O2"}],
    )
    assert ("policy.pins", None, "candidate_id", "one_pin_per_candidate") in where(issues_of(data))


def test_pinned_ineligible_pair_is_refused_by_solve() -> None:
    instance = make(offers=[offer(status="withdrawn")], pins=[{"candidate_id": "C1", "offer_id": "O1"}])
    with pytest.raises(InvalidInstance) as caught:
        solve(instance)
    [issue] = caught.value.issues
    assert (issue.path, issue.object_id, issue.field, issue.rule) == ("policy.pins[0]", None, "(pair)", "pin_eligible")
    assert "offer_status" in issue.message


def test_pinned_eligible_pair_is_solved() -> None:
    solution = solve(make(pins=[{"candidate_id": "C1", "offer_id": "O1"}]))
    assert [(a.candidate_id, a.offer_id) for a in solution.assignments] == [("C1", "O1")]


# --- random damage: InvalidInstance or an Instance, nothing else --------------------------------------------------

BASE = instance_dict(
    candidates=[
        candidate("C1", wishes=["O1", "U1"], applied_on="2026-12-01", available_until="2027-12-31"),
        candidate("N1", profession="nurse", cefr="B2", language_proof="sfi_d", residence_status="temporary"),
    ],
    units=[unit("U1"), unit("U2", ownership="private_public_funding", size_class="small")],
    supervisors=[supervisor("S1"), supervisor("SN", unit_id="U2", profession="nurse", capacity=2)],
    offers=[
        offer("O1", clinic_ranking=["C1"]),
        offer("ON", unit_id="U2", supervisors=("SN",), profession="nurse", min_cefr="B1", course_fee=5000),
    ],
    programmes=[
        programme("P1", unit_caps={"small": 60_000, "medium": 100_000}, candidate_cap=250_000),
        programme(
            "P2",
            status="paused",
            cutoff="2027-01-10",
            professions=["nurse"],
            covers=["salary", "course_fee"],
            cofunding_share=0.5,
            residence_counties=["01"],
            earmarks=[{"id": "E1", "amount": 100_000, "professions": ["nurse"]}],
        ),
    ],
    pins=[{"candidate_id": "C1", "offer_id": "O1"}],
    forbids=[{"candidate_id": "N1", "offer_id": "O1"}],
    weights={"specialty": 3, "wish": 2},
)

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        [
            *("C1", "N1", "O1", "ON", "U1", "U2", "S1", "SN", "P1", "P2", "E1", "01", "0180", "1280", "physician"),
            *("nurse", "ptj", "paused", "2027-01-01", "2027-02-30", "0001-01-01", "9999-12-31", "SE2321000016-X"),
        ]
    ),
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) below `node`."""
    found: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        found.append((node, key))
        found += _slots(child)
    return found


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_damage_gives_instance_or_invalid_instance(data: st.DataObject) -> None:
    doc = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        slots = _slots(doc)
        if not slots:
            break
        container, key = data.draw(st.sampled_from(slots), label="where")
        action = data.draw(st.sampled_from(["drop", "replace", "add"]), label="action")
        if action == "drop":
            del container[key]
        elif action == "replace":
            container[key] = data.draw(JSON_VALUES, label="value")
        elif isinstance(container, dict):
            container[data.draw(st.text(max_size=8), label="new key")] = data.draw(JSON_VALUES, label="value")
        else:
            container.append(data.draw(JSON_VALUES, label="value"))
    try:
        result = load_instance(doc)
    except InvalidInstance as error:
        assert error.issues
        assert all(isinstance(i.rule, str) and i.rule and isinstance(i.field, str) for i in error.issues)
    else:
        assert isinstance(result, Instance)


def test_control_characters_and_overlong_lists_are_refused_by_rule() -> None:
    """A control character in a name (XLSX cannot hold it) and a list past its cap (one object must stay small)."""
    data = instance_dict(
        units=[unit(name="Vård\x01central")],
        offers=[offer(clinic_ranking=[f"C{i}" for i in range(1001)])],
        candidates=[candidate(wishes=[f"O{i}" for i in range(51)])],
    )
    found = where(issues_of(data))
    assert ("units[0]", "U1", "name", "printable_text") in found
    assert ("offers[0]", "O1", "clinic_ranking", "max_items") in found
    assert ("candidates[0]", "C1", "wishes", "max_items") in found
    # TAB, LF and CR are text, not control characters to refuse.
    assert load_instance(instance_dict(units=[unit(name="Vård\tcentral\r\nNorr")])).units[0].name.startswith("Vård")


def test_deeply_nested_json_is_an_issue_not_a_crash() -> None:
    [issue] = issues_of('{"a":' * 100_000 + "1" + "}" * 100_000)
    assert issue.rule == "json_depth"
