"""The LP/MIP backend: the spec's core loaded in bulk, LPs solved by GLOP through OR-Tools' model builder, MIPs by
HiGHS through MathOpt (or SCIP through the model builder).

Lexicographic tiers are a sequence of solves: most placements first, then, with that count held, the best score
(never one weighted sum, whose huge coefficients slow every MIP solver down). `highspy` cannot be loaded beside
OR-Tools; the HiGHS inside the OR-Tools wheel can.

MIPs go to HiGHS through MathOpt, not the model builder: in OR-Tools 9.15 the model builder reports a HiGHS MIP
stopped by its time or node limit as UNKNOWN with no solution, dropping the incumbent HiGHS found and its bound;
MathOpt returns both (FEASIBLE).
"""

from __future__ import annotations

import datetime
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from ortools.linear_solver.python import model_builder_helper as mbh
from ortools.math_opt import model_pb2, parameters_pb2, result_pb2, rpc_pb2
from ortools.math_opt.python import mathopt
from ortools.math_opt.solvers import highs_pb2

from matching.model.spec import Core, Spec, Tier
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers import highs_worker
from matching.solvers.clock import guard
from matching.solvers.simplex import Arrays, model_proto

# Statuses of the model builder, as the engine names them.
_OPTIMAL, _FEASIBLE = mbh.SolveStatus.OPTIMAL, mbh.SolveStatus.FEASIBLE
_INFEASIBLE = (mbh.SolveStatus.INFEASIBLE,)


@dataclass(frozen=True)
class LinearResult:
    """One solve: the status, the spec's column values (None without a solution), objective and dual bound, and
    one dual value per core row (LP only; empty otherwise)."""

    status: str  # OPTIMAL, FEASIBLE, INFEASIBLE or UNKNOWN
    values: FloatArray | None
    objective: float
    bound: float
    duals: FloatArray
    seconds: float
    reduced: FloatArray | None = None  # LP only: per pair column, its reduced cost (maximising: <= 0 at zero)


# A model as arrays: column lower and upper bounds, objective, row lower and upper bounds, row matrix.


@dataclass(frozen=True)
class Held:
    """A row over the pair columns kept at or above a level: an earlier tier at its optimum."""

    values: IntArray
    at_least: float


def _parameters(solver: str) -> str:
    # The model builder runs HiGHS only for LPs (lp_solver="highs"); MIPs go to HiGHS through MathOpt.
    return "output_flag=false" if solver == "highs" else ""


