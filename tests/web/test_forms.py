"""The forms built from the engine's input types: what a form shows is what it reads back, and the API's errors land
next to the field they are about (no browser needed)."""

from __future__ import annotations

import pytest

from api.core import services
from api.core.errors import Unprocessable
from api.core.snapshot import CANDIDATES, PROGRAMMES
from api.web.forms import errors_by_field, fields_of, read_form, row_count, values_of
from tests import factories


def test_a_programme_with_earmarks_and_caps_reads_back_as_it_was_shown() -> None:
    programme = PROGRAMMES.engine_type.model_validate(
        factories.programme(
            "P1",
            professions=["nurse", "physician"],
            unit_caps={"small": 60000},
            earmarks=[{"id": "E1", "amount": 1000, "professions": ["nurse"]}],
        )
    )
    values = values_of(programme.model_dump(mode="json"))
    assert values["earmarks.0.id"] == "E1" and values["unit_caps.small"] == "60000"
    assert row_count(values, "earmarks") == 3  # the one held and two empty ones for new earmarks
    fields = fields_of(PROGRAMMES.engine_type)
    # The browser sends each ticked box of a code list as its own value.
    lists = {"professions": ["nurse", "physician"], "offer_kinds": [], "covers": ["salary", "supervisor_fee"]}
    for name in ("residence_statuses", "unit_ownerships"):
        lists[name] = []
    read = read_form(fields, values, lists)
    assert PROGRAMMES.engine_type.model_validate(read) == programme


def test_an_empty_nested_group_and_empty_rows_are_left_out() -> None:
    values = values_of(factories.candidate("C1"))
    emptied = {key: "" for key in values if key.startswith("ladder.")}
    assert emptied
    read = read_form(fields_of(CANDIDATES.engine_type), {**values, **emptied}, {})
    assert "ladder" not in read  # the whole ladder goes back to the engine's default
    form = {"earmarks.0.id": "E1", "earmarks.0.amount": "5", "earmarks.1.id": "", "earmarks.1.amount": " "}
    programme = read_form(fields_of(PROGRAMMES.engine_type), form, {})
    assert programme["earmarks"] == [{"id": "E1", "amount": 5, "professions": [], "offer_kinds": []}]


def _errors(kind: object, data: dict[str, object]) -> list[dict[str, str]]:
    with pytest.raises(Unprocessable) as caught:
        services.validate(kind, data)  # type: ignore[arg-type]
    errors: list[dict[str, str]] = caught.value.extra["errors"]
    return errors


def test_errors_land_next_to_their_field_cell_or_the_field_their_rule_names() -> None:
    fields = fields_of(PROGRAMMES.engine_type)
    base = factories.programme("P1")
    cell = _errors(PROGRAMMES, {**base, "earmarks": [{"id": "E1", "amount": -1}]})
    assert list(errors_by_field(fields, cell)) == ["earmarks.0.amount"]
    whole = _errors(PROGRAMMES, {**base, "budget": 10, "earmarks": [{"id": "E1", "amount": 50}]})
    assert list(errors_by_field(fields, whole)) == ["earmarks"]  # a check on the whole programme names the field
    dates = _errors(PROGRAMMES, {**base, "window_start": "2027-06-01", "window_end": "2027-01-01"})
    assert "window_end" in errors_by_field(fields, dates)
    ladder = _errors(
        CANDIDATES,
        {**factories.candidate("C1"), "ladder": {"theory_test": "2027-01-01", "practical_test": "2026-01-01"}},
    )
    assert list(errors_by_field(fields_of(CANDIDATES.engine_type), ladder)) == ["ladder.practical_test"]
    wishes = [{"field": "wishes[1]", "message": "no such offer or unit in the region", "type": "known_id"}]
    assert list(errors_by_field(fields_of(CANDIDATES.engine_type), wishes)) == ["wishes"]
    assert list(errors_by_field(fields, [{"field": "(body)", "message": "x", "type": "y"}])) == [""]
