"""The LP bound by column generation over the programme choice, tier after tier.

Which programme pays never changes the objective, only which money it uses; so the LP needs few of the funding
columns (one per (pair, programme)). The master starts with every column but the funding ones, and of those each
candidate's three cheapest pairs with their cheapest funding column; GLOP (OR-Tools' model builder, loaded from the
sparse matrix in bulk) solves it, and the funding columns left out are priced with the master's row prices in one
sparse product: the most profitable (one per pair, at most one per candidate of the round per pass) join. The
objective tiers can be solved as LPs in sequence (`lexicographic_lp`), each holding the earlier tiers at their bound
rounded down (valid for integer tiers).

The generation stops once the Lagrangian bound of the master's prices (`dual_bound`: every candidate's best column
at the prices of all other rows, valid for any prices) is within 1e-5 of the master's value, and reports that bound:
a degenerate tail of columns of tiny profit would otherwise run for rounds. When the time runs out first, the bound
reported is the best such Lagrangian bound seen, never the master's value.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from ortools.linear_solver.python import model_builder_helper as mb

from matching.rules.prepare import Prepared
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers import simplex
from matching.solvers.matrix import KIND, RoundMatrix, build_matrix
from matching.solvers.simplex import Basis

Tiers = list[tuple[str, IntArray]]
_TOL = 1e-7
GLOP_PARAMETERS = ""
DUAL_SIMPLEX = "use_dual_simplex:true"
WARM_PARAMETERS = "use_dual_simplex:false"  # from a basis that is primal feasible
# Row kinds of a generalized-assignment round (`assignment_round`).
ASSIGNMENT_ROWS = (KIND["candidate"], KIND["budget"])
PROOF_TOLERANCE = 1e-5  # stop once the bound is within this share of the master's value


@dataclass(frozen=True)
class LpSolution:
    """One LP solve: column values, row prices (>= 0 on <= rows, <= 0 on >= rows) and the objective."""

    ok: bool
    value: float
    w: FloatArray
    price: FloatArray
    status: str
    basis: Basis | None = None  # GLOP's, over every column of the matrix (those left out at their lower bound)
    iterations: int = 0  # GLOP's simplex pivots
    # `ok` with the optimum over a part of the columns only (`simplex.Simplex.partial`: a sifting cut short by its
    # limit): a feasible solution and prices that bound, not the LP's optimum. No column generation goes on from it.
    partial: bool = False


@dataclass(frozen=True)
class TierBound:
    """A tier's LP value and the bound it proves on the integer tier (given earlier tiers at their bounds)."""

    name: str
    lp: float
    bound: int
    converged: bool  # pricing found no improving column: `lp` is the LP optimum over every column


@dataclass(frozen=True)
class LpBound:
    """The lexicographic LP: one bound per tier, the last LP's values and prices, and how it was found."""

    matrix: RoundMatrix  # with the held rows of the earlier tiers
    tiers: list[TierBound]
    w: FloatArray  # last tier's column values (every column; funding columns never priced in are 0)
    price: FloatArray  # last tier's row prices
    profit: FloatArray  # last tier's reduced profit of every column (<= 0 for columns the LP would not raise)
    rounds: int
    columns: int  # funding columns in the final master
    seconds: float
    first_value: float  # bound proven by the first LP (with weights: on the weighted sum of every tier)

    def combined_bound(self, weights: list[int]) -> float:
        """A bound on the weighted sum of tiers (each weight outweighing all later tiers)."""
        return float(sum(w * t.bound for w, t in zip(weights, self.tiers, strict=True)))


