"""The `vardmatch` command line: serve, demo, solve, verify, explain, generate, schema and bench; the commands that
explain and test a round are in `api.cli.reports`."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from api.cli.users import users_app
from benchmarks.cli import bench_app
from matching.input.instance import Instance
from matching.model.solution import Solution

app = typer.Typer(
    name="vardmatch",
    help="Match foreign-trained clinicians to supervised placements and funding, optimally and explainably.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(bench_app, name="bench")
app.add_typer(users_app, name="users")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO = FIXTURES / "demo_region.json"


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _read_instance(path: Path) -> Instance:
    from matching.input.validate import InvalidInstance, load_instance

    if not path.is_file():
        _fail(f"{path}: no such file")
    try:
        return load_instance(path.read_bytes())
    except InvalidInstance as exc:
        _fail(f"{path}: {exc}")


def _read_solution(path: Path) -> Solution:
    from pydantic import ValidationError

    if not path.is_file():
        _fail(f"{path}: no such file")
    try:
        return Solution.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = str(exc.errors()[0]["msg"])
        if "recursion limit exceeded" in first:
            _fail(f"{path}: not valid JSON for a solution: nested too deeply")
        _fail(f"{path}: not a solution: {exc.error_count()} problem(s): {first}")


def _with_policy(instance: Instance, **changes: Any) -> Instance:
    wanted = {k: v for k, v in changes.items() if v is not None}
    return instance.with_policy(**wanted) if wanted else instance


def _solve(instance: Instance, method: str, progress: bool) -> Solution:
    from matching.input.validate import InvalidInstance
    from matching.solvers.solve import solve

    def show(p: dict[str, float | int | str]) -> None:
        found = "".join(f"  {k} {int(p[k]):,}" for k in ("placements", "score") if k in p)
        tier = f"  {p['tier']} bound {float(p['bound']):,.0f}  gap {float(p['gap']):.2%}" if "bound" in p else ""
        typer.echo(f"  [{p['phase']}]{found}{tier}  {p['elapsed']} s", err=True)

    try:
        return solve(instance, method=method, progress=show if progress else None)  # type: ignore[arg-type]
    except InvalidInstance as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(str(exc))


TimeLimit = Annotated[float | None, typer.Option("--time-limit", min=0.01, help="Seconds the solver may use.")]
Seed = Annotated[int | None, typer.Option("--seed", min=0, help="Random seed of the solver.")]
Workers = Annotated[int | None, typer.Option("--workers", min=1, max=64, help="Solver threads.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the solution as JSON.")]
Method = Annotated[str, typer.Option("--method", help="auto, mip, cp_sat, lns, flow or greedy.")]


@app.command()
def solve(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    time_limit: TimeLimit = None,
    seed: Seed = None,
    workers: Workers = None,
    deterministic: Annotated[
        bool | None, typer.Option("--deterministic/--no-deterministic", help="Repeatable result.")
    ] = None,
    method: Method = "auto",
    as_json: AsJson = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the JSON solution here.")] = None,
    progress: Annotated[bool, typer.Option("--progress", help="Show solver progress on stderr.")] = False,
) -> None:
    """Solve a round from an instance file and print the solution."""
    if method not in ("auto", "mip", "cp_sat", "lns", "flow", "greedy"):
        _fail(f"--method: {method!r} is not one of auto, mip, cp_sat, lns, flow, greedy")
    instance = _with_policy(
        _read_instance(instance_path),
        time_limit_s=time_limit,
        seed=seed,
        workers=workers,
        deterministic=deterministic,
    )
    solution = _solve(instance, method, progress)
    text = solution.model_dump_json(indent=1)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    typer.echo(text if as_json else summary(instance, solution))


@app.command()
def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="A fresh SQLite database with the demo region and users.")
    ] = False,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: VARDMATCH_DATABASE_URL or ./vardmatch.sqlite.")
    ] = None,
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs)."""
    from api.server import serve as run_server

    run_server(demo=demo, host=host, port=port, database_url=database_url)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Jobs at once.")] = 1,
    queues: Annotated[
        str, typer.Option("--queues", help="Comma-separated: solver (rounds, what-ifs, ...), background (reports).")
    ] = "solver,background",
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: VARDMATCH_DATABASE_URL (PostgreSQL).")
    ] = None,
) -> None:
    """Take solver jobs from the PostgreSQL queue until SIGTERM (start any number, on any machine)."""
    from api.core.settings import Settings
    from api.jobs.worker import run_worker

    settings = Settings() if database_url is None else Settings(database_url=database_url)
    run_worker(settings, concurrency, [q for q in queues.split(",") if q])


@app.command()
def demo(
    time_limit: TimeLimit = None,
    as_json: AsJson = False,
    instance_path: Annotated[Path, typer.Option("--instance", help="Another instance to run.")] = DEMO,
) -> None:
    """Run a full round on the demo region (Region Stockholm) and print a readable summary."""
    instance = _with_policy(_read_instance(instance_path), time_limit_s=time_limit)
    solution = _solve(instance, "auto", progress=not as_json)
    typer.echo(solution.model_dump_json(indent=1) if as_json else summary(instance, solution))


