"""`vardmatch bench`: solver comparisons, parameter sweeps, re-rendered reports and GAP instances."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from benchmarks.instances import InstanceSpec, parse_spec
from benchmarks.run import METHODS, Settings, SolverConfig, with_time_limit

bench_app = typer.Typer(
    name="bench",
    help="Benchmarks: the engine against HiGHS, greedy and min-cost flow; parameter sweeps; GAP instances.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Instances = Annotated[
    list[str],
    typer.Argument(
        metavar="INSTANCE...",
        help="SCALE[:SEED][:VARIANT] (scales tiny, small, regional, national, stress or CxO like 120x60; "
        "variants binding, ample, flow) or an instance .json file.",
    ),
]
TimeLimit = Annotated[
    float | None, typer.Option("--time-limit", min=0.01, help="CP-SAT seconds (default: the scale's target).")
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Directory for CSV, JSON, markdown and PNG files.")]
HighsCap = Annotated[float, typer.Option("--highs-cap", min=0.1, help="HiGHS time limit; hard kill past it.")]
LpCap = Annotated[float, typer.Option("--lp-cap", min=0.1, help="Seconds allowed for the LP bound.")]
Grace = Annotated[float, typer.Option("--grace", min=1.0, help="Extra seconds for loading and preparing.")]
Progress = Annotated[
    bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: only on a terminal).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of markdown.")]


def is_checkout(path: Path) -> bool:
    """Whether `path` holds a checkout of Vårdmatch: api/cli.py before api/ was split into layers, api/cli/ after."""
    return (path / "api" / "cli.py").is_file() or (path / "api" / "cli" / "__init__.py").is_file()


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _specs(texts: list[str]) -> list[InstanceSpec]:
    try:
        specs = [parse_spec(t) for t in texts]
    except ValueError as exc:
        _fail(str(exc))
    for spec in specs:
        if spec.path is not None and not spec.path.is_file():
            _fail(f"{spec.path}: no such file")
    return specs


@bench_app.command("run")
def run_command(
    instances: Instances,
    methods: Annotated[str, typer.Option("--methods", help=f"Comma-separated: {', '.join(METHODS)}, auto.")] = ",".join(
        METHODS
    ),
    time_limit: TimeLimit = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="CP-SAT workers.")] = 2,
    hint: Annotated[bool, typer.Option("--hint/--no-hint", help="Warm-start CP-SAT (the engine's default).")] = True,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="CP-SAT deterministic mode.")] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="CP-SAT random seed.")] = 0,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A CP-SAT parameter KEY=VALUE (repeatable).")
    ] = None,
    highs_cap: HighsCap = 120.0,
    lp_cap: LpCap = 300.0,
    lp: Annotated[
        bool, typer.Option("--lp/--no-lp", help="Run the full LP as the reference bound (needs 19.5 GB at stress).")
    ] = True,
    grace: Grace = 120.0,
    out: Out = Path("benchmarks/results/latest"),
    progress: Progress = None,
    as_json: AsJson = False,
) -> None:
    """Run instances through CP-SAT, HiGHS, greedy and min-cost flow; write tables and plots."""
    from benchmarks.report import clean, markdown, write_all
    from benchmarks.run import bench
    from benchmarks.sweep import coerce_param, parse_assignment

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    unknown = [m for m in chosen if m not in (*METHODS, "auto", "lns", "lagrange", "mip", "lp_colgen")]
    if unknown or not chosen:
        _fail(f"--methods: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(METHODS)}, auto")
    try:
        params = {k: coerce_param(k, v) for k, v in (parse_assignment(p) for p in param or [])}
    except ValueError as exc:
        _fail(f"--param: {exc}")
    config = SolverConfig(workers=workers, hint=hint, deterministic=deterministic, seed=seed, params=params)
    settings = Settings(methods=chosen, configs=(config,), highs_cap=highs_cap, lp_cap=lp_cap, lp=lp, grace=grace)
    result = bench(_specs(instances), with_time_limit(settings, time_limit), out, progress)
    paths = write_all(result, out)
    typer.echo(json.dumps(clean(result.rows), indent=1) if as_json else markdown(result))
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}", err=True)


@bench_app.command("sweep")
def sweep_command(
    instances: Instances,
    grid: Annotated[
        list[str],
        typer.Option(
            "--grid",
            help="An axis KEY=V1,V2,... (repeatable): workers, time_limit, hint, deterministic, seed or any "
            "CP-SAT parameter, e.g. --grid linearization_level=0,1,2.",
        ),
    ],
    time_limit: TimeLimit = None,
    lp_cap: LpCap = 300.0,
    grace: Grace = 120.0,
    out: Out = Path("benchmarks/results/sweep"),
    progress: Progress = None,
) -> None:
    """CP-SAT over a grid of parameters on a set of instances; the best configuration per scale."""
    from benchmarks.sweep import best_configs, parse_grid, summarise, summary_table, sweep, write_sweep

    try:
        configs = parse_grid(grid)
    except ValueError as exc:
        _fail(f"--grid: {exc}")
    if time_limit is not None:
        configs = [c if c.time_limit is not None else _limited(c, time_limit) for c in configs]
    settings = Settings(methods=("cp_sat",), configs=tuple(configs), lp_cap=lp_cap, grace=grace)
    result = sweep(_specs(instances), configs, settings, out, progress)
    paths = write_sweep(result, out)
    summary = summarise(result.rows)
    typer.echo(summary_table(summary))
    for scale, config in best_configs(summary).items():
        typer.echo(f"best for {scale}: {config}")
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}", err=True)


def _limited(config: SolverConfig, time_limit: float) -> SolverConfig:
    from dataclasses import replace

    return replace(config, time_limit=time_limit)


@bench_app.command("report")
def report_command(
    results: Annotated[list[Path], typer.Argument(metavar="RESULTS.json...", help="Files written by bench run.")],
    out: Out = Path("benchmarks/results/report"),
    as_sweep: Annotated[bool, typer.Option("--sweep", help="Summarise as a parameter sweep.")] = False,
) -> None:
    """Merge result files of earlier runs into one set of tables and plots."""
    from benchmarks.report import markdown, read_json, write_all
    from benchmarks.sweep import write_sweep

    missing = [str(p) for p in results if not p.is_file()]
    if missing:
        _fail(f"no such file: {', '.join(missing)}")
    try:
        merged = read_json(results)
    except (ValueError, KeyError) as exc:
        _fail(f"not a benchmark result file: {exc}")
    if as_sweep:
        typer.echo(write_sweep(merged, out)["markdown"].read_text(encoding="utf-8"))
        return
    write_all(merged, out)
    typer.echo(markdown(merged))


@bench_app.command("phases")
def phases_command(
    instance: Annotated[str, typer.Argument(metavar="INSTANCE", help="As for bench run: a spec or a .json file.")],
    time_limit: TimeLimit = None,
    out: Out = Path("benchmarks/results/latest"),
) -> None:
    """Time each step of the engine's CP-SAT path on one instance (where the time goes)."""
    from benchmarks.instances import write_instance
    from benchmarks.phases import phases_table, profile

    [spec] = _specs([instance])
    path = write_instance(spec, out / "instances")
    typer.echo(phases_table(profile(path, time_limit if time_limit is not None else spec.time_limit)))