def solve_lp(
    m: RoundMatrix,
    c: FloatArray,
    cols: IntArray | None = None,
    time_limit: float = 60.0,
    solver: str = "glop",
    parameters: str | None = None,
    start: Basis | None = None,
) -> LpSolution:
    """Maximise c.w over the columns `cols` (all when None; the others held at 0), by GLOP (or another LP solver of
    OR-Tools' model builder), loaded from the sparse matrix in bulk; `parameters` for GLOP (GLOP_PARAMETERS when
    None), which begins from `start` (a basis over every column of `m`, such as an earlier solution's) if given."""
    cols = np.arange(m.n_cols) if cols is None else cols
    a = m.a[:, cols] if len(cols) != m.n_cols else m.a
    parameters = GLOP_PARAMETERS if parameters is None else parameters
    if solver == "glop":
        return _glop(m, c, cols, a, time_limit, parameters, start)
    model = mb.ModelBuilderHelper()
    bulk: Any = model.fill_model_from_sparse_data  # its stubs want numpy's old array types
    bulk(m.col_lb[cols], m.col_ub[cols], c[cols], m.lb, m.ub, sp.csr_matrix(a))
    model.set_maximize(True)
    run = mb.ModelSolverHelper(solver)
    run.enable_output(False)
    run.set_time_limit_in_seconds(max(0.05, time_limit))
    run.solve(model)
    w = np.zeros(m.n_cols)
    if run.status() != mb.SolveStatus.OPTIMAL:
        return LpSolution(False, math.nan, w, np.zeros(len(m.lb)), str(run.status()))
    w[cols] = np.asarray(run.variable_values())
    return LpSolution(True, float(run.objective_value()), w, np.asarray(run.dual_values(), dtype=np.float64), "OPTIMAL")


def _glop(
    m: RoundMatrix, c: FloatArray, cols: IntArray, a: Any, time_limit: float, parameters: str, start: Basis | None
) -> LpSolution:
    """`solve_lp` by GLOP through MathOpt, which takes a starting basis and returns the optimal one."""
    given = None
    if start is not None:
        columns = start.columns[cols]
        columns[(columns == simplex.AT_LOWER) & (m.col_lb[cols] == m.col_ub[cols])] = simplex.FIXED
        given = Basis(columns, start.rows)
        if given.basic_count() != len(m.lb):
            given = None  # not a basis of this master (a basic column was left out): start from scratch
    found = simplex.maximise((m.col_lb[cols], m.col_ub[cols], c[cols], m.lb, m.ub, a), time_limit, parameters, given)
    w = np.zeros(m.n_cols)
    if not found.optimal and not found.partial:
        return LpSolution(False, math.nan, w, np.zeros(len(m.lb)), found.reason)
    w[cols] = found.values
    basis = None
    if found.basis is not None:
        columns = np.full(m.n_cols, simplex.AT_LOWER, dtype=np.int64)
        columns[cols] = found.basis.columns
        basis = Basis(columns, found.basis.rows)
    status = "OPTIMAL" if found.optimal else f"PARTIAL ({found.reason})"
    return LpSolution(True, found.value, w, found.prices, status, basis, found.iterations, found.partial)


def reduced_profit(m: RoundMatrix, c: FloatArray, price: FloatArray) -> FloatArray:
    """Per column, c - A^T price: what raising it by one would gain at these row prices."""
    return np.asarray(c - m.a.T @ price, dtype=np.float64)


def dual_bound(m: RoundMatrix, c: FloatArray, price: FloatArray) -> float:
    """The Lagrangian bound of any row prices over every column: each candidate's best placing column at the prices
    of all rows but its own (a candidate is placed at most once), other columns within their bounds; price signs are
    clipped so that the bound is valid whatever solver produced them."""
    price = price.copy()
    price[np.isinf(m.ub) & (price > 0)] = 0.0  # a >= row cannot have a positive price
    price[np.isinf(m.lb) & (price < 0)] = 0.0  # a <= row cannot have a negative one
    price[m.kind == KIND["candidate"]] = 0.0
    rhs = np.where(price > 0, m.ub, np.where(price < 0, m.lb, 0.0))
    profit = reduced_profit(m, c, price)
    placing = sp.coo_array(m.placed)
    best = np.zeros(len(m.prep.instance.candidates))
    np.maximum.at(best, m.prep.pairs.cand[placing.row], profit[placing.col])
    other = np.ones(m.n_cols, dtype=bool)
    other[placing.col] = False
    box = np.where(profit > 0, profit * m.col_ub, profit * m.col_lb)[other]
    return float(price @ rhs + best.sum() + box.sum())


