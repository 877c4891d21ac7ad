"""Generalized assignment (OR-Library format) solved by the engine.

Mapping: each agent is an offer (slots for every job) with its own programme whose budget is the agent's
capacity; each job is a candidate eligible for every agent whose capacity can hold it; the resource a job uses at
an agent is the grant that pair draws from the agent's programme. The engine's lexicographic objective then places
as many jobs as it can (all of them, or the instance is infeasible) and, among those, maximises the score, which is
the cost turned into a non-negative value (largest cost minus cost) or, for maximisation, the profit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ortools.sat.python import cp_model

from benchmarks.engine import run_engine
from benchmarks.run import relative_gap
from matching.input.instance import Instance, Policy
from matching.rules.eligibility import Eligible
from matching.rules.prepare import Options, Prepared
from matching.rules.scoring import Scores
from matching.rules.tables import IntArray, build_tables
from matching.solvers.cpsat import TierResult

Sense = Literal["min", "max"]
_ROUND = date(2027, 1, 15)
_START = "2027-02-01"


class GapFormatError(ValueError):
    """A GAP file that does not follow the OR-Library format; the message names the file and line."""


@dataclass(frozen=True)
class GapProblem:
    """One generalized-assignment instance: cost and resource matrices (agents x jobs) and capacities."""

    file: str
    index: int  # 1-based position in its file
    cost: IntArray
    resource: IntArray
    capacity: IntArray

    @property
    def agents(self) -> int:
        """Number of agents (m)."""
        return int(self.cost.shape[0])

    @property
    def jobs(self) -> int:
        """Number of jobs (n)."""
        return int(self.cost.shape[1])


@dataclass(frozen=True)
class GapResult:
    """The engine's answer for one problem, in the file's own units."""

    file: str
    index: int
    status: str  # OPTIMAL, FEASIBLE, INFEASIBLE or UNKNOWN
    objective: int | None  # total cost (min) or profit (max) of the assignment found
    bound: int | None  # proven lower bound on cost (min) or upper bound on profit (max)
    seconds: float
    assignment: list[int] | None = None  # agent of each job (0-based)
    checked: bool | None = None  # the assignment keeps every capacity and costs `objective` (`evaluate`)

    def as_dict(self) -> dict[str, Any]:
        """The fields `vardmatch bench gap --json` prints."""
        return {
            "file": self.file,
            "index": self.index,
            "objective": self.objective,
            "bound": self.bound,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "checked": self.checked,
        }


# --- parsing ------------------------------------------------------------------------------------------------------


class _Tokens:
    """Whitespace-separated integers with the line each came from."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.items = [(word, n) for n, line in enumerate(text.splitlines(), start=1) for word in line.split()]
        self.at = 0
        self.last_line = len(text.splitlines()) or 1

    def first_line_width(self) -> int:
        """How many numbers share the first line holding any."""
        return sum(1 for _, line in self.items if self.items and line == self.items[0][1])

    def take(self, what: str) -> int:
        """The next integer; `what` names it in the error if there is none."""
        if self.at >= len(self.items):
            raise GapFormatError(f"{self.file}:{self.last_line}: file ends early: expected {what}")
        word, line = self.items[self.at]
        self.at += 1
        try:
            return int(word)
        except ValueError:
            raise GapFormatError(f"{self.file}:{line}: expected an integer ({what}), found {word!r}") from None

    def matrix(self, rows: int, cols: int, what: str, problem: int) -> IntArray:
        """rows x cols integers, row by row."""
        values = [
            self.take(f"{what} of agent {i + 1}, job {j + 1} in problem {problem}") for i, j in _cells(rows, cols)
        ]
        return np.array(values, dtype=np.int64).reshape(rows, cols)

    def line_of_next(self) -> int:
        """The line of the next unread number."""
        return self.items[self.at][1] if self.at < len(self.items) else self.last_line


def _cells(rows: int, cols: int) -> Iterator[tuple[int, int]]:
    for i in range(rows):
        for j in range(cols):
            yield i, j