@bench_app.command("gap")
def gap_command(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="GAP files in the OR-Library format.")],
    time_limit: Annotated[float, typer.Option("--time-limit", min=0.01, help="CP-SAT seconds per instance.")] = 10.0,
    sense: Annotated[str, typer.Option("--sense", help="min (cost) or max (profit).")] = "min",
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="CP-SAT workers.")] = 2,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per instance.")] = False,
    plain: Annotated[
        bool, typer.Option("--plain", help="Also solve the textbook CP-SAT model (fields plain_*), as a baseline.")
    ] = False,
    method: Annotated[str, typer.Option("--method", help="The engine's strategy: cp_sat or lns.")] = "cp_sat",
    plain_time_limit: Annotated[
        float | None, typer.Option("--plain-time-limit", min=0.01, help="Seconds for the plain model (default: same).")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Judge each instance by a GAP target of issue 14: or-library, type-d or yagiura (fields gap, target).",
        ),
    ] = None,
) -> None:
    """Solve generalized-assignment instances (OR-Library gap1..gap12, gapa..gapd) with the engine."""
    from benchmarks.gap import GAP_TARGETS, GapFormatError, gap_to_bound, gap_verdict, read_gap, solve_gap, solve_plain

    if sense not in ("min", "max"):
        _fail(f"--sense: {sense!r} is not min or max")
    if target is not None and target not in GAP_TARGETS:
        _fail(f"--target: {target!r} is not one of {', '.join(GAP_TARGETS)}")
    if method not in ("cp_sat", "lns"):
        _fail(f"--method: {method!r} is not cp_sat or lns")
    problems = []
    for path in files:
        if not path.is_file():
            _fail(f"{path}: no such file")
        try:
            problems += read_gap(path)
        except GapFormatError as exc:
            _fail(str(exc))
    rows = []
    limit = plain_time_limit if plain_time_limit is not None else time_limit  # plain CP-SAT's
    for problem in problems:
        row = solve_gap(
            problem,
            sense,  # type: ignore[arg-type]
            time_limit=time_limit,
            workers=workers,
            seed=seed,
            method=method,
        ).as_dict()
        if plain:
            base = solve_plain(problem, sense, time_limit=limit, workers=workers, seed=seed)  # type: ignore[arg-type]
            row |= {f"plain_{k}": v for k, v in base.as_dict().items() if k not in ("file", "index")}
        if target is not None:
            row["gap"] = gap_to_bound(row, sense)  # type: ignore[arg-type]
            row["target"] = gap_verdict(row, target, sense, time_limit, limit)  # type: ignore[arg-type]
        rows.append(row)
        if not as_json:
            typer.echo(_gap_line(problem.agents, problem.jobs, row))
    if as_json:
        typer.echo(json.dumps(rows, indent=1))