class LinearBackend:
    """The spec's core (or the full spec) as an LP or MIP, re-solved per objective with held tiers."""

    def __init__(
        self, spec: Spec, *, integral: bool = True, solver: str = "highs", full: bool = False, lp_solver: str = "glop"
    ) -> None:
        # LPs go to GLOP: the duals that the model builder reports for HiGHS do not satisfy the LP's optimality
        # conditions (seen on a three-row example), and reduced costs need exact duals.
        self.spec, self.integral, self.solver, self.lp_solver = spec, integral, solver, lp_solver
        self.core = _full_core(spec) if full else spec.core()
        self.held: list[Held] = []
        self.deterministic_nodes: int | None = None
        prep = spec.prep
        pair_of = np.concatenate(
            [
                np.arange(spec.n_pairs),
                prep.supervisors.pair,
                prep.pairs.fund_pair,
                np.zeros(spec.n_vars - spec.over_at, dtype=np.int64),
            ]
        ).astype(np.int64)
        # Per loaded column, the pair it belongs to (overflow columns belong to every pair: mapped to an allowed
        # one below by never holding them at 0).
        self._column_pair = pair_of[self.core.columns]
        self._always = self.core.columns >= spec.over_at

    def _arrays(self, objective: FloatArray, allowed: BoolArray | None, extra: Sequence[Held]) -> Arrays:
        """The model as arrays: column bounds, objective, row bounds and the row matrix (held tiers included)."""
        core, n = self.core, self.spec.n_pairs
        var_ub = core.var_ub
        if allowed is not None:
            # A pair outside the neighbourhood is held at 0, and so are its supervisor and funding columns (which
            # lets presolve drop them all).
            var_ub = np.where(allowed[self._column_pair] | self._always, var_ub, 0.0)
        matrix, lb, ub = core.matrix, core.lb, core.ub
        # A copy: a solve in a thread may read this while the next tier adds a row.
        held = [*self.held, *extra]
        if held:
            # x columns come first in the core, so a tier over the pairs is a row over its first n columns.
            rows = sp.csr_matrix(
                np.vstack([np.asarray(h.values, dtype=np.float64) for h in held]), shape=(len(held), n)
            )
            rows.resize((len(held), matrix.shape[1]))
            matrix = sp.csr_matrix(sp.vstack([matrix, rows], format="csr"))
            lb = np.concatenate([lb, [h.at_least for h in held]])
            ub = np.concatenate([ub, np.full(len(held), math.inf)])
        return (core.var_lb, var_ub, objective[core.columns], lb, ub, sp.csr_matrix(matrix, dtype=np.float64))

    def _load(self, arrays: Arrays, integral: bool) -> mbh.ModelBuilderHelper:
        helper = mbh.ModelBuilderHelper()
        # The helper may keep views of these arrays until the solve: the caller holds them as long as the helper
        # lives (locally: a MIP left running in a thread must not lose them when the next solve starts).
        helper.fill_model_from_sparse_data(*arrays)  # type: ignore[arg-type]
        helper.set_maximize(True)
        if integral:
            for i in np.flatnonzero(self.core.integer).tolist():
                helper.set_var_integrality(i, True)
        return helper

    def solve(
        self,
        values: IntArray,
        seconds: float,
        *,
        integral: bool | None = None,
        allowed: BoolArray | None = None,
        extra: Sequence[Held] = (),
        stop: threading.Event | None = None,
    ) -> LinearResult:
        """Maximise `values` over the pairs within `seconds`, the held tiers and `extra` rows kept (as an LP unless
        `integral`), only `allowed` pairs used when given (a neighbourhood: its bound is not the round's). A HiGHS
        MIP runs in a worker process: setting `stop`, or `seconds` passing, ends it at once (UNKNOWN, no solution)."""
        integral = self.integral if integral is None else integral
        # No solution hints: with hints, the HiGHS of the OR-Tools 9.15 wheel crashes the process (seen on the demo
        # region); a tier that finds nothing falls back to the caller's solution instead.
        started = time.monotonic()
        arrays = self._arrays(self.spec.objective(values), allowed, extra)
        if integral and self.solver == "highs":
            return self._highs_mip(arrays, seconds, started, stop)
        helper = self._load(arrays, integral)
        name = self.solver if integral else self.lp_solver
        solver = mbh.ModelSolverHelper(name)
        # HiGHS overruns its limit by up to a third on these models (presolve and root LP are not interrupted).
        solver.set_time_limit_in_seconds(max(0.05, 0.75 * seconds))
        solver.set_solver_specific_parameters(_parameters(name))
        solver.solve(helper)
        status = solver.status()
        elapsed = time.monotonic() - started
        if status in _INFEASIBLE:
            return LinearResult("INFEASIBLE", None, 0.0, 0.0, np.zeros(0), elapsed)
        if status not in (_OPTIMAL, _FEASIBLE) or not solver.has_solution():
            return LinearResult("UNKNOWN", None, 0.0, math.inf, np.zeros(0), elapsed)
        full = np.zeros(self.spec.n_vars, dtype=np.float64)
        full[self.core.columns] = np.asarray(solver.variable_values(), dtype=np.float64)
        objective = float(solver.objective_value())
        bound = objective if status == _OPTIMAL else float(solver.best_objective_bound())
        duals = np.asarray(solver.dual_values(), dtype=np.float64) if not integral else np.zeros(0)
        reduced = None
        if not integral and status == _OPTIMAL:
            # c - A^T y over the loaded columns; x columns come first.
            loaded_objective, matrix = arrays[2], arrays[5]
            reduced = (loaded_objective - matrix.T @ duals)[: self.spec.n_pairs]
        return LinearResult(
            "OPTIMAL" if status == _OPTIMAL else "FEASIBLE",
            full,
            objective,
            max(objective, bound),
            duals,
            elapsed,
            reduced,
        )

    def _highs_mip(self, arrays: Arrays, seconds: float, started: float, stop: threading.Event | None) -> LinearResult:
        """The MIP by HiGHS through MathOpt, in a worker process: at a time or node limit, HiGHS's incumbent
        (FEASIBLE) and its bound; stopped, or past `seconds` (HiGHS overruns its own limit), nothing (UNKNOWN)."""
        proto = model_proto(arrays, self.core.integer)
        params = mathopt.SolveParameters(
            # HiGHS overruns its limit by up to a third on these models (presolve and root LP are not interrupted).
            time_limit=datetime.timedelta(seconds=max(0.05, 0.75 * seconds)),
            # Values are integers: a gap below one proves the integer optimum, however large the objective.
            relative_gap_tolerance=0.0,
            absolute_gap_tolerance=0.999,
            # A node budget instead of the wall clock: the same input then gives the same result.
            node_limit=self.deterministic_nodes,
            # MathOpt has no thread count for HiGHS; its own option does.
            highs=highs_pb2.HighsOptionsProto(int_options={"threads": 1} if self.deterministic_nodes else {}),
        )
        request = highs_request(proto, params)
        # Deterministic rounds stop by the node budget, never by the clock (the caller's guard is far out).
        wall = started + seconds - time.monotonic() if self.deterministic_nodes is None else guard(seconds)
        answer = solve_in_worker(request, stop, wall)
        elapsed = time.monotonic() - started
        if answer is None:
            return LinearResult("UNKNOWN", None, 0.0, math.inf, np.zeros(0), elapsed)
        model = mathopt.Model.from_model_proto(proto)
        result = mathopt.parse_solve_result(answer, model, validate=False)
        reason = result.termination.reason
        if reason == mathopt.TerminationReason.INFEASIBLE:
            return LinearResult("INFEASIBLE", None, 0.0, 0.0, np.zeros(0), elapsed)
        # Maximising: the dual bound is an upper bound (infinite when HiGHS has none).
        bound = float(result.termination.objective_bounds.dual_bound)
        if not result.has_primal_feasible_solution():
            return LinearResult("UNKNOWN", None, 0.0, bound if math.isfinite(bound) else math.inf, np.zeros(0), elapsed)
        full = np.zeros(self.spec.n_vars, dtype=np.float64)
        full[self.core.columns] = result.variable_values(list(model.variables()))
        objective = float(result.objective_value())
        optimal = reason == mathopt.TerminationReason.OPTIMAL
        bound = objective if optimal else max(objective, bound)
        return LinearResult("OPTIMAL" if optimal else "FEASIBLE", full, objective, bound, np.zeros(0), elapsed)

    def hold(self, values: IntArray, at_least: float) -> None:
        """Keep a tier at or above a level in every later solve."""
        self.held.append(Held(values, at_least))