def parse_gap(text: str, file: str = "<text>") -> list[GapProblem]:
    """Problems of an OR-Library GAP file (gap1..gap12, gapa..gapd); a file may omit the leading problem count."""
    tokens = _Tokens(text, file)
    if not tokens.items:
        raise GapFormatError(f"{file}:1: empty file: expected the number of problems")
    # gap1..gap12 start with the number of problems on a line of its own; single-problem files start with "m n".
    count = tokens.take("the number of problems") if tokens.first_line_width() == 1 else 1
    if count < 1:
        raise GapFormatError(f"{file}:{tokens.items[0][1]}: the number of problems must be positive, found {count}")
    problems = [_problem(tokens, p + 1) for p in range(count)]
    if tokens.at < len(tokens.items):
        word, line = tokens.items[tokens.at]
        raise GapFormatError(f"{file}:{line}: unexpected {word!r} after the last of {count} problem(s)")
    return problems


def _problem(tokens: _Tokens, number: int) -> GapProblem:
    line = tokens.line_of_next()
    agents = tokens.take(f"the number of agents of problem {number}")
    jobs = tokens.take(f"the number of jobs of problem {number}")
    if agents < 1 or jobs < 1:
        raise GapFormatError(f"{tokens.file}:{line}: problem {number} needs at least one agent and one job")
    cost = tokens.matrix(agents, jobs, "cost", number)
    resource = tokens.matrix(agents, jobs, "resource", number)
    capacity = np.array(
        [tokens.take(f"capacity of agent {i + 1} in problem {number}") for i in range(agents)], dtype=np.int64
    )
    if (resource < 0).any() or (capacity < 0).any():
        raise GapFormatError(f"{tokens.file}:{line}: problem {number} has a negative resource or capacity")
    return GapProblem(file=tokens.file, index=number, cost=cost, resource=resource, capacity=capacity)


def read_gap(path: Path) -> list[GapProblem]:
    """Problems of a GAP file on disk."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GapFormatError(f"{path}: not a text file ({exc.reason})") from None
    return parse_gap(text, str(path))


def generate_gap(kind: Literal["c", "d", "e"], agents: int, jobs: int, seed: int) -> GapProblem:
    """A random problem of type C, D (Chu and Beasley) or E (Laguna et al., as used by Yagiura et al.), seeded; not
    the published draws. Capacities are 80 % of an equal share of each agent's total resource.

    - C: resource U[5, 25], cost U[10, 50];
    - D: resource U[1, 100], cost 111 - resource + U[-10, 10] (cost and resource inversely related: hard);
    - E: resource 1 - 10 ln U(0, 1] (truncated to an integer), cost 1000 / resource - 10 U[0, 1] (truncated).
    """
    rng = np.random.default_rng(seed)
    if kind == "c":
        resource = rng.integers(5, 26, size=(agents, jobs))
        cost = rng.integers(10, 51, size=(agents, jobs))
    elif kind == "d":
        resource = rng.integers(1, 101, size=(agents, jobs))
        cost = 111 - resource + rng.integers(-10, 11, size=(agents, jobs))
    else:
        u = 1.0 - rng.random(size=(agents, jobs))  # in (0, 1]
        resource = np.floor(1 - 10 * np.log(u)).astype(np.int64)
        cost = np.floor(1000 / resource - 10 * rng.random(size=(agents, jobs))).astype(np.int64)
    capacity = np.floor(0.8 * resource.sum(axis=1) / agents).astype(np.int64)
    return GapProblem(f"type-{kind}", 1, cost.astype(np.int64), resource.astype(np.int64), capacity)


def format_gap(problems: list[GapProblem]) -> str:
    """Problems in the OR-Library format, with the problem count first."""
    lines = [f" {len(problems)}"]
    for p in problems:
        lines.append(f" {p.agents} {p.jobs}")
        lines += [" " + " ".join(str(v) for v in row) for row in (*p.cost, *p.resource)]
        lines.append(" " + " ".join(str(v) for v in p.capacity))
    return "\n".join(lines) + "\n"


# --- the engine's view ----------------------------------------------------------------------------------------------


def scores_for(problem: GapProblem, sense: Sense) -> tuple[IntArray, int]:
    """Non-negative scores (agents x jobs) to maximise, and the shift that turns a score total back into units."""
    if sense == "min":
        top = int(problem.cost.max())
        return top - problem.cost, top  # cost = jobs x top - score
    low = min(0, int(problem.cost.min()))
    return problem.cost - low, low  # profit = score + jobs x low


def to_units(score: int, shift: int, jobs: int, sense: Sense) -> int:
    """A score total of a full assignment in the file's units (cost or profit)."""
    return jobs * shift - score if sense == "min" else score + jobs * shift