def first_columns(m: RoundMatrix, per_candidate: int = 3) -> BoolArray:
    """The master's start: every column but the funding ones; of those, each pair's cheapest, for the pairs that are
    cheapest for their candidate (most pairs are never used: pricing brings in those that are)."""
    active = np.ones(m.n_cols, dtype=bool)
    active[m.y_at : m.o_at] = False
    pairs = m.prep.pairs
    pair = pairs.fund_pair[m.fund_rows]
    grant = pairs.fund_grant[m.fund_rows]
    first = _first_per_group(pair, grant)
    cand = pairs.cand[pair[first]]
    order = np.lexsort((grant[first], cand))
    group_start = np.flatnonzero(np.r_[True, cand[order][1:] != cand[order][:-1]])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(group_start, np.diff(np.r_[group_start, len(order)]))
    active[m.y_at + first[rank < per_candidate]] = True
    return active


def _first_per_group(group: IntArray, key: FloatArray | IntArray) -> IntArray:
    """Per group, the index of its smallest key."""
    order = np.lexsort((key, group))
    return order[np.r_[True, group[order][1:] != group[order][:-1]]] if len(order) else order


def _price_in(m: RoundMatrix, profit: FloatArray, active: BoolArray, tol: float, most: int) -> int:
    """Add the `most` most profitable funding columns left out (one per pair); how many joined."""
    y = np.arange(m.y_at, m.o_at)
    take = np.flatnonzero((~active[y]) & (profit[y] > tol))
    if not len(take):
        return 0
    best = take[_first_per_group(m.column_pair[y[take]], -profit[y[take]])]
    best = best[np.argsort(-profit[y[best]], kind="stable")[:most]]
    active[y[best]] = True
    return len(best)


def generate_columns(
    m: RoundMatrix,
    c: FloatArray,
    active: BoolArray,
    deadline: float,
    max_rounds: int = 200,
    tolerance: float | None = None,
) -> tuple[LpSolution, float, bool, int]:
    """Column generation for one objective: the master's solution, a valid bound, converged, rounds. It stops once
    the bound is within `tolerance` of the master's value (default: PROOF_TOLERANCE of that value)."""
    scale = max(1.0, float(np.abs(c).max(initial=0.0)))
    most = max(2000, len(m.prep.instance.candidates))
    # GLOP's dual simplex solves an assignment round's masters faster than its primal: 2.3 s against 5.0 s on an
    # 80 x 1,600 GAP round, never slower on smaller ones; on national:0 (offer, supervisor and funding-choice rows)
    # it took 6.8 s against 4.6 s.
    parameters = DUAL_SIMPLEX if assignment_round(m) else GLOP_PARAMETERS
    best_bound = math.inf
    lp = LpSolution(False, math.nan, np.zeros(m.n_cols), np.zeros(len(m.lb)), "not run")
    for rounds in range(1, max_rounds + 1):
        # After the first master, the last basis with the new columns at zero is still primal feasible: the
        # primal simplex goes on from it.
        found = solve_lp(
            m,
            c,
            np.flatnonzero(active),
            time_limit=deadline - time.monotonic(),
            parameters=parameters if lp.basis is None else WARM_PARAMETERS,
            start=lp.basis,
        )
        if not found.ok:
            # Out of time (or the LP failed): the last master's prices still give a valid bound.
            return lp, best_bound, False, rounds
        lp = found
        best_bound = min(best_bound, dual_bound(m, c, lp.price))
        # Degenerate masters keep finding columns of tiny profit; stop once the bound proves the value.
        enough = tolerance if tolerance is not None else PROOF_TOLERANCE * max(1.0, abs(lp.value))
        proven = best_bound - lp.value <= enough
        if proven or lp.partial:
            # A partial master was cut by the deadline, and its prices do not price the master's own columns.
            return lp, best_bound, proven, rounds
        added = _price_in(m, reduced_profit(m, c, lp.price), active, _TOL * scale, most)
        if not added:
            return lp, lp.value, True, rounds
        if time.monotonic() >= deadline:
            return lp, best_bound, False, rounds
    return lp, best_bound, False, max_rounds


