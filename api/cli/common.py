"""What the `vardmatch` commands share: the Typer app they register on, reading instance and solution files,
failing with a clear message, solving with progress, plain-text tables and the common options."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from matching.input.instance import Instance
from matching.model.solution import Solution

app = typer.Typer(
    name="vardmatch",
    help="Match foreign-trained clinicians to supervised placements and funding, optimally and explainably.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def keep_stdout_for_output() -> None:
    """From here on, what Python prints goes to standard output and what native code writes there goes to standard
    error. HiGHS prints debugging lines straight to file descriptor 1 whatever its options say, sometimes from a
    thread that outlives the solve, and one such line would break the JSON a command prints for a pipe. Only where
    Python's standard output is the process's own (not a test runner's capture)."""
    try:
        if sys.stdout.fileno() != 1:
            return
    except (AttributeError, OSError, ValueError):
        return
    sys.stdout.flush()
    output = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = open(output, "w", encoding=sys.stdout.encoding or "utf-8", closefd=True)  # noqa: SIM115


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def read_instance(path: Path) -> Instance:
    from matching.input.validate import InvalidInstance, load_instance

    if not path.is_file():
        fail(f"{path}: no such file")
    try:
        return load_instance(path.read_bytes())
    except InvalidInstance as exc:
        fail(f"{path}: {exc}")


def read_solution(path: Path) -> Solution:
    from pydantic import ValidationError

    if not path.is_file():
        fail(f"{path}: no such file")
    try:
        return Solution.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = str(exc.errors()[0]["msg"])
        if "recursion limit exceeded" in first:
            fail(f"{path}: not valid JSON for a solution: nested too deeply")
        fail(f"{path}: not a solution: {exc.error_count()} problem(s): {first}")


def with_policy(instance: Instance, **changes: Any) -> Instance:
    wanted = {k: v for k, v in changes.items() if v is not None}
    return instance.with_policy(**wanted) if wanted else instance


def solve_instance(instance: Instance, method: str, progress: bool) -> Solution:
    from matching.input.validate import InvalidInstance
    from matching.solvers.solve import solve

    def show(p: dict[str, float | int | str]) -> None:
        found = "".join(f"  {k} {int(p[k]):,}" for k in ("placements", "score") if k in p)
        tier = f"  {p['tier']} bound {float(p['bound']):,.0f}  gap {float(p['gap']):.2%}" if "bound" in p else ""
        typer.echo(f"  [{p['phase']}]{found}{tier}  {p['elapsed']} s", err=True)

    try:
        return solve(instance, method=method, progress=show if progress else None)  # type: ignore[arg-type]
    except InvalidInstance as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc))


TimeLimit = Annotated[float | None, typer.Option("--time-limit", min=0.01, help="Seconds the solver may use.")]
Seed = Annotated[int | None, typer.Option("--seed", min=0, help="Random seed of the solver.")]
Workers = Annotated[int | None, typer.Option("--workers", min=1, max=64, help="Solver threads.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the solution as JSON.")]
Method = Annotated[str, typer.Option("--method", help="auto, mip, cp_sat, lns, lagrange, flow or greedy.")]


def text_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