def prepared(problem: GapProblem, scores: IntArray, policy: Policy) -> Prepared:
    """The engine's prepared form of a GAP instance (see the module docstring for the mapping)."""
    instance = _instance(problem, policy)
    fits = problem.resource <= problem.capacity[:, None]  # a job too big for an agent is not eligible there
    agent, job = np.nonzero(fits)
    order = np.lexsort((agent, job))  # pairs sorted by candidate (job), then offer (agent)
    agent, job = agent[order].astype(np.int64), job[order].astype(np.int64)
    n_pairs = len(agent)
    grant = problem.resource[agent, job]
    pairs = Eligible(
        cand=job,
        offer=agent,
        months=np.ones(n_pairs, dtype=np.int64),
        total_cost=grant.copy(),
        fund_pair=np.arange(n_pairs, dtype=np.int64),
        fund_programme=agent.copy(),
        fund_grant=grant,
        fund_earmark=np.full(n_pairs, -1, dtype=np.int64),
    )
    total = scores[agent, job].astype(np.int64)
    budget_binding = problem.resource.sum(axis=1, where=fits) > problem.capacity
    return Prepared(
        instance=instance,
        tables=build_tables(instance),
        pairs=pairs,
        scores=Scores(components={"gap": total}, total=total),
        waiting_days=np.zeros(n_pairs, dtype=np.int64),
        # Agents take any number of jobs: one supervisor per agent whose seats never run out.
        supervisors=Options(
            pair=np.arange(n_pairs, dtype=np.int64),
            choice=agent.copy(),
            amount=np.zeros(n_pairs, dtype=np.int64),
            binding=np.zeros(problem.agents, dtype=bool),
        ),
        programmes=Options(
            pair=pairs.fund_pair, choice=pairs.fund_pair.copy(), amount=grant, binding=budget_binding[agent]
        ),
        unit_cap_binding=np.zeros((problem.agents, problem.agents), dtype=bool),
        budget_binding=budget_binding,
        seat_rows=[],  # agents' seats never run out
    )


def _instance(problem: GapProblem, policy: Policy) -> Instance:
    """A valid Instance holding the agents (units, offers, supervisors, programmes) and the jobs (candidates)."""
    m, n = problem.agents, problem.jobs
    instance = Instance.model_validate(
        {
            "name": f"GAP {problem.file} #{problem.index}",
            "round_date": _ROUND,
            "units": [_unit(i) for i in range(m)],
            "supervisors": [_supervisor(i) for i in range(m)],
            "offers": [_offer(i) for i in range(m)],
            "programmes": [_programme(i, int(problem.capacity[i])) for i in range(m)],
            "candidates": [_job(j) for j in range(n)],
            "policy": policy.model_dump(),
        }
    )
    # An agent takes up to n jobs, past the validated limits of slots (100) and supervisor seats (20); the engine's
    # arrays take any integer, so lift both on the validated objects.
    offers = tuple(o.model_copy(update={"slots": n}) for o in instance.offers)
    supervisors = tuple(s.model_copy(update={"capacity": n}) for s in instance.supervisors)
    return instance.model_copy(update={"offers": offers, "supervisors": supervisors})


def _unit(i: int) -> dict[str, Any]:
    return {
        "id": f"U{i}",
        "hsa_id": f"SE2321000016-U{i}",
        "orgnr": "232100-0016",
        "county": "01",
        "municipality": "0180",
    }


def _supervisor(i: int) -> dict[str, Any]:
    return {"id": f"S{i}", "unit_id": f"U{i}", "profession": "nurse", "available_from": "2027-01-01"}


