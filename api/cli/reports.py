"""`vardmatch` commands that explain and test a round: why-not, prices, what-if, fairness, stable and analyse.

Each reads an instance file and either a solution written by `vardmatch solve -o` or, without `--solution`, solves
the instance first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import (
    AsJson,
    TimeLimit,
    app,
    fail,
    read_instance,
    read_solution,
    solve_instance,
    text_table,
    with_policy,
)
from matching.input.instance import Instance
from matching.model.solution import Solution

SolutionFile = Annotated[
    Path | None, typer.Option("--solution", help="A solution from `vardmatch solve -o` (default: solve now).")
]
Seconds = Annotated[float, typer.Option("--seconds", min=0.1, help="Time for the re-solves.")]


def _solution_for(instance: Instance, path: Path | None) -> Solution:
    if path is None:
        return solve_instance(instance, "auto", progress=False)
    from matching.reports.verify import verify

    solution = read_solution(path)
    violations = verify(instance, solution)
    if violations:
        fail(f"{path} does not fit the instance: {violations[0]}")
    return solution


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=1, ensure_ascii=False, default=str))


@app.command("why-not")
def why_not_command(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    candidate_id: Annotated[str, typer.Argument(help="The unmatched candidate's id.")],
    solution_path: SolutionFile = None,
    seconds: Seconds = 20.0,
    as_json: AsJson = False,
) -> None:
    """Why a candidate was not matched, and the smallest change that would have placed them (found by re-solving)."""
    from matching.reports.whynot import why_not

    instance = read_instance(instance_path)
    if candidate_id not in {c.id for c in instance.candidates}:
        fail(f"candidate {candidate_id!r} is not in {instance_path}")
    solution = _solution_for(instance, solution_path)
    if any(a.candidate_id == candidate_id for a in solution.assignments):
        fail(f"candidate {candidate_id!r} is matched in this solution", code=1)
    result = why_not(instance, solution, candidate_id, seconds=seconds)
    if as_json:
        _print(result.model_dump(mode="json"))
        return
    typer.echo(f"{candidate_id}: {result.cause}: {result.detail}")
    if result.change_text:
        verdict = "verified by re-solving" if result.verified else "not verified"
        typer.echo(f"Smallest change found ({verdict}, {result.tries} tries):")
        for line in result.change_text:
            typer.echo(f"  - {line}")
        if result.placed_at:
            typer.echo(f"  -> placed at {result.placed_at.offer_id}, paid by {result.placed_at.programme_id}")
    if result.note:
        typer.echo(result.note)


@app.command()
def prices(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    seconds: Seconds = 30.0,
    as_json: AsJson = False,
) -> None:
    """Shadow prices from the LP relaxation: one more krona per programme, one more seat per unit, one more slot."""
    from matching.reports.prices import plain_prices, round_prices
    from matching.rules.prepare import prepare

    prep = prepare(read_instance(instance_path))
    tiers = round_prices(prep, time_limit=seconds)
    if as_json:
        _print([p.model_dump(mode="json") for p in tiers])
        return
    lines = plain_prices(tiers, prep=prep, time_limit=seconds)
    typer.echo("\n".join(lines) if lines else "No budget, seat or slot limits the LP: one more of any places nobody.")


@app.command("what-if")
def what_if(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    change: Annotated[
        list[str],
        typer.Option(
            "--change",
            help='A change as JSON, e.g. \'{"target": "programme", "id": "P1", "set": {"budget": 2000000}}\' '
            "(repeatable).",
        ),
    ],
    solution_path: SolutionFile = None,
    time_limit: TimeLimit = None,
    as_json: AsJson = False,
) -> None:
    """Re-solve with changed inputs, keeping the current matches where possible; print who is added, moved or lost."""
    from matching.input.instance import Pair
    from matching.input.validate import InvalidInstance
    from matching.reports.changes import Change, apply_changes, describe
    from matching.reports.diff import round_diff

    instance = with_policy(read_instance(instance_path), time_limit_s=time_limit)
    try:
        changes = [Change.model_validate_json(text) for text in change]
    except ValueError as exc:
        fail(f"--change: {str(exc).splitlines()[0]}")
    before = _solution_for(instance, solution_path)
    try:
        changed = apply_changes(instance, changes)
    except InvalidInstance as exc:
        fail(str(exc))
    keep = tuple(Pair(candidate_id=a.candidate_id, offer_id=a.offer_id) for a in before.assignments)
    after = solve_instance(with_policy(changed, keep=keep), "auto", progress=False)
    diff = round_diff(before, changed, after)
    if as_json:
        _print({"before": before.placements, "after": after.placements, "diff": diff.model_dump(mode="json")})
        return
    for c in changes:
        typer.echo(f"change: {describe(c, instance)}")
    typer.echo(f"placements: {before.placements} -> {after.placements} ({after.placements - before.placements:+d})")
    typer.echo(diff.summary)
    for move in [*diff.added, *diff.moved, *diff.lost]:
        where = f"{move.before or '-'} -> {move.after or '-'}"
        typer.echo(f"  {move.change:5}  {move.candidate_id}  {where}  {move.why}".rstrip())


@app.command()
def fairness(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    solution_path: SolutionFile = None,
    as_json: AsJson = False,
) -> None:
    """Match rate and mean score by profession, county, country of training and waiting band; the price of floors."""
    from matching.reports.fairness import floor_prices, group_rows

    instance = read_instance(instance_path)
    solution = _solution_for(instance, solution_path)
    rows, floors = group_rows(instance, solution), floor_prices(instance, solution)
    if as_json:
        _print({"groups": [r.model_dump() for r in rows], "floor_prices": [f.model_dump() for f in floors]})
        return
    table = [
        (
            r.group,
            r.value,
            str(r.candidates),
            str(r.matched),
            f"{r.rate:.0%}",
            "-" if r.mean_score is None else f"{r.mean_score:,.0f}",
            "" if r.floor is None else str(r.floor),
        )
        for r in rows
    ]
    typer.echo(text_table(table, ("group", "value", "candidates", "matched", "rate", "mean score", "floor")))
    for f in floors:
        typer.echo(f"{f.floor}: {f.statement}")


@app.command()
def stable(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    time_limit: TimeLimit = None,
    as_json: AsJson = False,
) -> None:
    """Deferred acceptance, the optimiser and the optimiser without blocking pairs, side by side."""
    from matching.input.validate import InvalidInstance
    from matching.solvers.stable import compare

    instance = read_instance(instance_path)
    try:
        result = compare(instance, time_limit_s=time_limit)
    except InvalidInstance as exc:
        fail(str(exc))
    if as_json:
        _print(result.model_dump(mode="json"))
        return
    table = [
        (
            r.method,
            r.status,
            str(r.placements),
            f"{r.score:,}",
            f"{r.granted:,}",
            "-" if r.blocking_pairs is None else str(r.blocking_pairs),
            "" if r.dropped is None else str(r.dropped),
        )
        for r in result.rows
    ]
    typer.echo(text_table(table, ("method", "status", "placed", "score", "granted SEK", "blocking pairs", "dropped")))
    typer.echo("\n".join(result.summary))


@app.command()
def analyse(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    solution_path: SolutionFile = None,
    seconds: Seconds = 60.0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the JSON report here.")] = None,
) -> None:
    """Every report of a round at once (fairness, floor prices, shadow prices, why-not for each unmatched), as JSON."""
    from matching.reports.analysis import analyse as run

    instance = read_instance(instance_path)
    report = run(instance, _solution_for(instance, solution_path), seconds=seconds)
    text = report.model_dump_json(indent=1)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        summary = report.why_not_summary
        typer.echo(f"wrote {output}: {summary.total} unmatched, {summary.verified} with a verified change", err=True)
    else:
        typer.echo(text)


@app.command()
def outlook(
    instance_path: Annotated[Path, typer.Argument(metavar="INSTANCE.json")],
    start: Annotated[
        str | None, typer.Option("--start", help="First month, YYYY-MM (default: the round date's month).")
    ] = None,
    months: Annotated[int, typer.Option("--months", min=1, max=36, help="How many months.")] = 12,
    as_json: AsJson = False,
) -> None:
    """Per profession and month: candidates ready, free slots, supervisor seats and money left, and the shortfall."""
    from datetime import date

    from matching.reports.outlook import outlook as forecast

    instance = read_instance(instance_path)
    first = None
    if start is not None:
        try:
            first = date.fromisoformat(f"{start}-01" if len(start) == 7 else start)
        except ValueError:
            fail(f"--start {start!r}: not a month (YYYY-MM)")
    result = forecast(instance, first, months)
    if as_json:
        _print(result.model_dump(mode="json"))
        return
    header = ("profession", "month", "ready", "slots", "slots to date", "seats free", "money left SEK", "fundable",
              "shortfall")  # fmt: skip
    rows = [
        (
            r.profession,
            r.month,
            str(r.ready),
            str(r.slots),
            str(r.slots_to_date),
            str(r.seats_free),
            f"{r.money_left:,}",
            "-" if r.fundable is None else str(r.fundable),
            f"{r.shortfall:+d}",
        )
        for r in result.rows
    ]
    typer.echo(text_table(rows, header))
