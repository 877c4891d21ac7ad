"""The CP-SAT backend: the spec's core (one Boolean per eligible pair, plus supervisor and programme choices only
where a capacity, budget or cap can bind) loaded into CP-SAT's proto from arrays, and the searches over it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from matching.input.instance import Policy
from matching.model.spec import Spec, build_spec, objective_tiers
from matching.rules.prepare import Prepared
from matching.rules.tables import IntArray
from matching.solvers.clock import limit_cp_sat
from matching.solvers.greedy import Pick
from matching.solvers.objective import tier_ceiling

Progress = Callable[[dict[str, float | int | str]], None]


@dataclass
class Model:
    """The CP-SAT model of a round, written straight from the spec's core into CP-SAT's proto: one variable per
    core column (x per pair first), one linear constraint per row that can bind. No row is written by hand here."""

    prep: Prepared
    spec: Spec | None = None
    model: cp_model.CpModel = field(default_factory=cp_model.CpModel)
    x: list[cp_model.IntVar] = field(default_factory=list)
    columns: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # spec column per model variable

    def accepts(self, picks: list[Pick]) -> bool:
        """True when picks from outside the model (a greedy start) meet every row, side rules included."""
        spec = self._spec()
        return not len(spec.violations(spec.vector(*_columns(picks))))

    def _spec(self) -> Spec:
        if self.spec is None:
            self.spec = build_spec(self.prep, objective_tiers(self.prep))
        return self.spec

    def build(self) -> Model:
        """Add every variable and binding row of the spec's core."""
        spec = self._spec()
        core = spec.core()
        self.columns = core.columns
        proto = self.model.proto
        lows = np.ceil(core.var_lb - 1e-9).astype(np.int64).tolist()
        highs = np.floor(core.var_ub + 1e-9).astype(np.int64).tolist()
        for lo, hi in zip(lows, highs, strict=True):
            proto.variables.add().domain.extend([lo, hi])
        matrix = core.matrix
        indptr, indices = matrix.indptr.tolist(), matrix.indices.tolist()
        coefs = np.round(matrix.data).astype(np.int64).tolist()  # every coefficient is a whole number (SEK or 1)
        lbs = [cp_model.INT_MIN if not math.isfinite(v) else math.ceil(v - 1e-9) for v in core.lb.tolist()]
        ubs = [cp_model.INT_MAX if not math.isfinite(v) else math.floor(v + 1e-9) for v in core.ub.tolist()]
        for r in range(len(lbs)):
            lo, hi = indptr[r], indptr[r + 1]
            linear = proto.constraints.add().linear
            linear.vars.extend(indices[lo:hi])
            linear.coeffs.extend(coefs[lo:hi])
            linear.domain.extend([lbs[r], ubs[r]])
        self.x = [self.model.get_bool_var_from_proto_index(k) for k in range(spec.n_pairs)]
        return self

    def hint(self, picks: list[Pick]) -> None:
        """Start the search from a solution, every variable hinted (a complete hint CP-SAT can take as it is)."""
        self.model.clear_hints()  # type: ignore[no-untyped-call]
        values = np.round(self._spec().vector(*_columns(picks))[self.columns]).astype(np.int64).tolist()
        hint = self.model.proto.solution_hint
        hint.vars.extend(range(len(values)))
        hint.values.extend(values)

    def read(self, solver: cp_model.CpSolver) -> list[Pick]:
        """The solver's solution as picks (free supervisors and programmes where the model has no choice)."""
        spec = self._spec()
        full = np.zeros(spec.n_vars, dtype=np.float64)
        full[self.columns] = np.asarray(solver.response_proto.solution, dtype=np.float64)[: len(self.columns)]
        chosen, sups, funds = spec.choices(full)
        return [Pick(int(k), int(v), int(f)) for k, v, f in zip(chosen, sups, funds, strict=True)]


def _columns(picks: list[Pick]) -> tuple[IntArray, IntArray, IntArray]:
    return (
        np.array([p.pair for p in picks], dtype=np.int64),
        np.array([p.supervisor for p in picks], dtype=np.int64),
        np.array([p.fund_row for p in picks], dtype=np.int64),
    )


@dataclass(frozen=True)
class TierResult:
    """Outcome of optimising one objective tier."""

    name: str
    status: str
    objective: int
    bound: int
    seconds: float


class _Watcher(cp_model.CpSolverSolutionCallback):
    """Reports progress at most every `interval` seconds."""

    def __init__(self, tier: str, progress: Progress, interval: float) -> None:
        super().__init__()
        self.tier, self.progress, self.interval = tier, progress, interval
        self.last = 0.0
        self.started = time.monotonic()

    def on_solution_callback(self) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        obj, bound = self.objective_value, self.best_objective_bound
        self.progress(
            {
                "tier": self.tier,
                "objective": obj,
                "bound": bound,
                "gap": relative_gap(obj, bound),
                "elapsed": round(now - self.started, 3),
            }
        )