def solve_in_worker(
    request: rpc_pb2.SolveRequest, stop: threading.Event | None, wall: float
) -> result_pb2.SolveResultProto | None:
    """The request solved in a HiGHS worker process (`matching.solvers.highs_worker`); None when `stop` was set or
    `wall` seconds passed first, or when the worker ended without an answer (the HiGHS of this wheel has crashed a
    process before, on hints): the caller goes on with what it had."""
    try:
        return highs_worker.solve(request, stop=stop, wall_limit=max(0.05, wall))
    except (highs_worker.Stopped, highs_worker.WorkerDied):
        return None


def highs_request(proto: model_pb2.ModelProto, params: mathopt.SolveParameters) -> rpc_pb2.SolveRequest:
    """A MathOpt request for HiGHS."""
    return rpc_pb2.SolveRequest(solver_type=parameters_pb2.SOLVER_TYPE_HIGHS, model=proto, parameters=params.to_proto())


def _full_core(spec: Spec) -> Core:
    """The whole spec as a core: every row and column (the reference model)."""
    return Core(
        columns=np.arange(spec.n_vars, dtype=np.int64),
        rows=np.arange(len(spec.rows), dtype=np.int64),
        matrix=spec.rows.matrix,
        lb=spec.rows.lb,
        ub=spec.rows.ub,
        var_lb=spec.var_lb,
        var_ub=spec.var_ub,
        integer=spec.integer,
    )


LATE = 0.1  # seconds before the deadline after which a tier starts no LP of its own


@dataclass(frozen=True)
class TierOutcome:
    """One tier of a lexicographic solve."""

    tier: Tier
    status: str
    objective: int
    bound: int
    seconds: float


def tier_value(tier: Tier, v: FloatArray) -> int:
    """A tier's total over the pair columns of a (near-integral) solution."""
    return round(float(np.asarray(tier.values, dtype=np.float64) @ np.round(v[: len(tier.values)])))


