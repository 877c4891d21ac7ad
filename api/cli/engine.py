"""The engine's commands on instance files: solve, demo, verify, explain, generate, schema."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import (
    AsJson,
    Method,
    Seed,
    TimeLimit,
    Workers,
    app,
    fail,
    keep_stdout_for_output,
    read_instance,
    read_solution,
    solve_instance,
    text_table,
    with_policy,
)
from matching.input.instance import Instance
from matching.model.solution import Solution

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DEMO = FIXTURES / "demo_region.json"


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
    keep_stdout_for_output()
    if method not in ("auto", "mip", "cp_sat", "lns", "lagrange", "flow", "greedy"):
        fail(f"--method: {method!r} is not one of auto, mip, cp_sat, lns, lagrange, flow, greedy")
    instance = with_policy(
        read_instance(instance_path),
        time_limit_s=time_limit,
        seed=seed,
        workers=workers,
        deterministic=deterministic,
    )
    solution = solve_instance(instance, method, progress)
    text = solution.model_dump_json(indent=1)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    typer.echo(text if as_json else summary(instance, solution))


@app.command()
def demo(
    time_limit: TimeLimit = None,
    as_json: AsJson = False,
    instance_path: Annotated[Path, typer.Option("--instance", help="Another instance to run.")] = DEMO,
) -> None:
    """Run a full round on the demo region (Region Stockholm) and print a readable summary."""
    keep_stdout_for_output()
    instance = with_policy(read_instance(instance_path), time_limit_s=time_limit)
    solution = solve_instance(instance, "auto", progress=not as_json)
    typer.echo(solution.model_dump_json(indent=1) if as_json else summary(instance, solution))


@app.command()
def verify(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    solution_path: Annotated[Path, typer.Argument(metavar="SOLUTION.json")],
) -> None:
    """Check a solution against every rule; exit 1 if anything is violated."""
    from matching.reports.verify import verify as check

    instance = read_instance(instance_path)
    solution = read_solution(solution_path)
    violations = check(instance, solution)
    for v in violations:
        typer.echo(str(v))
    if violations:
        fail(f"{len(violations)} violation(s)", code=1)
    typer.echo(f"ok: {len(solution.assignments)} assignments, no violations")


@app.command()
def explain(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    candidate_id: Annotated[str, typer.Argument(help="The candidate's opaque id.")],
    as_json: AsJson = False,
) -> None:
    """List every offer for one candidate with the rules that exclude it."""
    from matching.rules.eligibility import RULES, explain_candidate

    instance = read_instance(instance_path)
    if candidate_id not in {c.id for c in instance.candidates}:
        fail(f"candidate {candidate_id!r} is not in {instance_path}")
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
            fail(f"--scale: {scale!r} is not one of {', '.join(gen.SCALES)}")
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
        text_table([(p, str(matched[p]), str(n)) for p, n in sorted(total.items())], ("profession", "matched", "of")),
        "",
        "Money per programme (SEK)",
        text_table(
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
    parts.append(text_table([(r, str(n)) for r, n in reasons.most_common()], ("reason", "candidates")))
    rules: Counter[str] = Counter()
    for u in solution.unmatched:
        if u.reason == "no_eligible_offer":
            rules.update(r for r, n in u.rules.items() if n)
    if rules:
        parts += ["", "Rules behind 'no eligible offer' (candidates excluded from at least one offer by the rule)"]
        parts.append(text_table([(r, str(n)) for r, n in rules.most_common(8)], ("rule", "candidates")))
    return "\n".join(parts)
