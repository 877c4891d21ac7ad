"""Changes to a round's input: applied and re-checked like a loaded instance, errors naming the change."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from matching.input.instance import Cefr, Instance, LanguageProof, OfferStatus
from matching.input.validate import InvalidInstance, Issue, load_instance
from matching.reports.changes import Change, apply_changes, describe, fact_count


def _instance() -> Instance:
    ladder = {"theory_test": "2025-03-10", "practical_test": "2025-09-10", "ptj_decision": "2026-01-10"}
    data: dict[str, Any] = {
        "round_date": "2027-01-15",
        "candidates": [
            {
                "id": "C7",
                "profession": "physician",
                "ladder": {**ladder, "special_authorisation": "granted"},
                "cefr": "B2",
                "residence_county": "01",
                "residence_municipality": "0180",
                "available_from": "2027-01-01",
                "available_until": "2027-12-31",
                "ready_since": "2026-06-01",
            }
        ],
        "units": [
            {"id": uid, "hsa_id": f"SE2321000016-{uid}", "orgnr": "232100-0016", "county": "01", "municipality": "0180"}
            for uid in ("U1", "U2")
        ],
        "supervisors": [
            {"id": "S3", "unit_id": "U2", "profession": "physician", "available_from": "2027-01-01"},
            {"id": "S4", "unit_id": "U2", "profession": "physician", "available_from": "2027-01-01"},
        ],
        "offers": [
            {"id": "O4", "unit_id": "U2", "profession": "physician", "start": "2027-03-01", "months": 6},
            {"id": "O5", "unit_id": "U2", "profession": "physician", "start": "2027-03-01", "months": 6},
        ],
        "programmes": [
            {
                "id": "P1",
                "budget": 1_000_000,
                "window_start": "2027-01-01",
                "window_end": "2027-12-31",
                "spend_by": "2027-12-31",
                "unit_caps": {"medium": 100_000, "large": 135_000},
            }
        ],
    }
    data["offers"][0]["supervisor_ids"] = ["S3"]
    return load_instance(data)


def issues_of(changes: list[Change]) -> list[Issue]:
    with pytest.raises(InvalidInstance) as caught:
        apply_changes(_instance(), changes)
    return caught.value.issues


def test_changes_are_applied_and_the_original_is_left_alone() -> None:
    instance = _instance()
    changed = apply_changes(
        instance,
        [
            Change(target="programme", id="P1", set={"budget": 2_500_000}),
            Change(target="candidate", id="C7", set={"cefr": "C1", "language_proof": "tisus"}),
            Change(target="offer", id="O4", set={"slots": 3}),
            Change(target="supervisor", id="S3", set={"capacity": 2}),
            Change(target="offer", id="O5", set={"status": "withdrawn"}),
            Change(target="unit", id="U1", set={"size_class": "small"}),
        ],
    )
    assert changed.programmes[0].budget == 2_500_000
    assert (changed.candidates[0].cefr, changed.candidates[0].language_proof) == (Cefr.C1, LanguageProof.TISUS)
    assert changed.offers[0].slots == 3 and changed.offers[1].status is OfferStatus.WITHDRAWN
    assert changed.supervisors[0].capacity == 2 and changed.units[0].size_class.value == "small"
    assert instance.programmes[0].budget == 1_000_000 and instance.candidates[0].cefr is Cefr.B2
    assert changed.supervisors[1] is instance.supervisors[1]


def test_nested_objects_are_merged_key_by_key() -> None:
    changed = apply_changes(
        _instance(),
        [
            Change(target="programme", id="P1", set={"unit_caps": {"small": 300_000}}),
            Change(target="candidate", id="C7", set={"ladder": {"practical_test": "2025-10-01"}}),
        ],
    )
    caps = changed.programmes[0].unit_caps
    assert (caps.small, caps.medium, caps.large) == (300_000, 100_000, 135_000)
    ladder = changed.candidates[0].ladder
    assert ladder.practical_test is not None and ladder.practical_test.isoformat() == "2025-10-01"
    assert ladder.ptj_decision is not None and ladder.ptj_decision.isoformat() == "2026-01-10"


def test_two_changes_to_one_object_add_up() -> None:
    changed = apply_changes(
        _instance(),
        [
            Change(target="candidate", id="C7", set={"available_from": "2028-01-01"}),
            Change(target="candidate", id="C7", set={"available_until": "2028-12-31"}),
        ],
    )
    assert changed.candidates[0].available_from.isoformat() == "2028-01-01"


def test_describe_shows_old_and_new_values() -> None:
    instance = _instance()
    cases = [
        (
            Change(target="programme", id="P1", set={"budget": 1_250_000}),
            "programme P1: budget 1,000,000 -> 1,250,000 SEK",
        ),
        (
            Change(target="candidate", id="C7", set={"cefr": "C1", "language_proof": "tisus"}),
            "candidate C7: cefr B2 -> C1, language_proof none -> tisus",
        ),
        (Change(target="supervisor", id="S3", set={"capacity": 2}), "supervisor S3 (unit U2): capacity 1 -> 2"),
        (Change(target="offer", id="O4", set={"slots": 2}), "offer O4: slots 1 -> 2"),
        (
            Change(target="programme", id="P1", set={"unit_caps": {"small": 300_000}}),
            "programme P1: unit_caps.small unset -> 300,000 SEK",
        ),
        (
            Change(target="candidate", id="C7", set={"max_commute_km": 29}, note="commute to U2"),
            "candidate C7: max_commute_km 60 -> 29 km (commute to U2)",
        ),
    ]
    for change, text in cases:
        assert describe(change, instance) == text


def test_fact_count_counts_fields_and_nested_keys() -> None:
    changes = [
        Change(target="candidate", id="C7", set={"cefr": "C1", "ladder": {"a": 1, "b": 2}}),
        Change(target="offer", id="O4", set={"slots": 2}),
    ]
    assert fact_count(changes) == 4


def test_an_unknown_id_names_the_change() -> None:
    [issue] = issues_of([Change(target="offer", id="O4", set={"slots": 2}), Change(target="offer", id="O9", set={})])
    assert (issue.path, issue.object_id, issue.field, issue.rule) == ("changes[1]", "O9", "id", "known_id")


def test_an_unknown_field_names_the_field() -> None:
    [issue] = issues_of([Change(target="supervisor", id="S3", set={"seats": 2})])
    assert (issue.path, issue.object_id, issue.field, issue.rule) == (
        "changes[0].set.seats",
        "S3",
        "seats",
        "unknown_field",
    )
    [nested] = issues_of([Change(target="programme", id="P1", set={"unit_caps": {"tiny": 5}})])
    assert (nested.path, nested.rule) == ("changes[0].set.unit_caps.tiny", "unknown_field")


def test_a_value_breaking_a_model_rule_keeps_the_rule_name() -> None:
    [issue] = issues_of([Change(target="candidate", id="C7", set={"available_until": "2026-01-01"})])
    assert (issue.path, issue.object_id, issue.rule) == ("changes[0].set.available_until", "C7", "period_order")
    # The object rule names the end of the period; the change set its start.
    [start] = issues_of([Change(target="candidate", id="C7", set={"available_from": "2029-01-01"})])
    assert (start.path, start.field, start.rule) == ("changes[0].set.available_from", "available_until", "period_order")
    [ladder] = issues_of([Change(target="candidate", id="C7", set={"ladder": {"practical_test": "2025-01-01"}})])
    assert (ladder.path, ladder.rule) == ("changes[0].set.ladder.practical_test", "ladder_order")


@pytest.mark.parametrize(
    ("change", "path", "rule"),
    [
        (Change(target="candidate", id="C7", set={"cefr": "D1"}), "changes[0].set.cefr", "allowed_values"),
        (Change(target="supervisor", id="S3", set={"capacity": 21}), "changes[0].set.capacity", "maximum"),
        (Change(target="programme", id="P1", set={"budget": -1}), "changes[0].set.budget", "minimum"),
        (Change(target="programme", id="P1", set={"budget": "lots"}), "changes[0].set.budget", "int_type"),
        (Change(target="offer", id="O4", set={"supervisor_ids": ["S9"]}), "changes[0].set.supervisor_ids", "known_id"),
        (Change(target="supervisor", id="S4", set={"unit_id": "U9"}), "changes[0].set.unit_id", "known_id"),
        (Change(target="offer", id="O4", set={"id": "O6"}), "changes[0].set.id", "read_only"),
        (Change(target="offer", id="O4", set={}), "changes[0]", "empty_change"),
    ],
)
def test_bad_values_give_invalid_instance_with_path_and_rule(change: Change, path: str, rule: str) -> None:
    issues = issues_of([change])
    assert (issues[0].path, issues[0].rule) == (path, rule)
    assert issues[0].object_id == change.id


def test_a_reference_broken_elsewhere_is_reported_against_the_changes() -> None:
    # Moving S3 to U1 leaves offer O4 (at U2) with a supervisor from another unit.
    issues = issues_of([Change(target="supervisor", id="S3", set={"unit_id": "U1"})])
    assert [(i.path, i.object_id, i.rule) for i in issues] == [("changes", "O4", "supervisor_same_unit")]
    assert issues[0].message.startswith("offers[0] (id=O4)")


def test_a_change_is_strict() -> None:
    with pytest.raises(ValidationError):
        Change.model_validate({"target": "ward", "id": "W1", "set": {}})
    with pytest.raises(ValidationError):
        Change.model_validate({"target": "offer", "id": "O4", "set": {}, "why": "x"})
    change = Change(target="offer", id="O4", set={"slots": 2})
    with pytest.raises(ValidationError):
        change.id = "O5"  # type: ignore[misc]