@app.command()
def verify(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    solution_path: Annotated[Path, typer.Argument(metavar="SOLUTION.json")],
) -> None:
    """Check a solution against every rule; exit 1 if anything is violated."""
    from matching.reports.verify import verify as check

    instance = _read_instance(instance_path)
    solution = _read_solution(solution_path)
    violations = check(instance, solution)
    for v in violations:
        typer.echo(str(v))
    if violations:
        _fail(f"{len(violations)} violation(s)", code=1)
    typer.echo(f"ok: {len(solution.assignments)} assignments, no violations")


@app.command()
def explain(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    candidate_id: Annotated[str, typer.Argument(help="The candidate's opaque id.")],
    as_json: AsJson = False,
) -> None:
    """List every offer for one candidate with the rules that exclude it."""
    from matching.rules.eligibility import RULES, explain_candidate

    instance = _read_instance(instance_path)
    if candidate_id not in {c.id for c in instance.candidates}:
        _fail(f"candidate {candidate_id!r} is not in {instance_path}")
    verdicts = explain_candidate(instance, candidate_id)
    if as_json:
        rows = [{"offer_id": v.offer_id, "failed_rules": v.failed_rules, "programmes": v.programmes} for v in verdicts]
        typer.echo(json.dumps(rows, indent=1))
        return
    for v in verdicts:
        if v.eligible:
            typer.echo(f"{v.offer_id}: eligible")
            continue
        typer.echo(f"{v.offer_id}: excluded by {', '.join(v.failed_rules)}")
        if "funding" in v.failed_rules:
            for pid, rules in v.programmes.items():
                typer.echo(f"    {pid}: {', '.join(RULES[r] for r in rules) or 'would pay'}")


@app.command()
def generate(
    candidates: Annotated[int, typer.Option("--candidates", "-c", min=1, help="Number of candidates.")] = 120,
    offers: Annotated[int, typer.Option("--offers", "-n", min=1, help="Number of offers.")] = 60,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    scale: Annotated[str | None, typer.Option("--scale", help="A named scale (overrides the sizes).")] = None,
    ample_budgets: Annotated[bool, typer.Option("--ample-budgets", help="Money never binds.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
) -> None:
    """Write a random valid instance of a given size and seed."""
    from matching.generators import generate as gen

    if scale is not None:
        if scale not in gen.SCALES:
            _fail(f"--scale: {scale!r} is not one of {', '.join(gen.SCALES)}")
        instance = gen.generate_scale(scale, seed)
    else:
        instance = gen.generate(candidates, offers, seed=seed, binding_budgets=not ample_budgets)
    text = instance.model_dump_json(indent=1)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {output}: {len(instance.candidates)} candidates, {len(instance.offers)} offers", err=True)
    else:
        typer.echo(text)


@app.command()
def schema(
    solution: Annotated[bool, typer.Option("--solution", help="The solution's schema instead.")] = False,
) -> None:
    """Print the JSON Schema of the instance (or the solution)."""
    model = Solution if solution else Instance
    typer.echo(json.dumps(model.model_json_schema(), indent=1, ensure_ascii=False))


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(instance: Instance, solution: Solution) -> str:
    """A readable account of a round: matched per profession, money per programme, reasons for the unmatched."""
    profession = {c.id: c.profession.value for c in instance.candidates}
    total = Counter(profession.values())
    matched = Counter(profession[a.candidate_id] for a in solution.assignments)
    from matching.reports.statement import objective_statement

    parts = [
        f"Round {instance.name or '(unnamed)'} on {instance.round_date}: {solution.placements} of "
        f"{len(instance.candidates)} candidates placed ({solution.method}, {solution.status}, "
        f"objective {solution.objective:.0f}, bound {solution.bound:.0f}, gap {solution.gap:.2%}, "
        f"{solution.wall_time_s} s)",
        *([f"No solution: {solution.stats['no_solution']}"] if "no_solution" in solution.stats else []),
        "",
        "What the round optimises",
        *(f"  {line}" for line in objective_statement(instance.policy)),
        "",
        "Matched per profession",
        _table([(p, str(matched[p]), str(n)) for p, n in sorted(total.items())], ("profession", "matched", "of")),
        "",
        "Money per programme (SEK)",
        _table(
            [
                (
                    m.programme_id,
                    str(m.matches),
                    f"{m.granted:,}",
                    f"{m.budget:,}",
                    f"{m.granted / max(1, m.budget):.0%}",
                )
                for m in solution.money
            ],
            ("programme", "matches", "granted", "budget", "used"),
        ),
        "",
        "Why candidates were left unmatched",
    ]
    reasons = Counter(u.reason for u in solution.unmatched)
    parts.append(_table([(r, str(n)) for r, n in reasons.most_common()], ("reason", "candidates")))
    rules: Counter[str] = Counter()
    for u in solution.unmatched:
        if u.reason == "no_eligible_offer":
            rules.update(r for r, n in u.rules.items() if n)
    if rules:
        parts += ["", "Rules behind 'no eligible offer' (candidates excluded from at least one offer by the rule)"]
        parts.append(_table([(r, str(n)) for r, n in rules.most_common(8)], ("rule", "candidates")))
    return "\n".join(parts)


# The explaining commands (why-not, prices, what-if, fairness, stable, analyse) and `retention` register themselves
# on `app`.
from api.cli import privacy, reports  # noqa: E402, F401


def main() -> None:
    """Entry point for `python -m api.cli`."""
    app(prog_name="vardmatch")


if __name__ == "__main__":
    sys.exit(main())
