"""The engine's architecture holds: sub-packages and no import cycles.

The module graph is read from the source with `ast` (imports inside functions count too: a lazy import that
closes a circle is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "matching"
PACKAGES = {"input", "rules", "model", "solvers", "reports", "generators"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Engine modules that `path` imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from matching.rules import rulebook` imports the module matching.rules.rulebook.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules}


def module_graph() -> dict[str, set[str]]:
    """Every engine module and the engine modules it imports."""
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, modules) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_engine_has_no_import_cycles() -> None:
    assert find_cycle(module_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_every_module_lives_in_a_sub_package() -> None:
    top = {p.stem for p in ROOT.glob("*.py")} - {"__init__"}
    assert top == set()
    assert {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} == PACKAGES


def test_production_code_never_imports_the_reference_solvers() -> None:
    # The product may be measured against the reference solvers, never built on them.
    users = {name for name, imported in module_graph().items() if "matching.solvers.baselines" in imported}
    assert users == set()
