"""CP-SAT on a part of the spec's core, every other column held at an incumbent's value.

A neighbourhood is a set of pairs. Their columns (the pair, its supervisor and funding choices) stay free, and so do
the overflow columns; every other column keeps the incumbent's value, and its share of each row moves to the row's
bounds, so the part has the same rows with what is left of each slot, seat, budget and cap. Rows with no free column
are dropped (the incumbent meets them). The part is solved for one tier, earlier tiers held as rows, from the incumbent
as a complete hint: a result is never worse than the incumbent and changes only the free columns. One tier at a time
(not a weighted sum) because CP-SAT proves the placement count of a part in a tenth of the time a weighted sum takes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model

from matching.model.spec import Core, Spec, Tier
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.clock import limit_cp_sat
from matching.solvers.greedy import Pick

STOP_POLL = 0.02  # seconds between reads of a part's stop condition


@dataclass(frozen=True)
class Part:
    """What a neighbourhood solve found: the core's column values and whether CP-SAT proved the part optimal."""

    values: FloatArray
    proven: bool
    improved: bool


class Parts:
    """The spec's core, ready to cut into parts: column owners, the matrix by columns, per-pair tier values."""

    def __init__(self, spec: Spec, tiers: list[Tier]) -> None:
        self.spec, self.tiers = spec, tiers
        self.core: Core = spec.core()
        self.n_pairs = spec.n_pairs
        self.matrix = sp.csr_matrix(self.core.matrix)
        self.by_column = sp.csc_matrix(self.matrix)

    @cached_property
    def column_pair(self) -> IntArray:
        """Per core column, its pair (-1 for overflow columns, which belong to no pair)."""
        prep, spec = self.spec.prep, self.spec
        owner = np.concatenate(
            [
                np.arange(spec.n_pairs),
                prep.supervisors.pair,
                prep.pairs.fund_pair,
                np.full(spec.n_vars - spec.over_at, -1, dtype=np.int64),
            ]
        ).astype(np.int64)
        return owner[self.core.columns]

    def of(self, picks: list[Pick]) -> FloatArray:
        """The core column values of picks."""
        pair = np.array([p.pair for p in picks], dtype=np.int64)
        sup = np.array([p.supervisor for p in picks], dtype=np.int64)
        fund = np.array([p.fund_row for p in picks], dtype=np.int64)
        return self.spec.vector(pair, sup, fund)[self.core.columns]

    def picks(self, values: FloatArray) -> list[Pick]:
        """Picks from core column values."""
        full = np.zeros(self.spec.n_vars, dtype=np.float64)
        full[self.core.columns] = values
        chosen, sups, funds = self.spec.choices(full)
        return [Pick(int(k), int(s), int(f)) for k, s, f in zip(chosen, sups, funds, strict=True)]

    def totals(self, values: FloatArray) -> list[int]:
        """Each tier's total for core column values (x columns come first)."""
        x = np.round(values[: self.n_pairs]).astype(np.int64)
        return [int(np.asarray(t.values, dtype=np.int64) @ x) for t in self.tiers]

    def solve(
        self,
        free_pairs: BoolArray,
        incumbent: FloatArray,
        objective: IntArray,
        seconds: float,
        *,
        held: Sequence[tuple[IntArray, int]] = (),
        later: Sequence[IntArray] = (),
        presolve: bool = True,
        race: int = 1,
        seed: int = 0,
        workers: int = 1,
        deterministic: bool = False,
        until: float | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Part:
        """The best solution for `objective` (values per pair) that differs from `incumbent` only on `free_pairs`
        (and overflow), each `held` row (values per pair, level) kept at or above its level; `later` tiers break
        ties among the part's best (weights local to the part keep the order strict). Without `presolve`, CP-SAT
        starts searching at once (on LP-guided parts of regional rounds it then proved the placement count in
        0.04-0.07 s, against 0.1-1.3 s with presolve, depending on the seed). `race` > 1: that many one-worker
        searches with different seeds, in threads; the first to prove the part stops the others. `until` (a
        `time.monotonic()` instant) caps the search's wall clock, counted after the model is built: building a
        part takes 0.03-0.1 s on a loaded machine, which otherwise ran past the caller's deadline. `stop()` becoming
        true ends the search early with what it found (HiGHS proved the tier beside it)."""
        owner = self.column_pair
        free = np.ones(len(owner), dtype=bool)
        has_pair = owner >= 0
        free[has_pair] = free_pairs[owner[has_pair]]
        cols = np.flatnonzero(free)
        fixed = np.where(free, 0.0, incumbent)
        activity = self.matrix @ fixed
        sub = sp.csr_matrix(self.by_column[:, cols])
        rows = np.flatnonzero(np.diff(sub.indptr) > 0)
        sub = sp.csr_matrix(sub[rows])
        model = cp_model.CpModel()
        proto = model.proto
        lows = np.ceil(self.core.var_lb[cols] - 1e-9).astype(np.int64).tolist()
        highs = np.floor(self.core.var_ub[cols] + 1e-9).astype(np.int64).tolist()
        for lo, hi in zip(lows, highs, strict=True):
            proto.variables.add().domain.extend([lo, hi])
        _add_rows(proto, sub, self.core.lb[rows] - activity[rows], self.core.ub[rows] - activity[rows])
        x_vars = np.flatnonzero(cols < self.n_pairs)  # x columns come first: model variable i is pair cols[i]
        x_pairs = cols[x_vars]
        fixed_x = np.round(fixed[: self.n_pairs]).astype(np.int64)
        for values, level in held:
            part = np.asarray(values, dtype=np.int64)
            linear = proto.constraints.add().linear
            linear.vars.extend(x_vars.tolist())
            linear.coeffs.extend(part[x_pairs].tolist())
            linear.domain.extend([level - int(part @ fixed_x), cp_model.INT_MAX])
        gain = _combined(
            self.spec.prep.pairs.cand[x_pairs], [np.asarray(v, dtype=np.int64)[x_pairs] for v in (objective, *later)]
        )
        used = np.flatnonzero(gain)
        # The proto minimises: maximise by negating, with the scaling factor reporting the maximised value.
        proto.objective.vars.extend(x_vars[used].tolist())
        proto.objective.coeffs.extend((-gain[used]).tolist())
        proto.objective.scaling_factor = -1.0
        start = np.round(incumbent[cols]).astype(np.int64)
        proto.solution_hint.vars.extend(range(len(cols)))
        proto.solution_hint.values.extend(start.tolist())
        if until is not None and not deterministic:
            seconds = min(seconds, max(0.01, until - time.monotonic()))
        solver, status = _race(model, seconds, seed, workers, deterministic, presolve, race, stop)
        if status not in ("OPTIMAL", "FEASIBLE"):
            return Part(incumbent, False, False)
        found = np.asarray(solver.response_proto.solution, dtype=np.float64)[: len(cols)]
        proven = status == "OPTIMAL"
        if int(gain @ np.round(found[x_vars]).astype(np.int64)) <= int(gain @ start[x_vars]):
            return Part(incumbent, proven, False)
        out = incumbent.copy()
        out[cols] = found
        return Part(out, proven, True)


def _race(
    model: cp_model.CpModel,
    seconds: float,
    seed: int,
    workers: int,
    fixed: bool,
    presolve: bool,
    race: int,
    stop: Callable[[], bool] | None = None,
) -> tuple[cp_model.CpSolver, str]:
    """Solve `model` with `race` searches (different seeds) at once: the solver with the best status and objective,
    and that status. How long a search takes to prove a part varies tenfold with the seed: racing two keeps the
    worst case short. `stop()` becoming true ends every search (read every STOP_POLL seconds)."""
    solvers = []
    for i in range(max(1, race)):
        solver = cp_model.CpSolver()
        _configure(solver, seconds, seed + 7919 * i, workers, fixed)
        solver.parameters.cp_model_presolve = presolve
        solvers.append(solver)
    statuses: dict[int, str] = {}

    def run(at: int) -> None:
        solver = solvers[at]
        statuses[at] = solver.status_name(solver.solve(model))
        if statuses[at] == "OPTIMAL":
            for other in solvers:
                if other is not solver:
                    other.stop_search()

    finished = threading.Event()
    if stop is not None:
        threading.Thread(target=_watch, args=(solvers, stop, finished), name="cp-sat-stop").start()
    try:
        if len(solvers) == 1:
            run(0)
        else:
            threads = [threading.Thread(target=run, args=(at,), name="cp-sat-part") for at in range(len(solvers))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        finished.set()
    rank = {"OPTIMAL": 2, "FEASIBLE": 1}

    def key(at: int) -> tuple[int, float]:
        found = statuses.get(at, "UNKNOWN") in rank
        return rank.get(statuses.get(at, ""), 0), float(solvers[at].objective_value) if found else -math.inf

    best = max(range(len(solvers)), key=key)
    return solvers[best], statuses.get(best, "UNKNOWN")


def _watch(solvers: list[cp_model.CpSolver], stop: Callable[[], bool], finished: threading.Event) -> None:
    """Stop every solver once `stop()` is true, unless they finish first."""
    while not finished.wait(STOP_POLL):
        if stop():
            for solver in solvers:
                solver.stop_search()
            return


def _combined(cand: IntArray, tiers: list[IntArray]) -> IntArray:
    """Tiers over a part's pairs as one value per pair, each tier outweighing all later ones on this part (the
    weights stay small because a part has few candidates); the first tier alone when they would pass 62 bits."""
    total, weight = np.zeros(len(cand), dtype=np.int64), 1
    for values in reversed(tiers):
        if weight > 2**62 // max(1, int(np.abs(values).sum()) + 1):
            return tiers[0]
        total += weight * values
        best = np.zeros(int(cand.max()) + 1 if len(cand) else 0, dtype=np.int64)
        np.maximum.at(best, cand, np.maximum(values, 0))
        weight *= int(best.sum()) + 1
    return total


def _configure(solver: cp_model.CpSolver, seconds: float, seed: int, workers: int, fixed: bool) -> None:
    params = solver.parameters
    params.random_seed = seed
    params.num_workers = workers
    if workers == 1:
        # One worker runs the LP-guided search alone; with the stronger linearisation it proves small parts of these
        # knapsack-like rounds far faster than a portfolio of two does (0.1-0.2 s against over 1 s on regional-s0).
        params.linearization_level = 2
    # Deterministic time instead of wall time: the same input gives the same result (a wall-clock guard stays).
    limit_cp_sat(params, seconds if fixed else max(0.01, seconds), fixed)


def _add_rows(proto: object, matrix: sp.csr_matrix, lb: FloatArray, ub: FloatArray) -> None:
    """One linear constraint per row (whole-number coefficients: SEK or 1)."""
    indptr, indices = matrix.indptr.tolist(), matrix.indices.tolist()
    coefs = np.round(matrix.data).astype(np.int64).tolist()
    lbs = [cp_model.INT_MIN if not math.isfinite(v) else math.ceil(v - 1e-6) for v in lb.tolist()]
    ubs = [cp_model.INT_MAX if not math.isfinite(v) else math.floor(v + 1e-6) for v in ub.tolist()]
    constraints = proto.constraints  # type: ignore[attr-defined]
    for r in range(len(lbs)):
        lo, hi = indptr[r], indptr[r + 1]
        linear = constraints.add().linear
        linear.vars.extend(indices[lo:hi])
        linear.coeffs.extend(coefs[lo:hi])
        linear.domain.extend([lbs[r], ubs[r]])
