"""The LP/MIP backend: the spec's core loaded in bulk into OR-Tools' model builder, solved by HiGHS (or GLOP, SCIP).

Lexicographic tiers are a sequence of solves: most placements first, then, with that count held, the best score
(never one weighted sum, whose huge coefficients slow every MIP solver down). `highspy` cannot be loaded beside
OR-Tools; the HiGHS inside the OR-Tools wheel can.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from ortools.linear_solver.python import model_builder_helper as mbh

from matching.model.spec import Core, Spec, Tier
from matching.rules.tables import BoolArray, FloatArray, IntArray

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


@dataclass(frozen=True)
class Held:
    """A row over the pair columns kept at or above a level: an earlier tier at its optimum."""

    values: IntArray
    at_least: float


def _parameters(solver: str, integral: bool, deterministic_nodes: int | None) -> str:
    if solver != "highs":
        return ""
    lines = ["output_flag=false"]
    if integral:
        # Values are integers: a gap below one proves the integer optimum, however large the objective.
        lines += ["mip_rel_gap=0", "mip_abs_gap=0.999"]
        if deterministic_nodes is not None:
            # A node budget instead of the wall clock: the same input then gives the same result.
            lines += ["threads=1", f"mip_max_nodes={deterministic_nodes}"]
    return "\n".join(lines)


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

    def _load(self, objective: FloatArray, integral: bool, allowed: BoolArray | None) -> mbh.ModelBuilderHelper:
        core, n = self.core, self.spec.n_pairs
        var_ub = core.var_ub
        if allowed is not None:
            # A pair outside the neighbourhood is held at 0, and so are its supervisor and funding columns (which
            # lets presolve drop them all).
            var_ub = np.where(allowed[self._column_pair] | self._always, var_ub, 0.0)
        matrix, lb, ub = core.matrix, core.lb, core.ub
        if self.held:
            # x columns come first in the core, so a tier over the pairs is a row over its first n columns.
            extra = sp.csr_matrix(
                np.vstack([np.asarray(h.values, dtype=np.float64) for h in self.held]), shape=(len(self.held), n)
            )
            extra.resize((len(self.held), matrix.shape[1]))
            matrix = sp.csr_matrix(sp.vstack([matrix, extra], format="csr"))
            lb = np.concatenate([lb, [h.at_least for h in self.held]])
            ub = np.concatenate([ub, np.full(len(self.held), math.inf)])
        helper = mbh.ModelBuilderHelper()
        arrays = (core.var_lb, var_ub, objective[core.columns], lb, ub, sp.csr_matrix(matrix, dtype=np.float64))
        # The helper may keep views of these arrays until the solve: hold them as long as the helper lives.
        self._alive = arrays
        helper.fill_model_from_sparse_data(*arrays)  # type: ignore[arg-type]
        helper.set_maximize(True)
        if integral:
            for i in np.flatnonzero(core.integer).tolist():
                helper.set_var_integrality(i, True)
        return helper

    def solve(
        self, values: IntArray, seconds: float, *, integral: bool | None = None, allowed: BoolArray | None = None
    ) -> LinearResult:
        """Maximise `values` over the pairs within `seconds`, the held tiers kept (as an LP unless `integral`), only
        `allowed` pairs used when given (a neighbourhood: its bound is not the round's)."""
        integral = self.integral if integral is None else integral
        # No solution hints: with hints, the HiGHS of the OR-Tools 9.15 wheel crashes the process (seen on the demo
        # region); a tier that finds nothing falls back to the caller's solution instead.
        started = time.monotonic()
        helper = self._load(self.spec.objective(values), integral, allowed)
        name = self.solver if integral else self.lp_solver
        solver = mbh.ModelSolverHelper(name)
        # HiGHS overruns its limit by up to a third on these models (presolve and root LP are not interrupted).
        solver.set_time_limit_in_seconds(max(0.05, 0.75 * seconds))
        solver.set_solver_specific_parameters(_parameters(name, integral, self.deterministic_nodes))
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
            loaded_objective, matrix = self._alive[2], self._alive[5]
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

    def hold(self, values: IntArray, at_least: float) -> None:
        """Keep a tier at or above a level in every later solve."""
        self.held.append(Held(values, at_least))


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


def lexicographic(
    backend: LinearBackend,
    tiers: list[Tier],
    deadline: float,
    fallback: FloatArray | None = None,
    on_tier: Callable[[int, str, int, int, FloatArray], None] | None = None,
    rounder: Callable[[FloatArray], FloatArray | None] | None = None,
) -> tuple[FloatArray | None, list[TierOutcome]]:
    """Each tier in turn at its best, the earlier ones held at theirs; a tier cut short by the deadline is held at
    what it reached. Returns the last column values (None without a solution) and each tier's outcome.

    Each tier first solves its LP: where a known solution (`fallback`, e.g. greedy's, or an earlier tier's) already
    reaches the LP bound, the tier is proven without a MIP. A known solution also stands in where the MIP finds
    nothing better in time. `rounder` turns an LP solution into a feasible one (or None), added to the known ones."""
    outcomes: list[TierOutcome] = []
    pool = [v for v in (fallback,) if v is not None]  # known solutions; filtered to those meeting held tiers
    for position, tier in enumerate(tiers):
        lp = backend.solve(tier.values, max(0.05, deadline - time.monotonic()), integral=False)
        if lp.status == "INFEASIBLE":
            outcomes.append(TierOutcome(tier, "INFEASIBLE", 0, 0, lp.seconds))
            return None, outcomes
        lp_bound = _floor(lp.bound) if lp.status == "OPTIMAL" else _ceiling(backend, tier)
        if rounder is not None and lp.values is not None:
            rounded = rounder(lp.values)
            if rounded is not None and all(tier_value(Tier("", h.values), rounded) >= h.at_least for h in backend.held):
                pool.append(rounded)
        best = max(pool, key=lambda v: tier_value(tier, v), default=None)
        seconds = lp.seconds
        status = "FEASIBLE"
        proven = False
        if lp.reduced is not None and lp.values is not None and (best is None or tier_value(tier, best) < lp_bound):
            best, proven, spent = _neighbourhoods(backend, tier, lp, best, pool, deadline)
            seconds += spent
            status = "OPTIMAL" if proven else status
        if not proven and (best is None or tier_value(tier, best) < lp_bound):
            left = deadline - time.monotonic()
            # Every tier but the last leaves the next ones time: earlier tiers are usually the quicker ones.
            share = left if position == len(tiers) - 1 else left * 0.6
            result = (
                backend.solve(tier.values, share)
                if left > 0.05
                else LinearResult("UNKNOWN", None, 0.0, math.inf, np.zeros(0), 0.0)
            )
            seconds += result.seconds
            if result.status == "INFEASIBLE":
                outcomes.append(TierOutcome(tier, "INFEASIBLE", 0, 0, seconds))
                return None, outcomes
            if result.values is not None:
                pool.append(result.values)
                best = max(pool, key=lambda v: tier_value(tier, v))
            lp_bound = min(lp_bound, _floor(result.bound))
            status = "OPTIMAL" if result.status == "OPTIMAL" else status
        if best is None:
            outcomes.append(TierOutcome(tier, "UNKNOWN", 0, 0, seconds))
            return None, outcomes
        value = tier_value(tier, best)
        bound = value if status == "OPTIMAL" or value >= lp_bound else max(value, lp_bound)
        outcomes.append(TierOutcome(tier, "OPTIMAL" if bound == value else "FEASIBLE", value, bound, seconds))
        backend.hold(tier.values, value - 0.5)
        pool = [v for v in pool if tier_value(tier, v) >= value]
        if on_tier is not None:
            on_tier(position, tier.name, value, bound, best)
    return (pool[-1] if pool else None), outcomes


def _neighbourhoods(
    backend: LinearBackend,
    tier: Tier,
    lp: LinearResult,
    best: FloatArray | None,
    pool: list[FloatArray],
    deadline: float,
) -> tuple[FloatArray | None, bool, float]:
    """The MIP on neighbourhoods chosen by the LP's reduced costs, widened until it proves the tier.

    A pair at zero in the LP with reduced cost r cannot be in any solution worth more than LP + r (r <= 0). So once
    a solution worth I is known, every solution worth I + 1 or more uses only pairs with r >= I + 1 - LP: the MIP
    over those pairs (and the pairs already used) is the whole tier's MIP, and its optimum is the tier's optimum.
    The first neighbourhood is small (the LP's support and the cheapest tenth of the rest); each next one is what
    the best solution so far makes necessary. Returns the best solution, whether it is proven, and seconds spent."""
    assert lp.reduced is not None and lp.values is not None
    n = backend.spec.n_pairs
    started = time.monotonic()
    used = lp.values[:n] > 1e-6
    if best is not None:
        used |= best[:n] > 0.5
    at_zero = -lp.reduced[~used]
    width = float(np.quantile(at_zero, 0.1)) if len(at_zero) else 0.0
    proven = False
    # Reduced costs carry the LP's rounding: a margin relative to the objective keeps the proof on the safe side.
    margin = 1e-6 * max(1.0, abs(lp.objective))
    while time.monotonic() < deadline - 0.05:
        allowed = used | (lp.reduced >= -width)
        whole = bool(allowed.all())
        seconds = deadline - time.monotonic() if whole else 0.5 * (deadline - time.monotonic())
        result = backend.solve(tier.values, seconds, allowed=None if whole else allowed)
        if result.values is not None:
            pool.append(result.values)
            best = max(pool, key=lambda v: tier_value(tier, v))
        if result.status != "OPTIMAL" or best is None:
            break  # out of time (or nothing fits the neighbourhood): the caller goes on with the whole tier
        needed = lp.objective - tier_value(tier, best) - 1 + margin
        if whole or width >= needed:
            proven = True
            break
        width = needed
        if int((used | (lp.reduced >= -width)).sum()) == int(allowed.sum()):
            proven = True  # the wider neighbourhood holds no more pairs: the one just solved was enough
            break
    return best, proven, time.monotonic() - started


def _floor(bound: float) -> int:
    return math.floor(bound + 1e-6) if math.isfinite(bound) else 2**62


def _ceiling(backend: LinearBackend, tier: Tier) -> int:
    """Each candidate's best pair: a bound on any tier."""
    prep = backend.spec.prep
    best = np.zeros(len(prep.instance.candidates), dtype=np.int64)
    np.maximum.at(best, prep.pairs.cand, np.asarray(tier.values, dtype=np.int64))
    return int(best.sum())