def _offer(i: int) -> dict[str, Any]:
    return {
        "id": f"A{i}",
        "unit_id": f"U{i}",
        "kind": "training_seat",
        "profession": "nurse",
        "start": _START,
        "months": 1,
        "supervisor_ids": [f"S{i}"],
    }


def _programme(i: int, budget: int) -> dict[str, Any]:
    return {
        "id": f"P{i}",
        "budget": budget,
        "window_start": "2026-01-01",
        "window_end": "2028-12-31",
        "spend_by": "2028-12-31",
    }


def _job(j: int) -> dict[str, Any]:
    return {
        "id": f"J{j}",
        "profession": "nurse",
        "cefr": "C2",
        "residence_county": "01",
        "residence_municipality": "0180",
        "available_from": "2027-01-01",
        "ready_since": "2026-01-01",
    }


# --- solving ------------------------------------------------------------------------------------------------------


def solve_gap(
    problem: GapProblem,
    sense: Sense = "min",
    *,
    time_limit: float = 10.0,
    workers: int = 2,
    seed: int = 0,
    deterministic: bool = False,
    method: str = "cp_sat",
) -> GapResult:
    """Solve one GAP instance with the engine (`cp_sat`, or `lns`: LP bound, priced start and neighbourhood search);
    objective and bound in the file's units."""
    started = time.monotonic()
    policy = Policy(time_limit_s=time_limit, workers=workers, seed=seed, deterministic=deterministic)
    scores, shift = scores_for(problem, sense)
    prep = prepared(problem, scores, policy)
    outcome = run_engine(prep, method)
    seconds = time.monotonic() - started
    return _result(problem, prep, outcome.picks, outcome.tiers, shift, sense, seconds)


def _result(
    problem: GapProblem,
    prep: Prepared,
    picks: list[Any],
    tiers: list[TierResult],
    shift: int,
    sense: Sense,
    seconds: float,
) -> GapResult:
    n = problem.jobs
    placed, score = tiers[0], tiers[-1]
    base = GapResult(problem.file, problem.index, "UNKNOWN", None, None, seconds)
    if placed.objective < n:
        # Every job must be placed: proving that fewer fit is proving the instance infeasible.
        proven = placed.status == "OPTIMAL" or placed.status == "INFEASIBLE"
        return base if not proven else GapResult(problem.file, problem.index, "INFEASIBLE", None, None, seconds)
    assignment = [0] * n
    for p in picks:
        assignment[int(prep.pairs.cand[p.pair])] = int(prep.pairs.offer[p.pair])
    objective = to_units(score.objective, shift, n, sense)
    # Once every job is placed the score bound is exact unless the placement tier was left open, in which case the
    # engine reports a loose bound; each job's best score is always a valid one.
    ceiling = int(np.maximum.reduceat(prep.scores.total, np.searchsorted(prep.pairs.cand, np.arange(n))).sum())
    bound = to_units(min(score.bound, ceiling), shift, n, sense)
    status = "OPTIMAL" if score.status == "OPTIMAL" else "FEASIBLE"
    checked = evaluate(problem, assignment) == objective
    return GapResult(problem.file, problem.index, status, objective, bound, seconds, assignment, checked)


def solve_plain(
    problem: GapProblem, sense: Sense = "min", *, time_limit: float = 10.0, workers: int = 2, seed: int = 0
) -> GapResult:
    """The textbook CP-SAT model of GAP (one Boolean per agent and job), as a baseline for the engine's mapping."""
    started = time.monotonic()
    model = cp_model.CpModel()
    m, n = problem.agents, problem.jobs
    x = [[model.new_bool_var(f"x{i}_{j}") for j in range(n)] for i in range(m)]
    for j in range(n):
        model.add_exactly_one(x[i][j] for i in range(m))
    for i in range(m):
        model.add(sum(int(problem.resource[i, j]) * x[i][j] for j in range(n)) <= int(problem.capacity[i]))
    total = sum(int(problem.cost[i, j]) * x[i][j] for i in range(m) for j in range(n))
    if sense == "min":
        model.minimize(total)
    else:
        model.maximize(total)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    seconds = time.monotonic() - started
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        name = "INFEASIBLE" if status == cp_model.INFEASIBLE else "UNKNOWN"
        return GapResult(problem.file, problem.index, name, None, None, seconds)
    assignment = [next(i for i in range(m) if solver.boolean_value(x[i][j])) for j in range(n)]
    bound = (
        math.ceil(solver.best_objective_bound - 1e-6)
        if sense == "min"
        else math.floor(solver.best_objective_bound + 1e-6)
    )
    objective = round(solver.objective_value)
    return GapResult(
        problem.file,
        problem.index,
        solver.status_name(status),
        objective,
        bound,
        seconds,
        assignment,
        evaluate(problem, assignment) == objective,
    )


