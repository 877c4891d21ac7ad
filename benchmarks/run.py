"""Run instances through CP-SAT, HiGHS, greedy and min-cost flow, one child process per run, and compare.

Every figure of one instance is measured in the same benchmark run; the LP relaxation of the full model is solved
once per instance and gives the reference bound for every method's gap.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from tqdm import tqdm  # type: ignore[import-untyped]

from benchmarks.instances import InstanceSpec, write_instance
from benchmarks.worker import Task

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("cp_sat", "highs", "greedy", "flow")
LP_METHODS = ("lp", "lp_colgen")  # bounds, not solutions
ROW_FIELDS = (
    "instance",
    "scale",
    "seed",
    "variant",
    "candidates",
    "offers",
    "pairs",
    "is_flow",
    "method",
    "config",
    "status",
    "placements",
    "score",
    "objective",
    "bound_lp",
    "gap_lp",
    "best_bound",
    "gap",
    "money",
    "prepare_s",
    "solve_s",
    "finish_s",
    "seconds",
    "wall_s",
    "cpu_s",
    "peak_mb",
    "base_mb",
    "violations",
    "time_limit",
    "error",
)
Row = dict[str, Any]
Tick = Callable[[float], None]


@dataclass(frozen=True)
class SolverConfig:
    """CP-SAT settings for one configuration (time_limit None: the instance's scale default)."""

    label: str = "cp_sat"
    workers: int = 2
    time_limit: float | None = None
    hint: bool = True
    deterministic: bool = False
    seed: int = 0
    params: dict[str, bool | int | float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Which methods to run and the caps that keep a benchmark finite."""

    methods: tuple[str, ...] = METHODS
    configs: tuple[SolverConfig, ...] = (SolverConfig(),)
    highs_cap: float = 120.0  # HiGHS time limit; the child is killed at 1.25 x cap + grace
    lp_cap: float = 300.0
    lp: bool = True  # the full LP as the reference bound (at stress scale it needs 19.5 GB: `--no-lp`)
    grace: float = 120.0  # seconds allowed for loading and preparing before a child counts as overrunning


@dataclass(frozen=True)
class Planned:
    """One child-process run."""

    spec: InstanceSpec
    method: str
    config: str
    task: Task
    cap: float


@dataclass(frozen=True)
class ChildRun:
    """The outcome of a child process: its result, wall time and peak resident memory."""

    result: dict[str, Any]
    wall_s: float
    peak_mb: float  # the run's own peak, or its processes' together (HiGHS runs in a worker) where that is higher
    cpu_s: float = 0.0  # user + system CPU time: what the run would take alone on a quiet core


@dataclass
class BenchResult:
    """Rows of one benchmark run, CP-SAT progress over time, and where and how it was measured."""

    rows: list[Row]
    trajectories: dict[str, list[list[float]]]
    meta: dict[str, Any]


# --- child processes ----------------------------------------------------------------------------------------------


def run_child(task: Task, cap: float, tick: Tick | None = None) -> ChildRun:
    """Run a task in a fresh interpreter; kill it after `cap` seconds of wall time."""
    with tempfile.TemporaryDirectory(prefix="vardmatch-bench-") as tmp:
        task_path, result_path, log_path = Path(tmp, "task.json"), Path(tmp, "result.json"), Path(tmp, "stderr.txt")
        task_path.write_text(task.to_json(), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.worker", str(task_path), str(result_path)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=ROOT,
                env=env,
            )
        started = time.monotonic()
        try:
            status, usage, killed, tree_peak = _wait(proc, started, cap, tick)
        except BaseException:
            # Interrupted (Ctrl-C): never leave a solver running on a shared machine.
            proc.kill()
            proc.wait()
            raise
        wall = time.monotonic() - started
        result = _child_result(result_path, log_path, status, killed, cap)
    cpu = usage.ru_utime + usage.ru_stime
    # ru_maxrss is the largest single process's peak (the run's, or a worker's), never their sum: the sampled sum
    # of the whole tree counts a HiGHS worker's 100 MB on top of the run's own memory.
    peak = max(usage.ru_maxrss / 1024, tree_peak / 2**20)
    return ChildRun(result=result, wall_s=wall, peak_mb=peak, cpu_s=cpu)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants now (0 once it is gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue  # ended between the listing and the reading
    return total


def _wait(proc: subprocess.Popen[bytes], started: float, cap: float, tick: Tick | None) -> tuple[int, Any, bool, int]:
    """Poll the child with wait4 (which, unlike Popen.wait, also returns its resource usage), sampling the resident
    memory of it and its own children at each poll; returns the sampled peak in bytes last."""
    killed = False
    tree_peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        tree_peak = max(tree_peak, tree_rss(proc.pid))
        elapsed = time.monotonic() - started
        if elapsed > cap:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            killed = True
            break
        if tick is not None:
            tick(elapsed)
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keeps Popen from waiting again
    return status, usage, killed, tree_peak


def _child_result(result_path: Path, log_path: Path, status: int, killed: bool, cap: float) -> dict[str, Any]:
    if killed:
        return {"status": "TIMEOUT", "error": f"killed after the hard cap of {cap:.0f} s"}
    if result_path.exists():
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
        return result
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    code = os.waitstatus_to_exitcode(status)
    return {"status": "CRASHED", "error": f"exit {code}: {' | '.join(tail)}"}


# --- planning -----------------------------------------------------------------------------------------------------


def plan_instance(spec: InstanceSpec, path: Path, settings: Settings) -> list[Planned]:
    """The runs for one instance: the LP bound first, then each method (CP-SAT once per configuration)."""
    planned = (
        [Planned(spec, "lp", "lp", Task(str(path), "lp"), settings.lp_cap + settings.grace)] if settings.lp else []
    )
    for method in settings.methods:
        if method == "cp_sat":
            planned += [_cp_sat(spec, path, config, settings) for config in settings.configs]
        elif method == "lp_colgen":
            task = Task(str(path), "lp_colgen")
            planned.append(Planned(spec, method, method, task, settings.lp_cap + settings.grace))
        elif method in ("auto", "lns", "lagrange", "mip"):
            # The engine's own dispatch (flow where it applies, else CP-SAT), or the large-round strategy (LP bound
            # by column generation, priced repair, LNS), with the first CP-SAT configuration's limit and workers.
            cp = _cp_sat(spec, path, settings.configs[0], settings)
            planned.append(replace(cp, method=method, config=method, task=replace(cp.task, method=method)))
        elif method == "highs":
            task = Task(str(path), "highs", time_limit=settings.highs_cap)
            planned.append(Planned(spec, "highs", "highs", task, 1.25 * settings.highs_cap + settings.grace))
        else:
            planned.append(Planned(spec, method, method, Task(str(path), method), 600.0 + settings.grace))
    return planned


def _cp_sat(spec: InstanceSpec, path: Path, config: SolverConfig, settings: Settings) -> Planned:
    limit = config.time_limit if config.time_limit is not None else spec.time_limit
    task = Task(
        instance=str(path),
        method="cp_sat",
        time_limit=limit,
        workers=config.workers,
        seed=config.seed,
        deterministic=config.deterministic,
        hint=config.hint,
        params=dict(config.params),
    )
    # The engine spends up to a quarter of the limit on the LP hint, then the limit on CP-SAT; allow for overruns.
    return Planned(spec, "cp_sat", config.label, task, 2.0 * limit + settings.grace)


# --- running ------------------------------------------------------------------------------------------------------


def bench(
    specs: Sequence[InstanceSpec], settings: Settings, workdir: Path, progress: bool | None = None
) -> BenchResult:
    """Every method on every instance, in child processes, with a progress bar on a terminal."""
    started = datetime.now(UTC)
    rows: list[Row] = []
    trajectories: dict[str, list[list[float]]] = {}
    total = len(specs) * (
        int(settings.lp) + sum(len(settings.configs) if m == "cp_sat" else 1 for m in settings.methods)
    )
    with tqdm(total=total, unit="run", disable=_bar_disabled(progress), file=sys.stderr, dynamic_ncols=True) as bar:
        for spec in specs:
            bar.set_description(f"{spec.label}: generating")
            path = write_instance(spec, workdir / "instances")
            runs = _run_instance(spec, plan_instance(spec, path, settings), bar, trajectories)
            rows += finish_rows(runs)
    meta = machine() | {"started": started.isoformat(timespec="seconds"), "settings": _settings_dict(settings)}
    return BenchResult(rows=rows, trajectories=trajectories, meta=meta)


def _bar_disabled(progress: bool | None) -> bool | None:
    # None lets tqdm decide: no bar when stderr is not a terminal, so piped and logged output stays clean.
    return None if progress is None else not progress


def _run_instance(
    spec: InstanceSpec, planned: list[Planned], bar: tqdm[Any], trajectories: dict[str, list[list[float]]]
) -> list[Row]:
    rows: list[Row] = []
    applies_flow = True
    for run in planned:
        if run.method == "flow" and not applies_flow:
            rows.append(_row(run, {"status": "N/A", "error": "min-cost flow does not apply"}, None))
            bar.update(1)
            continue
        bar.set_description(f"{spec.label}: {run.config}")
        child = run_child(run.task, run.cap, _ticker(bar, run))
        rows.append(_row(run, child.result, child))
        if run.method == "lp":
            applies_flow = bool(child.result.get("is_flow", True))
        if child.result.get("trajectory"):
            trajectories[f"{spec.label}|{run.config}"] = child.result["trajectory"]
        bar.update(1)
        _log_plain(bar, rows[-1])
    return rows


def _ticker(bar: tqdm[Any], run: Planned) -> Tick:
    last = [0.0]

    def tick(elapsed: float) -> None:
        if elapsed - last[0] >= 1.0:
            last[0] = elapsed
            bar.set_postfix_str(f"{elapsed:.0f} s", refresh=True)

    return tick


def _log_plain(bar: tqdm[Any], row: Row) -> None:
    """One line per finished run on stderr when there is no bar (logs, CI)."""
    if not bar.disable:
        return
    seconds = row.get("seconds")
    took = f"{seconds:.2f} s" if isinstance(seconds, float) else f"wall {row['wall_s']:.1f} s"
    print(f"{row['instance']} {row['config']}: {row['status']} ({took})", file=sys.stderr, flush=True)


def _row(run: Planned, result: dict[str, Any], child: ChildRun | None) -> Row:
    spec = run.spec
    phases = [float(v) for k in ("prepare_s", "solve_s", "finish_s") if isinstance(v := result.get(k), float)]
    row: Row = dict.fromkeys(ROW_FIELDS)
    row.update(
        instance=spec.label,
        scale=spec.scale,
        seed=spec.seed,
        variant=spec.variant,
        method=run.method,
        config=run.config,
        time_limit=run.task.time_limit if run.method in ("cp_sat", "highs", "auto", "lns", "lagrange", "mip") else None,
        wall_s=round(child.wall_s, 3) if child else 0.0,
        cpu_s=round(child.cpu_s, 3) if child else None,
        peak_mb=round(child.peak_mb, 1) if child else None,
        base_mb=result.get("base_rss_mb"),
        seconds=round(sum(phases), 3) if len(phases) == 3 else None,
    )
    for key in ("candidates", "offers", "pairs", "is_flow", "status", "placements", "score", "money", "violations"):
        row[key] = result.get(key, row[key])
    for key in ("prepare_s", "solve_s", "finish_s"):
        row[key] = round(result[key], 3) if isinstance(result.get(key), float) else None
    row["objective"] = result.get("objective")
    row["own_bound"] = result.get("own_bound")
    row["error"] = result.get("error")
    return row


# --- gaps ---------------------------------------------------------------------------------------------------------


def finish_rows(rows: list[Row]) -> list[Row]:
    """Fill the instance-level columns (size, LP bound) and each row's gaps against the best proven bound."""
    lp = next((r for r in rows if r["method"] == "lp"), None)
    for key in ("candidates", "offers", "pairs", "is_flow"):
        value = next((r[key] for r in rows if r.get(key) is not None), None)
        for r in rows:
            r[key] = value
    bound_lp = lp["objective"] if lp and lp["status"] == "OPTIMAL" else None
    best = best_bound(rows)
    for r in rows:
        r["bound_lp"] = bound_lp
        r["best_bound"] = best
        r.pop("own_bound", None)
    return fill_gaps([{k: r.get(k) for k in ROW_FIELDS} for r in rows])


def fill_gaps(rows: list[Row]) -> list[Row]:
    """Each solved row's gap to the best bound and to the LP bound (recomputed, so definitions stay in step)."""
    for r in rows:
        solved = r["method"] not in LP_METHODS and r["status"] in ("OPTIMAL", "FEASIBLE")
        r["gap_lp"] = relative_gap(r["objective"], r["bound_lp"]) if solved else None
        r["gap"] = relative_gap(r["objective"], r["best_bound"]) if solved else None
    return rows


def best_bound(rows: list[Row]) -> float | None:
    """The tightest upper bound any run proved: the LP, a solver's own bound, or a proven optimum."""
    bounds = [
        float(r["own_bound"]) for r in rows if r.get("own_bound") is not None and r["own_bound"] == r["own_bound"]
    ]
    bounds += [float(r["objective"]) for r in rows if r["method"] not in LP_METHODS and r["status"] == "OPTIMAL"]
    if not bounds:
        return None
    found = [
        float(r["objective"]) for r in rows if r["method"] not in LP_METHODS and r["status"] in ("OPTIMAL", "FEASIBLE")
    ]
    # An LP bound solved in floating point may sit a hair below an integer optimum; never report a negative gap.
    return max(min(bounds), max(found, default=-float("inf")))


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """(bound - objective) / max(1, |bound|), or None when either is unknown."""
    # Relative to the bound rather than the objective, so that an empty solution is 100 % off, not 10^10 %.
    if objective is None or bound is None:
        return None
    return max(0.0, (bound - objective) / max(1.0, abs(bound)))


# --- where it ran -------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """The machine and software versions, for the record."""
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "ortools": version("ortools"),
        "scipy": version("scipy"),
        "commit": _commit(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return out.stdout.strip()


def _settings_dict(settings: Settings) -> dict[str, Any]:
    data = {k: v for k, v in settings.__dict__.items() if k != "configs"}
    data["configs"] = [c.__dict__ for c in settings.configs]
    return data


def with_time_limit(settings: Settings, time_limit: float | None) -> Settings:
    """The settings with every CP-SAT configuration's time limit set (None: keep each scale's default)."""
    if time_limit is None:
        return settings
    return replace(settings, configs=tuple(replace(c, time_limit=time_limit) for c in settings.configs))