@bench_app.command("gap-make")
def gap_make_command(
    output: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the GAP file.")],
    kind: Annotated[
        str, typer.Option("--type", help="c, d or e (the types of Chu and Beasley and of Laguna et al.).")
    ] = "d",
    agents: Annotated[int, typer.Option("--agents", "-m", min=1)] = 5,
    jobs: Annotated[int, typer.Option("--jobs", "-n", min=1)] = 100,
    seeds: Annotated[int, typer.Option("--count", min=1, help="Problems in the file (seeds 0, 1, ...).")] = 1,
) -> None:
    """Write random GAP problems of type C, D or E in the OR-Library format (for runs without OR-Library)."""
    from benchmarks.gap import format_gap, generate_gap

    if kind not in ("c", "d", "e"):
        _fail(f"--type: {kind!r} is not c, d or e")
    problems = [generate_gap(kind, agents, jobs, seed) for seed in range(seeds)]  # type: ignore[arg-type]
    output.write_text(format_gap(problems), encoding="utf-8")
    typer.echo(f"wrote {output}: {seeds} problem(s) of type {kind.upper()}, {agents} agents x {jobs} jobs", err=True)


def _gap_line(agents: int, jobs: int, r: dict[str, object]) -> str:
    line = (
        f"{r['file']} #{r['index']} ({agents}x{jobs}): {r['status']}  objective {r['objective']}  "
        f"bound {r['bound']}  {r['seconds']} s"
    )
    if "plain_status" in r:
        line += f"  | plain CP-SAT: {r['plain_status']} {r['plain_objective']} "
        line += f"bound {r['plain_bound']} {r['plain_seconds']} s"
    if "target" in r:
        gap = r["gap"]
        line += f"  | gap {'—' if gap is None else f'{100 * float(gap):.2f}%'}, target met: {r['target']}"  # type: ignore[arg-type]
    return line