@dataclass(frozen=True)
class Guide:
    """A part to search first: its pairs, and the later tiers that break ties there (none: the tier alone)."""

    pairs: BoolArray
    later: list[IntArray]


class Polish(Protocol):
    """Improves one tier of a complete solution (spec column values), earlier tiers held, until `end` or `stop()`;
    `guides` are the parts to try first. Returns a solution at least as good, and whether it proved the tier."""

    def __call__(
        self,
        position: int,
        start: FloatArray,
        held: list[tuple[IntArray, int]],
        end: float,
        bound: int,
        guides: list[Guide],
        stop: Callable[[], bool],
    ) -> tuple[FloatArray, bool]: ...


@dataclass
class _Exact:
    """The MIP side of one tier (reduced-cost neighbourhoods, then the whole tier), run in a thread."""

    found: list[FloatArray] = field(default_factory=list)
    proven: bool = False
    bound: int | None = None
    infeasible: bool = False
    seconds: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)  # set: the HiGHS solve ends at once


def lexicographic(
    backend: LinearBackend,
    tiers: list[Tier],
    deadline: float,
    fallback: FloatArray | Callable[[], FloatArray | None] | None = None,
    on_tier: Callable[[int, str, int, int, FloatArray], None] | None = None,
    rounder: Callable[[FloatArray], FloatArray | None] | None = None,
    polish: Polish | None = None,
    use_mip: bool = True,
    parallel: bool = True,
    combined: tuple[IntArray, int] | None = None,
) -> tuple[FloatArray | None, list[TierOutcome]]:
    """Each tier in turn at its best, the earlier ones held at theirs; a tier cut short by the deadline is held at
    what it reached. Returns the last column values (None without a solution) and each tier's outcome.

    Each tier first solves its LP: where a known solution (`fallback`, e.g. greedy's, or an earlier tier's) already
    reaches the LP bound, the tier is proven without a MIP. `rounder` turns an LP solution into a feasible one (or
    None), added to the known ones. Otherwise HiGHS works on the tier (`use_mip`) in a thread while `polish`
    improves the best known solution on this one, until HiGHS proves the tier or the tier's time is up: the tier
    ends with the better of the two, so a MIP that finds nothing in time never costs the later tiers their start.
    HiGHS overruns its time limit under load: a MIP still running at the tier's end is stopped (its worker process
    killed, so it keeps no core from the next tier) and its result dropped; so is one that the polish makes
    unnecessary by reaching the tier's bound. Without `parallel` (deterministic rounds), the MIP runs first and the
    polish after it.

    While a tier is searched, the next tier's LP (this one held at its LP floor) is solved in another thread: it is
    the next tier's LP whenever this tier reaches its floor. `combined` (the tiers as one value per pair, each
    outweighing the later ones, and the first tier's weight) is the first tier's LP objective where HiGHS is not
    used: one LP then gives the support of the first tier's best-scoring LP optimum, where CP-SAT finds the most
    placements at a good score (on regional rounds, as good as HiGHS's at 60 s) far faster than on an arbitrary
    one; the first tier's own LP, for its bound, is then solved beside the search."""
    outcomes: list[TierOutcome] = []
    # Known solutions, filtered to those meeting held tiers. A fallback given as a function is only asked for when
    # the first tier's LP gives no solution.
    pool = [fallback] if fallback is not None and not callable(fallback) else []
    held: list[tuple[IntArray, int]] = []
    ahead: _Ahead | None = None
    for position, tier in enumerate(tiers):
        started = time.monotonic()
        later = [t.values for t in tiers[position + 1 :]]
        weighted = combined is not None and not use_mip and polish is not None and position == 0 and bool(later)
        lp = ahead.result(held[-1][1], deadline) if ahead is not None else None
        if lp is None and pool and deadline - time.monotonic() < LATE:
            # Out of time (a large round on a loaded machine: the first LP alone took most of a 2 s limit): no new
            # LP, which GLOP would finish past the deadline; the tier keeps the best solution known.
            lp = LinearResult("UNKNOWN", None, 0.0, math.inf, np.zeros(0), 0.0)
        if lp is None:
            objective = combined[0] if weighted and combined is not None else tier.values
            lp = backend.solve(objective, max(0.05, deadline - time.monotonic()), integral=False)
        if lp.status == "INFEASIBLE":
            outcomes.append(TierOutcome(tier, "INFEASIBLE", 0, 0, lp.seconds))
            return None, outcomes
        lp_bound = _floor(lp.bound) if lp.status == "OPTIMAL" else _ceiling(backend, tier)
        target = lp_bound  # where the search of this tier stops: the bound, or what the bound almost surely is
        if weighted and combined is not None and lp.values is not None and lp.status == "OPTIMAL":
            # The combined LP may give up a sliver of this tier for the later ones: its own value P is within
            # 1 - 1/weight of the tier's LP optimum, so floor(P + 1 - 1/weight) is a bound; the tier's own LP, solved
            # beside the search, tightens it.
            reached = float(np.asarray(tier.values, dtype=np.float64) @ lp.values[: len(tier.values)])
            lp_bound, target = _floor(reached + 1 - 1 / combined[1]), _floor(reached)
        if rounder is not None and lp.values is not None:
            rounded = rounder(lp.values)
            if rounded is not None and _meets(rounded, held):
                pool.append(rounded)
        # Where HiGHS works on this tier's own LP, the parts still start from the combined LP: a placement optimum
        # of the LP that also scores well (on the demo region under load, the placement tier's parts otherwise
        # handed the score tier a solution 15-20 % below the best score).
        guide_lp = lp
        if combined is not None and use_mip and polish is not None and position == 0 and later:
            scored = backend.solve(combined[0], max(0.05, deadline - time.monotonic()), integral=False)
            if scored.status == "OPTIMAL" and scored.values is not None:
                guide_lp = scored
                rounded = rounder(scored.values) if rounder is not None else None
                if rounded is not None and _meets(rounded, held):
                    pool.append(rounded)
        if not pool and callable(fallback):
            pool = [v for v in (fallback(),) if v is not None]
        best = _best(pool, tiers[position:])
        proven = best is not None and tier_value(tier, best) >= target
        if on_tier is not None and best is not None and not proven:
            # The tier's start (its first solution against the LP's bound) is progress too: a person watching the
            # round sees the gap from here on, not only when a tier ends.
            on_tier(position, tier.name, tier_value(tier, best), max(tier_value(tier, best), lp_bound), best)
        ahead = None
        if later and lp.status == "OPTIMAL" and polish is not None:
            own = tier if weighted else None
            ahead = _Ahead(backend, tiers[position + 1], tier, own, target, deadline, parallel)
        if not proven:
            left = deadline - time.monotonic()
            # Every tier but the last leaves the next ones time: earlier tiers are usually the quicker ones. Without
            # HiGHS, 0.7 of it: the placement count on the LP's part (which outweighs any score) needed more than
            # 0.6 on loaded regional rounds. With HiGHS 0.6: at 0.7, on the demo region at 10 s under load, HiGHS
            # spent it on the placement tier's proof, which it did not finish, and the score tier ended 1.4 % below
            # the optimum.
            share = 0.6 if use_mip else 0.7
            tier_end = deadline if not later else time.monotonic() + share * max(0.0, left)
            exact = _Exact()
            running = use_mip and left > 0.05 and parallel
            if not use_mip or left <= 0.05:
                exact.done.set()
            elif parallel:
                args = (backend, tier, lp, best, tier_end, exact)
                threading.Thread(target=_exact, args=args, name="highs-tier").start()
            else:
                _exact(backend, tier, lp, best, tier_end, exact)
            whole = False
            if polish is not None and best is not None and not exact.proven:
                guides = []
                if guide_lp.values is not None:
                    # First this tier alone (CP-SAT proves a single tier far faster than a weighted one: the
                    # regional placement count in 0.2 s on the LP's support), then with the later tiers breaking ties.
                    support = guide_lp.values[: backend.spec.n_pairs] > 1e-6
                    guides = [Guide(support, []), Guide(support, later)] if later else [Guide(support, [])]
                # Beside a running MIP, stop when it is done (it may have proven the tier; its result is compared).
                stop = exact.done.is_set if running else (lambda: False)
                polished, whole = polish(position, best, list(held), tier_end, target, guides, stop)
                pool.append(polished)
                if whole:
                    lp_bound = min(lp_bound, tier_value(tier, polished))
            if whole or (pool and _best_value(pool, tier) >= target):
                exact.stop.set()  # the search proved the tier: nothing left for the MIP to find or prove
            # Wait for the MIP until the tier's end (it may be proving); past that, stop it and go on without it.
            exact.done.wait(timeout=max(0.0, tier_end - time.monotonic()))
            exact.stop.set()
            if exact.done.is_set():
                if exact.infeasible:
                    outcomes.append(TierOutcome(tier, "INFEASIBLE", 0, 0, time.monotonic() - started))
                    return None, outcomes
                pool.extend(exact.found)
                proven = exact.proven
                if exact.bound is not None:
                    lp_bound = min(lp_bound, exact.bound)
            pool = [v for v in pool if _meets(v, held)]
            best = _best(pool, tiers[position:])
        if weighted and ahead is not None:
            lp_bound = min(lp_bound, ahead.bound(deadline))
            proven = best is not None and tier_value(tier, best) >= lp_bound
        if best is None:
            outcomes.append(TierOutcome(tier, "UNKNOWN", 0, 0, time.monotonic() - started))
            return None, outcomes
        value = tier_value(tier, best)
        bound = value if proven or value >= lp_bound else max(value, lp_bound)
        status = "OPTIMAL" if bound == value else "FEASIBLE"
        outcomes.append(TierOutcome(tier, status, value, bound, time.monotonic() - started + lp.seconds))
        backend.hold(tier.values, value - 0.5)
        held.append((tier.values, value))
        pool = [v for v in pool if tier_value(tier, v) >= value]
        if on_tier is not None:
            on_tier(position, tier.name, value, bound, best)
    return _best(pool, tiers), outcomes


