"""The README names every rule, score component and reason class that the engine reports."""

from pathlib import Path

import pytest

from matching.input.instance import WAITING_BANDS
from matching.model.solution import REASONS
from matching.rules.eligibility import RULES
from matching.rules.groups import GROUP_KINDS
from matching.rules.scoring import COMPONENTS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [*RULES, *COMPONENTS, *REASONS])
def test_readme_documents(name: str) -> None:
    assert f"`{name}`" in README


def test_readme_opens_with_the_two_commands() -> None:
    blocks = [b.split("```", 1)[0].strip() for b in README.split("```sh\n")[1:3]]
    assert blocks[0].endswith("vardmatch serve --demo")
    assert "pytest" in blocks[1]


def test_readme_documents_every_command() -> None:
    from api.cli import app

    names = [c.name or c.callback.__name__ for c in app.registered_commands if c.callback is not None]
    assert len(names) >= 12
    assert [n for n in names if f"vardmatch {n}" not in README] == []


@pytest.mark.parametrize("name", [*GROUP_KINDS, *(band for band, _ in WAITING_BANDS)])
def test_readme_documents_fairness_groups(name: str) -> None:
    assert f"`{name}`" in README