def assignment_round(m: RoundMatrix) -> bool:
    """Whether every row is a candidate's or a budget's: a generalized assignment problem (the GAP benchmarks)."""
    return bool(len(m.kind)) and bool(np.isin(m.kind, ASSIGNMENT_ROWS).all())


def lexicographic_lp(
    prep: Prepared,
    tiers: Tiers,
    seconds: float = 60.0,
    m: RoundMatrix | None = None,
    weights: list[int] | None = None,
) -> LpBound:
    """Each tier's LP bound in turn, earlier tiers held at their bound; column generation over funding columns.

    With `weights` (each tier outweighing all later ones, `matching.solve.tier_weights`), a tier's LP also values
    the later tiers at their weights: a tier of equal values (placements) is degenerate on its own, the weighted
    LP is not, and its value divided by the tier's weight still bounds the tier (later tiers are never negative).
    """
    started = time.monotonic()
    deadline = started + seconds
    m = m if m is not None else build_matrix(prep)
    active = first_columns(m)
    results: list[TierBound] = []
    lp = LpSolution(False, math.nan, np.zeros(m.n_cols), np.zeros(len(m.lb)), "not run")
    rounds, first_value = 0, math.nan
    c = np.zeros(m.n_cols)
    i = 0
    while i < len(tiers):
        name, values = tiers[i]
        scale = 1.0
        if weights is not None:
            total = sum(w * np.asarray(v, dtype=np.float64) for w, (_, v) in zip(weights[i:], tiers[i:], strict=True))
            c, scale = m.objective(np.asarray(total)), float(weights[i])
        else:
            c = m.objective(values)
        lp, bound, converged, used = generate_columns(m, c, active, deadline)
        rounds += used
        if not lp.ok and results and results[-1].bound > 0 and time.monotonic() < deadline:
            # The held bound of the previous tier was one too high for the LP (the weighted LP's rounding): no
            # solution reaches it, so one less is a valid bound; hold that instead.
            last = results.pop()
            results.append(TierBound(last.name, last.lp, last.bound - 1, last.converged))
            m = _drop_last_row(m).with_rows([_held(tiers[i - 1][1], last.bound - 1)])
            continue
        if not lp.ok:
            results.append(TierBound(name, math.nan, _ceiling(prep, values), False))
            break
        if i == 0:
            first_value = bound
        tier_bound = min(math.floor(bound / scale + 1e-6), _ceiling(prep, values))
        results.append(TierBound(name, lp.value / scale, tier_bound, converged))
        if i < len(tiers) - 1:
            m = m.with_rows([_held(values, tier_bound)])
        i += 1
    for name, values in tiers[len(results) :]:
        results.append(TierBound(name, math.nan, _ceiling(prep, values), False))
    profit = reduced_profit(m, c, lp.price) if lp.ok else np.zeros(m.n_cols)
    return LpBound(
        matrix=m,
        tiers=results,
        w=lp.w,
        price=lp.price,
        profit=profit,
        rounds=rounds,
        columns=int(active[m.y_at : m.o_at].sum()),
        seconds=time.monotonic() - started,
        first_value=first_value,
    )


def _held(values: IntArray, at_least: int) -> tuple[IntArray, FloatArray, float, float]:
    """A row keeping a tier at or above a value."""
    used = np.flatnonzero(values)
    return used, np.asarray(values, dtype=np.float64)[used], float(at_least), math.inf


def _drop_last_row(m: RoundMatrix) -> RoundMatrix:
    keep = len(m.lb) - 1
    return replace(
        m, a=sp.csr_array(m.a[:keep]), lb=m.lb[:keep], ub=m.ub[:keep], kind=m.kind[:keep], owner=m.owner[:keep]
    )


def _ceiling(prep: Prepared, values: IntArray) -> int:
    """Each candidate's best pair, summed: the trivial bound."""
    best = np.zeros(len(prep.instance.candidates), dtype=np.int64)
    np.maximum.at(best, prep.pairs.cand, np.asarray(values, dtype=np.int64))
    return int(best.sum())
