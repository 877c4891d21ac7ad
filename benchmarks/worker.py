"""One benchmark run in its own process: `python -m benchmarks.worker TASK.json RESULT.json`.

A fresh process per run gives each its own peak memory (the parent reads it with wait4) and lets the parent kill a
solver that overruns its time limit without losing the rest of the benchmark.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.engine import Outcome, money_used, run_engine, run_highs
from matching.input.instance import Instance
from matching.input.validate import load_instance
from matching.model.spec import objective_tiers
from matching.reports.verify import verify
from matching.rules.prepare import Prepared, prepare
from matching.rules.tables import IntArray
from matching.solvers.baselines import lp_bound
from matching.solvers.colgen import first_columns, generate_columns
from matching.solvers.matrix import build_matrix
from matching.solvers.objective import combined_values
from matching.solvers.solve import build_solution

SOLVER_METHODS = ("cp_sat", "highs", "greedy", "flow", "auto", "lns", "lagrange", "mip")
METHODS = (*SOLVER_METHODS, "lp", "lp_colgen")


@dataclass(frozen=True)
class Task:
    """What a worker runs: one method on one instance file with one configuration."""

    instance: str
    method: str
    time_limit: float = 10.0
    workers: int = 2
    seed: int = 0
    deterministic: bool = False
    hint: bool = True
    params: dict[str, bool | int | float | str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The task as JSON."""
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Task:
        """A task from its JSON."""
        return cls(**json.loads(text))


def _rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def with_policy(instance: Instance, task: Task) -> Instance:
    """The instance with the task's solver settings (validated, so unknown CP-SAT parameters are refused)."""
    data = instance.policy.model_dump()
    data.update(
        time_limit_s=task.time_limit,
        workers=task.workers,
        seed=task.seed,
        deterministic=task.deterministic,
        solver_parameters={**data["solver_parameters"], **task.params},
    )
    return instance.model_copy(update={"policy": type(instance.policy).model_validate(data)})


def run(task: Task) -> dict[str, Any]:
    """Load, prepare, solve, explain and verify; every phase timed apart."""
    out: dict[str, Any] = {"base_rss_mb": round(_rss_mb(), 1)}
    started = time.monotonic()
    instance = with_policy(load_instance(Path(task.instance).read_bytes()), task)
    out["load_s"] = time.monotonic() - started
    started = time.monotonic()
    prep = prepare(instance)
    out["prepare_s"] = time.monotonic() - started
    values = combined_values(prep, objective_tiers(prep))
    out.update(
        pairs=len(prep.pairs),
        candidates=len(instance.candidates),
        offers=len(instance.offers),
        is_flow=prep.is_flow,
        ceiling=_ceiling(prep, values),
    )
    if task.method == "lp":
        return out | _lp(prep, values)
    if task.method == "lp_colgen":
        return out | _lp_colgen(prep, values)
    if task.method == "flow" and not prep.is_flow:
        return out | {"status": "N/A", "error": "min-cost flow does not apply: a supervisor, budget or cap can bind"}
    # `started` is when prepare began: the time limit and the trajectory count from there (end to end, as `solve`).
    return out | _solve(instance, prep, values, task, started)


def _ceiling(prep: Prepared, values: IntArray) -> int:
    """Sum over candidates of their best pair: the trivial bound."""
    best = np.zeros(len(prep.instance.candidates), dtype=np.int64)
    np.maximum.at(best, prep.pairs.cand, values)
    return int(best.sum())


def _lp_colgen(prep: Prepared, values: IntArray) -> dict[str, Any]:
    """The same LP bound by column generation over the programme choice (`matching.solvers.colgen`)."""
    started = time.monotonic()
    m = build_matrix(prep)
    c = m.objective(values)
    _, bound, converged, rounds = generate_columns(m, c, first_columns(m), started + 300.0)
    seconds = time.monotonic() - started
    found = bound if math.isfinite(bound) else None
    status = "OPTIMAL" if converged else ("FEASIBLE" if found is not None else "UNKNOWN")
    return {
        "status": status,
        "objective": found,
        "own_bound": found,
        "solve_s": seconds,
        "finish_s": 0.0,
        "rounds": rounds,
    }


def _lp(prep: Prepared, values: IntArray) -> dict[str, Any]:
    started = time.monotonic()
    bound: float | None = lp_bound(prep, values)
    seconds = time.monotonic() - started
    if bound is not None and math.isnan(bound):  # HiGHS did not finish
        bound = None
    status = "OPTIMAL" if bound is not None else "UNKNOWN"
    return {"status": status, "objective": bound, "own_bound": bound, "solve_s": seconds, "finish_s": 0.0}


def _solve(instance: Instance, prep: Prepared, values: IntArray, task: Task, t0: float) -> dict[str, Any]:
    trajectory: list[list[float]] = []

    def watch(p: dict[str, float | int | str]) -> None:
        # The objective and bound of the tier being decided; reports of a phase alone carry neither.
        if "objective" in p and "bound" in p:
            trajectory.append([round(time.monotonic() - t0, 3), float(p["objective"]), float(p["bound"])])

    started = time.monotonic()
    outcome = _outcome(prep, values, task, watch, t0)
    solve_s = time.monotonic() - started
    started = time.monotonic()
    solution = build_solution(prep, outcome.picks, outcome.tiers, outcome.method, solve_s)
    finish_s = time.monotonic() - started
    chosen = [p.pair for p in outcome.picks]
    return {
        "status": outcome.status,
        "method_used": outcome.method,
        "objective": float(values[chosen].sum()) if chosen else 0.0,
        "own_bound": outcome.bound,
        "placements": len(chosen),
        "score": int(prep.scores.total[chosen].sum()) if chosen else 0,
        "money": money_used(prep, outcome.picks),
        "solve_s": solve_s,
        "finish_s": finish_s,
        "violations": len(verify(instance, solution)),
        "trajectory": trajectory,
    }


def _outcome(prep: Prepared, values: IntArray, task: Task, watch: Any, t0: float) -> Outcome:
    if task.method == "highs":
        return run_highs(prep, values, task.time_limit)
    if task.method not in SOLVER_METHODS:
        raise ValueError(f"unknown method {task.method!r}; known: {', '.join(METHODS)}")
    # The time limit counts from before prepare, as `matching.solvers.solve.solve` counts it (end to end).
    progress = watch if task.method == "cp_sat" else None
    return run_engine(prep, task.method, hint=task.hint, progress=progress, started=t0)


def main(argv: list[str]) -> int:
    """Run the task in argv[1] and write its result to argv[2]."""
    task = Task.from_json(Path(argv[1]).read_text(encoding="utf-8"))
    try:
        result = run(task)
    except Exception as exc:  # reported to the parent as the run's error, not as a crash of the benchmark
        result = {"status": "ERROR", "error": f"{type(exc).__name__}: {exc}"}
    Path(argv[2]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
