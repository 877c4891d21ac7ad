"""The committed fixtures: valid, reproducible from their builders, free of personal data, and the small
instances give the results their README promises."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from matching.input.validate import load_instance
from matching.reports.verify import verify
from matching.solvers.solve import solve

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXPECTED = [json.loads(line) for line in (FIXTURES / "small" / "expected.jsonl").read_text().splitlines()]


def _builder(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, FIXTURES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", sorted(FIXTURES.rglob("*.json")), ids=lambda p: p.name)
def test_every_fixture_is_a_valid_instance(path: Path) -> None:
    load_instance(path.read_bytes())


def test_demo_region_is_reproducible_from_its_builder() -> None:
    builder = _builder("build_demo_region")
    assert builder.dump(builder.build()) == (FIXTURES / "demo_region.json").read_text(encoding="utf-8")


def test_small_instances_are_reproducible_from_their_builder() -> None:
    builder = _builder("build_small")
    for name, build in builder.BUILDERS.items():
        committed = json.loads((FIXTURES / "small" / f"{name}.json").read_text(encoding="utf-8"))
        assert load_instance(build()).model_dump(mode="json", exclude_defaults=True) == committed


def test_fixtures_hold_no_personal_identity_numbers() -> None:
    # Ten or twelve digits in personnummer shape (YYMMDD-NNNN or YYYYMMDDNNNN) must not appear at all.
    shape = re.compile(r"\b(?:19|20)?\d{6}[-+]?\d{4}\b")
    for path in FIXTURES.rglob("*.json"):
        data = load_instance(path.read_bytes()).model_dump(mode="json")
        for candidate in data["candidates"]:
            assert not shape.search(json.dumps(candidate)), f"{path.name}: {candidate['id']}"


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda e: e["instance"])
def test_small_instance_gives_the_documented_result(expected: dict) -> None:
    instance = load_instance((FIXTURES / "small" / expected["instance"]).read_bytes())
    solution = solve(instance)
    assert solution.status == "OPTIMAL"
    assert verify(instance, solution) == []
    matches = {a.candidate_id: [a.offer_id, a.programme_id, a.grant] for a in solution.assignments}
    assert matches == expected["matches"]
    spent = {m.programme_id: m.granted for m in solution.money if m.granted}
    assert spent == expected["spent"]