def evaluate(problem: GapProblem, assignment: list[int]) -> int | None:
    """Cost (or profit) of an assignment of jobs to agents, or None if it breaks a capacity."""
    jobs = np.arange(problem.jobs)
    agents = np.asarray(assignment, dtype=np.int64)
    used = np.bincount(agents, weights=problem.resource[agents, jobs], minlength=problem.agents)
    if (used > problem.capacity).any():
        return None
    return int(problem.cost[agents, jobs].sum())


# --- targets ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GapTarget:
    """One GAP row of issue 14's targets: the engine's time limit (and plain CP-SAT's), and what it must reach."""

    limit: float
    plain_limit: float | None = None  # where the target compares with plain CP-SAT at its own limit
    proven: bool = False  # the optimum, proven (and the same as plain CP-SAT's where that proves one)
    gap: float | None = None  # at most this gap to the better bound of the two runs
    beats_plain: bool = False  # strictly better than plain CP-SAT's objective


GAP_TARGETS: dict[str, GapTarget] = {
    "or-library": GapTarget(limit=2.0, plain_limit=2.0, proven=True),  # 5-10 agents x 15-60 jobs
    "type-d": GapTarget(limit=20.0, plain_limit=30.0, gap=0.005, beats_plain=True),  # 5-20 x 100-200, type D
    "yagiura": GapTarget(limit=30.0, gap=0.01),  # 10-80 x 400-1,600, types C, D and E
}


def gap_to_bound(row: dict[str, Any], sense: Sense) -> float | None:
    """The objective's gap to the better proven bound of the engine's run and plain CP-SAT's (fields `bound` and
    `plain_bound`), relative to that bound; None without an objective or a bound."""
    bounds = [b for b in (row.get("bound"), row.get("plain_bound")) if b is not None]
    if row.get("objective") is None or not bounds:
        return None
    if sense == "max":
        return relative_gap(row["objective"], min(bounds))
    return relative_gap(-row["objective"], -max(bounds))  # a cost: the same gap on the negated scale


def gap_verdict(row: dict[str, Any], name: str, sense: Sense, time_limit: float, plain_limit: float | None) -> str:
    """Whether one `bench gap` row meets the named target of GAP_TARGETS, and if not, why."""
    target = GAP_TARGETS[name]
    plain_off = target.plain_limit is not None and "plain_status" in row and plain_limit != target.plain_limit
    if time_limit != target.limit or plain_off:
        plain = f", plain CP-SAT at {target.plain_limit:g} s" if target.plain_limit is not None else ""
        return f"— (measured at {target.limit:g} s{plain})"
    if row["status"] not in ("OPTIMAL", "FEASIBLE"):
        return f"no ({row['status']})"
    misses = []
    plain_objective = row.get("plain_objective")
    if target.proven:
        if row["status"] != "OPTIMAL":
            misses.append("not proven")
        elif row.get("plain_status") == "OPTIMAL" and plain_objective != row["objective"]:
            misses.append(f"plain CP-SAT proves {plain_objective}")
    gap = gap_to_bound(row, sense)
    if target.gap is not None and (gap is None or gap > target.gap):
        misses.append("no bound" if gap is None else f"gap {100 * gap:.2f}%")
    if target.beats_plain:
        if "plain_status" not in row:
            misses.append("no plain CP-SAT run (--plain)")
        elif plain_objective is not None and (
            row["objective"] >= plain_objective if sense == "min" else row["objective"] <= plain_objective
        ):
            misses.append(f"not better than plain CP-SAT's {plain_objective}")
    return "yes" if not misses else "no: " + ", ".join(misses)