@bench_app.command("load")
def load_command(
    database: Annotated[
        list[str] | None,
        typer.Option(
            "--database",
            help="sqlite, or a postgresql:// URL of a server where a throwaway database may be made (repeatable; "
            "default: sqlite, and VARDMATCH_TEST_POSTGRES_URL when set).",
        ),
    ] = None,
    users: Annotated[int, typer.Option("--users", min=1, max=200, help="Concurrent readers.")] = 20,
    seconds: Annotated[float, typer.Option("--seconds", min=1, max=600, help="Length of each phase.")] = 30.0,
    think: Annotated[float, typer.Option("--think", min=0, max=10, help="A reader's pause between requests.")] = 0.1,
    import_rows: Annotated[int, typer.Option("--import-rows", min=1, max=20_000, help="Rows per import.")] = 2_000,
    round_seconds: Annotated[float, typer.Option("--round-seconds", min=1, max=120, help="Round time limit.")] = 30.0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write load.json and load.md here.")] = None,
    before: Annotated[
        Path | None,
        typer.Option(
            "--before",
            help="A checkout of the code before a change (e.g. `git archive main` unpacked): each database is "
            "measured serving it first, then this checkout, in the same run.",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """One reader alone (idle), N readers at once, then N readers while a round solves and imports run, on
    127.0.0.1; p50/p99 per request and errors, per database (bounded: every phase has a deadline)."""
    import os
    from dataclasses import asdict

    from benchmarks.load import LoadSettings, markdown, run_load, verdict

    targets = database or ["sqlite", *filter(None, [os.environ.get("VARDMATCH_TEST_POSTGRES_URL")])]
    reports = []
    for target in targets:
        if target != "sqlite" and not target.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            _fail(f"--database: {target!r} is neither sqlite nor a postgresql:// URL")
        if before is not None and not is_checkout(before):
            _fail(f"--before: {before} holds no checkout of Vårdmatch (no api/cli)")
        for source, code in [(before, "before"), (None, "after")] if before else [(None, "this")]:
            settings = LoadSettings(
                database_url=None if target == "sqlite" else target,
                users=users,
                seconds=seconds,
                think_s=think,
                import_rows=import_rows,
                round_seconds=round_seconds,
                source=source,
                code=code,
            )
            where = target.split("@")[-1]
            typer.echo(f"load test on {where} ({code}): 1 user, then {users} users, 3 x {seconds:g} s", err=True)
            reports.append(run_load(settings))
    data = [
        {"code": r.settings.code, "backend": r.backend, "rows": r.rows(), "server": r.server,
         "settings": {**asdict(r.settings), "database_url": None, "source": str(r.settings.source or "")},
         "imports": r.imports, "round": r.round, "load_average": r.load_average, "errors": r.errors(),
         "cpu_ms_per_request": r.cpu_ms_per_request,
         "verdict": verdict(r)}
        for r in reports
    ]  # fmt: skip
    text = markdown(reports) + "\n\n" + "\n".join(line for r in reports for line in verdict(r))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "load.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        (out / "load.md").write_text(text + "\n", encoding="utf-8")
    typer.echo(json.dumps(data, indent=1) if as_json else text)


@bench_app.command("jobs")
def jobs_command(
    database: Annotated[
        list[str] | None,
        typer.Option(
            "--database",
            help="sqlite, or a postgresql:// URL of a server where throwaway databases may be made (repeatable; "
            "default: sqlite, and VARDMATCH_TEST_POSTGRES_URL when set).",
        ),
    ] = None,
    workers: Annotated[str, typer.Option("--workers", help="Worker counts, comma-separated.")] = "1,2,4",
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=1000, help="What-ifs submitted at once.")] = 24,
    time_limit: Annotated[float, typer.Option("--time-limit", min=0.1, max=60, help="Each job's solver time.")] = 1.0,
    as_json: AsJson = False,
) -> None:
    """Throughput of the job queue with 1, 2 and 4 workers: jobs per minute and queue wait (bounded)."""
    import os

    from benchmarks.jobs import JobsSettings, markdown, run_jobs

    targets = database or ["sqlite", *filter(None, [os.environ.get("VARDMATCH_TEST_POSTGRES_URL")])]
    counts = tuple(int(n) for n in workers.split(",") if n.strip())
    rows = []
    for target in targets:
        if target != "sqlite" and not target.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            _fail(f"--database: {target!r} is neither sqlite nor a postgresql:// URL")
        settings = JobsSettings(
            database_url=None if target == "sqlite" else target, workers=counts, jobs=jobs, time_limit_s=time_limit
        )
        typer.echo(f"jobs on {target.split('@')[-1]}: {jobs} what-ifs, workers {workers}", err=True)
        rows += run_jobs(settings)
    typer.echo(json.dumps(rows, indent=1) if as_json else markdown(rows))


@bench_app.command("whynot")
def whynot_command(
    instance: Annotated[Path, typer.Argument(metavar="INSTANCE.json", help="A round, e.g. fixtures/demo_region.json.")],
    time_limit: Annotated[float, typer.Option("--time-limit", min=0.01, help="Seconds for solving the round.")] = 10.0,
    seconds: Annotated[float, typer.Option("--seconds", min=1.0, help="The why-not budget, as `analyse`.")] = 60.0,
) -> None:
    """The why-not target: how many unmatched candidates get a verified change or a "none placed them" in budget."""
    from benchmarks.whynot import measure

    if not instance.is_file():
        _fail(f"{instance}: no such file")
    row = measure(instance, time_limit=time_limit, seconds=seconds)
    typer.echo(" | ".join(f"{k} {v}" for k, v in row.items()))