def _meets(v: FloatArray, held: list[tuple[IntArray, int]]) -> bool:
    return all(tier_value(Tier("", values), v) >= at for values, at in held)


def _best_value(pool: list[FloatArray], tier: Tier) -> int:
    return max(tier_value(tier, v) for v in pool)


def _best(pool: list[FloatArray], tiers: list[Tier]) -> FloatArray | None:
    """The best known solution, tiers compared in order."""
    return max(pool, key=lambda v: [tier_value(t, v) for t in tiers], default=None)


class _Ahead:
    """Beside a tier's search, in a thread (at once without `parallel`): the tier's own LP when `own` is given (its
    bound, when its first LP was the combined one), then the next tier's LP with this tier held at its floor."""

    def __init__(
        self,
        backend: LinearBackend,
        following: Tier,
        tier: Tier,
        own: Tier | None,
        floor: int,
        deadline: float,
        parallel: bool,
    ) -> None:
        self.floor = floor
        self.own_bound = 2**62  # the tier's own LP bound, once solved
        self.lp: LinearResult | None = None
        self.own_done = threading.Event()
        self.done = threading.Event()

        def work() -> None:
            # The own LP first: it proves the tier (the regional placement count), which the table of results
            # counts on; solved after the next tier's LP (tried), it was not done by the end of a loaded 2 s round.
            try:
                if own is not None:
                    result = backend.solve(own.values, max(0.05, deadline - time.monotonic()), integral=False)
                    if result.status == "OPTIMAL":
                        self.own_bound = _floor(result.bound)
                    self.own_done.set()
                left = max(0.05, deadline - time.monotonic())
                at = Held(tier.values, self.floor - 0.5)
                self.lp = backend.solve(following.values, left, integral=False, extra=[at])
            finally:
                self.own_done.set()
                self.done.set()

        if parallel:
            threading.Thread(target=work, name="lp-ahead").start()
        else:
            work()

    def bound(self, deadline: float) -> int:
        """The tier's own LP bound (waiting for its LP until `deadline`; a huge number without it)."""
        self.own_done.wait(timeout=max(0.0, deadline - time.monotonic()))
        return self.own_bound

    def result(self, value: int, deadline: float) -> LinearResult | None:
        """The LP, when the tier ended at its floor (else it is not the next tier's LP) and it finished in time."""
        if value != self.floor:
            return None
        self.done.wait(timeout=max(0.0, deadline - time.monotonic()))
        return self.lp if self.done.is_set() and self.lp is not None and self.lp.status == "OPTIMAL" else None


