"""The service's layers hold: where a request, a job and a command live, and who may import whom.

    api/cli      a command            may import everything below
    api/app.py   the composition root: the HTTP API, the pages and the local job pool in one ASGI app
    api/server.py  runs it with uvicorn
    api/web      a page               may import api/http, api/jobs, api/core
    api/http     a request            may import api/jobs, api/core
    api/jobs     a job being run      may import api/core
    api/core     the application      imports none of the above

The module graph is read from the source with `ast` (imports inside functions count too: a lazy import that closes a
circle is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.matching.test_structure import find_cycle

ROOT = Path(__file__).resolve().parents[2] / "api"
# Lowest first: each layer may import only the layers before it.
LAYERS = ["api.core", "api.jobs", "api.http", "api.web", "api.app", "api.server", "api.cli"]
# What of FastAPI and Starlette the application layer, the jobs and the commands may use: none of their routing,
# requests or dependencies. `jsonable_encoder` turns stored rows into JSON (the access-request export), and a
# `Response` is what an export to CSV/XLSX is built as (api/core/tabular.py, shared by routes and pages).
OUTSIDE_HTTP_ALLOWED = {"fastapi.encoders.jsonable_encoder", "fastapi.Response"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# api/__init__.py is empty: every module belongs to a layer.
MODULES = {
    _module_name(p): p
    for p in ROOT.rglob("*.py")
    if (p.name != "__main__.py" and p.parent != ROOT) or p.stem in ("app", "server")
}


def imported_names(path: Path) -> set[str]:
    """Every dotted name `path` imports anywhere in its body: modules, and `module.name` for `from module import x`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def module_graph() -> dict[str, set[str]]:
    """Every api module and the api modules it imports."""
    return {name: {n for n in imported_names(path) if n in MODULES} - {name} for name, path in MODULES.items()}


def layer_of(module: str) -> str:
    return next(layer for layer in LAYERS if module == layer or module.startswith(layer + "."))


def package_graph() -> dict[str, set[str]]:
    """The layers (api's packages, and its two root modules) and the layers each imports."""
    graph: dict[str, set[str]] = {layer: set() for layer in LAYERS}
    for module, imported in module_graph().items():
        graph[layer_of(module)].update(layer_of(i) for i in imported)
    return {layer: imported - {layer} for layer, imported in graph.items()}


def test_every_module_is_in_a_layer() -> None:
    assert {layer_of(m) for m in MODULES} == set(LAYERS)
    assert {p.stem for p in ROOT.glob("*.py")} == {"__init__", "app", "server"}


def test_no_import_cycles_between_the_packages() -> None:
    assert find_cycle(package_graph()) is None


def test_no_import_cycles_between_modules_outside_the_pages() -> None:
    # api/web's package imports its pages and they import its helpers back; everywhere else modules form no circle.
    graph = {m: {i for i in imported if layer_of(i) != "api.web"} for m, imported in module_graph().items()}
    assert find_cycle({m: i for m, i in graph.items() if layer_of(m) != "api.web"}) is None


def test_each_layer_imports_only_the_layers_below_it() -> None:
    upward = {
        (layer, imported)
        for layer, imports in package_graph().items()
        for imported in imports
        if LAYERS.index(imported) > LAYERS.index(layer)
    }
    assert upward == set()


def test_the_application_layer_never_imports_the_http_layer() -> None:
    # Also said by the test above; spelled out since it is the rule a new module most easily breaks.
    offenders = {
        (m, i)
        for m, imported in module_graph().items()
        if layer_of(m) == "api.core"
        for i in imported
        if layer_of(i) != "api.core"
    }
    assert offenders == set()


def test_only_the_http_layer_and_the_pages_use_fastapi_routing() -> None:
    outside = [m for m in MODULES if layer_of(m) in ("api.core", "api.jobs", "api.cli")]
    offenders = {
        (m, name)
        for m in outside
        for name in imported_names(MODULES[m])
        if name.split(".")[0] in ("fastapi", "starlette")
        and name not in OUTSIDE_HTTP_ALLOWED
        and not any(a.startswith(name + ".") for a in OUTSIDE_HTTP_ALLOWED)  # the module part of an allowed name
    }
    assert offenders == set()


def private_imports(modules: list[str]) -> set[tuple[str, str]]:
    """(module, name) for every `_private` name a module imports from another api module."""
    return {
        (m, name)
        for m in modules
        for name in imported_names(MODULES[m])
        if name.rpartition(".")[2].startswith("_") and name.rpartition(".")[0] in MODULES
    }


def test_no_command_module_imports_another_ones_private_names() -> None:
    commands = [m for m in MODULES if layer_of(m) == "api.cli"]
    assert len(commands) >= 6  # the package, common and the command modules
    assert private_imports(commands) == set()


def test_no_api_module_imports_another_ones_private_names() -> None:
    assert private_imports(list(MODULES)) == set()


def test_the_rules_catch_what_they_forbid(tmp_path: Path) -> None:
    # The checks above would pass on an empty graph: show that they see an upward import and a private one.
    source = "from api.http.deps import SessionDep\nfrom api.cli.common import _hidden\nfrom fastapi import APIRouter\n"
    path = tmp_path / "example.py"
    path.write_text(source, encoding="utf-8")
    names = imported_names(path)
    assert "api.http.deps" in names and layer_of("api.http.deps") == "api.http"
    assert LAYERS.index("api.http") > LAYERS.index("api.core")
    assert "api.cli.common._hidden" in names
    assert "fastapi.APIRouter" in names and "fastapi.APIRouter" not in OUTSIDE_HTTP_ALLOWED