def relative_gap(objective: float, bound: float) -> float:
    """|bound - objective| / max(1, |objective|)."""
    return abs(bound - objective) / max(1.0, abs(objective))


def solve_combined(
    built: Model,
    tiers: Sequence[tuple[str, IntArray]],
    weights: list[int],
    picks: list[Pick],
    progress: Progress | None = None,
    progress_interval: float = 1.0,
    known_bound: float | None = None,
    seconds: float | None = None,
) -> tuple[list[Pick], list[TierResult]]:
    """Maximise all tiers at once with weights that make each outweigh the next; report each tier's bound.

    One search keeps improving later tiers while earlier ones are still open, which finds far better
    solutions than optimising the tiers one after another.
    """
    expr = _combined(built, tiers, weights)
    built.model.maximize(expr)
    if known_bound is not None:
        built.model.add(expr <= math.floor(known_bound + 1e-6))  # a valid cut: the bound holds for every solution
    built.hint(picks)
    solver = cp_model.CpSolver()
    _configure(solver, built.prep.instance.policy, seconds or built.prep.instance.policy.time_limit_s)
    started = time.monotonic()
    status = solver.solve(built.model, _Watcher("combined", progress, progress_interval) if progress else None)
    seconds = time.monotonic() - started
    if status in (cp_model.INFEASIBLE, cp_model.MODEL_INVALID):
        return [], [TierResult(name, solver.status_name(status), 0, 0, seconds) for name, _ in tiers]
    options = [built.read(solver)] if status != cp_model.UNKNOWN else []
    if built.accepts(picks):
        options.append(picks)
    if not options:
        return [], [TierResult(name, "UNKNOWN", 0, 0, seconds) for name, _ in tiers]
    best = max(options, key=lambda found: tier_totals(found, tiers))
    bounds = [math.floor(b + 1e-6) for b in (known_bound, solver.best_objective_bound) if b is not None]
    if status == cp_model.UNKNOWN:
        bounds = bounds[:1] if known_bound is not None else []
    return best, _split_bound(built.prep, best, tiers, weights, min(bounds) if bounds else None, seconds)


def _combined(built: Model, tiers: Sequence[tuple[str, IntArray]], weights: list[int]) -> cp_model.LinearExpr:
    values = sum(w * v for w, (_, v) in zip(weights, tiers, strict=True))
    assert isinstance(values, np.ndarray)
    used = np.flatnonzero(values)
    expr: cp_model.LinearExpr = cp_model.LinearExpr.weighted_sum(
        [built.x[k] for k in used], [int(values[k]) for k in used]
    )
    return expr