def _exact(
    backend: LinearBackend, tier: Tier, lp: LinearResult, best: FloatArray | None, end: float, out: _Exact
) -> None:
    """HiGHS on the tier: reduced-cost neighbourhoods that may prove it, then the whole tier until `end`."""
    started = time.monotonic()
    try:
        pool: list[FloatArray] = [best] if best is not None else []
        lp_bound = _floor(lp.bound) if lp.status == "OPTIMAL" else 2**62
        proven = False
        if lp.reduced is not None and lp.values is not None:
            best, proven, bound = _neighbourhoods(backend, tier, lp, best, pool, end, out.stop)
            if bound is not None:
                out.bound = _floor(bound)
        left = end - time.monotonic()
        if not proven and (best is None or tier_value(tier, best) < lp_bound) and left > 0.05 and not out.stop.is_set():
            result = backend.solve(tier.values, left, stop=out.stop)
            if result.status == "INFEASIBLE":
                out.infeasible = True
                return
            if result.values is not None:
                pool.append(result.values)
            out.bound = min(_floor(result.bound), out.bound if out.bound is not None else 2**62)
            proven = result.status == "OPTIMAL"
        out.found = pool
        out.proven = proven
    finally:
        out.seconds = time.monotonic() - started
        out.done.set()


def _neighbourhoods(
    backend: LinearBackend,
    tier: Tier,
    lp: LinearResult,
    best: FloatArray | None,
    pool: list[FloatArray],
    deadline: float,
    stop: threading.Event | None = None,
) -> tuple[FloatArray | None, bool, float | None]:
    """The MIP on neighbourhoods chosen by the LP's reduced costs, widened until it proves the tier.

    A pair at zero in the LP with reduced cost r cannot be in any solution worth more than LP + r (r <= 0). So once
    a solution worth I is known, every solution worth I + 1 or more uses only pairs with r >= I + 1 - LP: the MIP
    over those pairs (and the pairs already used) is the whole tier's MIP, and its optimum is the tier's optimum.
    The first neighbourhood is small (the LP's support and the cheapest tenth of the rest); each next one is what
    the best solution so far makes necessary. Returns the best solution, whether it is proven, and a bound on the
    tier when a neighbourhood that holds every better solution was cut short (None otherwise)."""
    assert lp.reduced is not None and lp.values is not None
    n = backend.spec.n_pairs
    used = lp.values[:n] > 1e-6
    if best is not None:
        used |= best[:n] > 0.5
    at_zero = -lp.reduced[~used]
    width = float(np.quantile(at_zero, 0.1)) if len(at_zero) else 0.0
    proven, bound = False, None
    # Reduced costs carry the LP's rounding: a margin relative to the objective keeps the proof on the safe side.
    margin = 1e-6 * max(1.0, abs(lp.objective))

    def needed(known: FloatArray | None) -> float:
        # The width that holds every solution better than `known`.
        return math.inf if known is None else lp.objective - tier_value(tier, known) - 1 + margin

    while time.monotonic() < deadline - 0.05 and not (stop is not None and stop.is_set()):
        allowed = used | (lp.reduced >= -width)
        whole = bool(allowed.all())
        # A neighbourhood that holds every better solution proves the tier once solved: it gets all the time left
        # (the whole tier, the fallback, is only larger). On the demo region at 10 s, with half the time its proof
        # was cut short in 2 of 4 runs (1.5 s given, 1.7 s needed) and the whole tier then had too little left.
        complete = whole or width >= needed(best)
        left = deadline - time.monotonic()
        result = backend.solve(
            tier.values, left if complete else 0.5 * left, allowed=None if whole else allowed, stop=stop
        )
        if result.values is not None:
            pool.append(result.values)
            best = max(pool, key=lambda v: tier_value(tier, v))
        if complete and best is not None and math.isfinite(result.bound):
            # Every solution better than the best known lies in this neighbourhood: its bound is the tier's.
            bound = max(float(tier_value(tier, best)), result.bound)
        if result.status != "OPTIMAL" or best is None:
            break  # out of time (or nothing fits the neighbourhood): the caller goes on with the whole tier
        if complete or width >= needed(best):
            proven = True
            break
        width = needed(best)
        if int((used | (lp.reduced >= -width)).sum()) == int(allowed.sum()):
            proven = True  # the wider neighbourhood holds no more pairs: the one just solved was enough
            break
    return best, proven, bound


def _floor(bound: float) -> int:
    return math.floor(bound + 1e-6) if math.isfinite(bound) else 2**62


def _ceiling(backend: LinearBackend, tier: Tier) -> int:
    """Each candidate's best pair: a bound on any tier."""
    prep = backend.spec.prep
    best = np.zeros(len(prep.instance.candidates), dtype=np.int64)
    np.maximum.at(best, prep.pairs.cand, np.asarray(tier.values, dtype=np.int64))
    return int(best.sum())