def solve_restricted(
    built: Model,
    tiers: Sequence[tuple[str, IntArray]],
    weights: list[int],
    allowed: IntArray,
    picks: list[Pick],
    seconds: float,
) -> list[Pick]:
    """The best solution using only the `allowed` pairs (within `seconds`), or `picks` if none is better."""
    keep = np.zeros(len(built.x), dtype=bool)
    keep[allowed] = True
    for k in np.flatnonzero(~keep):
        built.model.add(built.x[k] == 0)
    built.model.maximize(_combined(built, tiers, weights))
    built.hint(picks)
    solver = cp_model.CpSolver()
    # Small models: one LP-guided worker with the stronger linearisation proves them fastest.
    policy = built.prep.instance.policy
    _configure(solver, policy.model_copy(update={"workers": 1}), seconds)
    status = solver.solve(built.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return picks
    found = built.read(solver)
    better = not built.accepts(picks) or tier_totals(found, tiers) > tier_totals(picks, tiers)
    return found if better else picks


def _split_bound(
    prep: Prepared,
    picks: list[Pick],
    tiers: Sequence[tuple[str, IntArray]],
    weights: list[int],
    bound: int | None,
    seconds: float,
) -> list[TierResult]:
    """Per-tier objective and bound from a bound on the weighted sum: a tier's bound is exact only while every
    earlier tier is proven optimal; after the first open tier, later bounds are the sum of each candidate's best."""
    totals = tier_totals(picks, tiers)
    results = []
    rest = bound
    for (name, values), weight, total in zip(tiers, weights, totals, strict=True):
        ceiling = tier_ceiling(prep, values)
        if rest is None:
            results.append(TierResult(name, "FEASIBLE", total, max(total, ceiling), seconds))
            continue
        tier_bound = min(rest // weight, ceiling)
        proven = tier_bound <= total
        results.append(TierResult(name, "OPTIMAL" if proven else "FEASIBLE", total, max(total, tier_bound), seconds))
        rest = rest - total * weight if proven else None
    return results


def solve_tiers(
    built: Model,
    tiers: Sequence[tuple[str, IntArray]],
    picks: list[Pick],
    progress: Progress | None = None,
    progress_interval: float = 1.0,
    *,
    seconds: float | None = None,
    bounds: Sequence[int | None] = (),
    on_tier: Callable[[list[Pick], TierResult], None] | None = None,
) -> tuple[list[Pick], list[TierResult]]:
    """Maximise each tier in turn, each earlier tier held at what it reached, each search hinted with the previous
    tier's solution (or `picks`), within `seconds` in all (the policy's limit by default); `on_tier` hears of each
    tier's solution and result.

    A tier but the last gets up to half the time left, and stops as soon as it reaches its known bound (`bounds`,
    e.g. the LP's, added as a cut so that reaching it proves the tier). A tier that finds nothing keeps the previous
    tier's solution, and its value is held, so no later tier can lose what an earlier one reached.
    """
    policy = built.prep.instance.policy
    budget = policy.time_limit_s if seconds is None else seconds
    deadline = time.monotonic() + budget
    spent = 0.0  # deterministic time used (deterministic rounds share out `budget` by it, never by the clock)
    results: list[TierResult] = []
    current = picks if built.accepts(picks) else []
    for position, (name, values) in enumerate(tiers):
        used = np.flatnonzero(values)
        expr = cp_model.LinearExpr.weighted_sum([built.x[k] for k in used], [int(values[k]) for k in used])
        built.model.maximize(expr)
        known = bounds[position] if position < len(bounds) else None
        if known is not None:
            built.model.add(expr <= known)  # a valid cut: reaching it proves the tier at once
        built.hint(current or picks)
        share = 1.0 if position == len(tiers) - 1 else 0.5
        solver = cp_model.CpSolver()
        left = budget - spent if policy.deterministic else deadline - time.monotonic()
        _configure(solver, policy, max(0.05, share * left))
        started = time.monotonic()
        watcher = _Watcher(name, progress, progress_interval) if progress else None
        status = solver.solve(built.model, watcher)
        elapsed = time.monotonic() - started
        spent += solver.response_proto.deterministic_time
        if status == cp_model.INFEASIBLE or status == cp_model.MODEL_INVALID:
            results.append(TierResult(name, solver.status_name(status), 0, 0, elapsed))
            return [], results
        if status == cp_model.UNKNOWN and not current:
            results.append(TierResult(name, "UNKNOWN", 0, 0, elapsed))
            return [], results
        if status == cp_model.UNKNOWN:
            # No solution in time: keep the previous one (it satisfies every earlier tier) and report its value.
            value = int(values[[p.pair for p in current]].sum()) if current else 0
            bound = max(value, known if known is not None else tier_ceiling(built.prep, values))
            results.append(TierResult(name, "OPTIMAL" if bound == value else "FEASIBLE", value, bound, elapsed))
            built.model.add(expr >= value)
            if on_tier is not None:
                on_tier(current, results[-1])
            continue
        found = built.read(solver)
        if current and tier_totals(current, tiers[: position + 1]) > tier_totals(found, tiers[: position + 1]):
            found = current  # the hint was better than what the search kept (never seen; kept for safety)
        value = int(values[[p.pair for p in found]].sum()) if found else 0
        bound = max(value, math.floor(solver.best_objective_bound + 1e-6))
        results.append(TierResult(name, "OPTIMAL" if bound == value else "FEASIBLE", value, bound, elapsed))
        current = found
        built.model.add(expr >= value)
        if on_tier is not None:
            on_tier(current, results[-1])
    return current, results


def tier_totals(picks: list[Pick], tiers: Sequence[tuple[str, IntArray]]) -> list[int]:
    """Each tier's total for a set of picks; lists compare lexicographically."""
    chosen = np.array([p.pair for p in picks], dtype=np.int64)
    return [int(values[chosen].sum()) for _, values in tiers]


def _configure(solver: cp_model.CpSolver, policy: Policy, seconds: float) -> None:
    params = solver.parameters
    params.random_seed = policy.seed
    params.num_workers = 1 if policy.deterministic else policy.workers
    params.log_search_progress = False
    if params.num_workers == 1:
        # A single worker runs only the LP-guided search; the stronger linearisation pays off on assignments.
        params.linearization_level = 2
    # Deterministic time instead of wall time makes repeated runs identical (a wall-clock guard stays).
    limit_cp_sat(params, seconds, policy.deterministic)
    for key, value in policy.solver_parameters.items():
        setattr(params, key, value)
