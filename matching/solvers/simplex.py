"""GLOP through MathOpt's core, loaded from arrays, with a simplex basis in and out.

Column generation solves a master, adds columns and solves again. From scratch, every master costs about as much
as the first. Started from the last master's basis (the new columns at zero, which keeps it primal feasible),
GLOP's primal simplex needs a fraction of the pivots. Measured on national:0 (2026-12-02, 2 cores, a test run
beside): the LP of the programme choice (`colgen.generate_columns`) converged in 3.7-3.9 s against 5.9-6.7 s, and
the generation over pairs (`pairgen`) in 4.2 s against 13.4 s. OR-Tools' model builder, which loads a sparse matrix
in bulk, takes no basis; MathOpt does, and its protos are filled from numpy arrays in bulk here too (about 1 s for a
stress master of 1.65 M entries, which GLOP then solves in 18 s either way). A basis is a status per column and per
row, as MathOpt numbers them.

A master with many more columns than rows is solved by sifting (`_sift`): GLOP's primal simplex prices every column
at every pivot, so a pivot of the third stress master (81,748 rows, 939,864 columns) cost 4.9 ms, against 0.5 ms
in the first (176,635 columns). From the start basis's prices, the columns of best reduced profit form a working
set (with every column not resting at zero); GLOP solves the working set from the basis, the other columns are
priced at its row prices in one product, those of positive reduced profit join, and so on until none does, which
proves the working set's optimum the whole master's. Measured on the dumped stress masters (2026-12-02, 2 cores):
the second in 31 s instead of 57-60 s, the third in 80 s instead of 155 s, to the same optimum.

Each round's optimum is a feasible solution of the whole master (the other columns at zero), and no worse than the
round before. A sifting cut short by its time limit therefore returns the last finished round's (`partial`): on
the third stress master its first round (15 s of 76) was worth 9,166 placements, where the master's optimum is
9,347 and the second master's 7,502.
"""

from __future__ import annotations

import datetime
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from google.protobuf import text_format
from ortools.math_opt import (
    callback_pb2,
    model_parameters_pb2,
    model_pb2,
    parameters_pb2,
    result_pb2,
    solution_pb2,
)
from ortools.math_opt.core.python import solver

from matching.rules.tables import BoolArray, FloatArray, IntArray

AT_LOWER = solution_pb2.BASIS_STATUS_AT_LOWER_BOUND
FIXED = solution_pb2.BASIS_STATUS_FIXED_VALUE
BASIC = solution_pb2.BASIS_STATUS_BASIC
# Sifting pays where a pivot's pricing dominates: from this many columns, and this many per row.
SIFT_MIN_COLUMNS = 20_000
SIFT_COLUMNS_PER_ROW = 4.0
SIFT_FIRST = 0.1  # of the columns resting at zero, those of best reduced profit, in the first working set
SIFT_JOIN = 0.03  # of the columns, at most, joining the working set per round (those of best reduced profit)
# Positive reduced profit, relative to the largest objective coefficient (GLOP's own tolerance is 1e-8, scaled).
SIFT_TOLERANCE = 1e-9
# A round of sifting may end a little outside GLOP's own precision check (IMPRECISE on the third stress master,
# with objective coefficients of 3e8); the next round goes on from its basis, and the pricing of every column at
# the end is the check that counts. Nothing valid rests on a master's precision: every bound is computed again from
# its prices, and every solution is verified.
SIFT_GLOP = "change_status_to_imprecise:false"


@dataclass(frozen=True)
class Basis:
    """A simplex basis: MathOpt's status of every column and every row."""

    columns: IntArray
    rows: IntArray

    def basic_count(self) -> int:
        """How many columns and rows are basic (a valid basis has one per row)."""
        return int(np.count_nonzero(self.columns == BASIC) + np.count_nonzero(self.rows == BASIC))


@dataclass(frozen=True)
class Simplex:
    """GLOP's answer: optimal or not, the objective, column values, row prices (MathOpt's signs) and the basis."""

    optimal: bool
    value: float
    values: FloatArray
    prices: FloatArray
    basis: Basis | None
    reason: str
    iterations: int  # simplex pivots
    # Not optimal, yet `values` are feasible and `prices` those of the last finished round of a sifting cut short:
    # the optimum over a working set of the columns (the others at zero). Prices bound as any prices do.
    partial: bool = False


Arrays = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, Any]  # col_lb, col_ub, c, lb, ub, A


def maximise(arrays: Arrays, seconds: float, glop: str = "", start: Basis | None = None) -> Simplex:
    """Maximise c.x over lb <= A x <= ub, col_lb <= x <= col_ub (`arrays`, A sparse) by GLOP within `seconds`, with
    `glop` its own parameters (text format) and `start` a basis to begin from (one status per column and row)."""
    col_lb, col_ub, _, lb, ub, _ = arrays
    if np.any(lb > ub) or np.any(col_lb > col_ub):
        # MathOpt rejects crossed bounds as invalid input; to the caller they are an infeasible master.
        return _failed(len(col_lb), len(lb), "INFEASIBLE", 0)
    if start is not None and sifts(len(col_lb), len(lb)):
        return _sift(arrays, seconds, glop, start)
    return _solve(arrays, seconds, glop, start)


def sifts(n_cols: int, n_rows: int) -> bool:
    """Whether `maximise` solves an LP of this shape from a start basis by sifting."""
    return n_cols >= max(SIFT_MIN_COLUMNS, SIFT_COLUMNS_PER_ROW * n_rows)


def _solve(arrays: Arrays, seconds: float, glop: str, start: Basis | None) -> Simplex:
    col_lb, lb = arrays[0], arrays[3]
    request = model_parameters_pb2.ModelSolveParametersProto()
    if start is not None:
        _fill_basis(request.initial_basis, start)
    params = parameters_pb2.SolveParametersProto()
    params.time_limit.FromTimedelta(datetime.timedelta(seconds=max(0.05, seconds)))
    text_format.Parse(glop, params.glop)
    result = solver.solve(
        model_proto(arrays, np.zeros(len(col_lb), dtype=bool)),
        parameters_pb2.SOLVER_TYPE_GLOP,
        parameters_pb2.SolverInitializerProto(),
        params,
        request,
        None,
        callback_pb2.CallbackRegistrationProto(),
        None,
        None,
    )
    return _answer(result, len(col_lb), len(lb))


def _sift(arrays: Arrays, seconds: float, glop: str, start: Basis) -> Simplex:
    """`maximise` by sifting (see the module docstring) from `start`: the same optimum, with the same meaning of
    every field, over every column. `seconds` bound the whole; limits in `glop` (a deterministic round's
    `max_deterministic_time`) bound each round. Cut short by either after a round finished: that round's
    optimum, `partial`."""
    col_lb, col_ub, c, lb, ub, a = arrays
    ends = time.monotonic() + seconds
    a = sp.csc_matrix(a)
    prices = basis_prices(a, c, start)
    if prices is None:
        return _solve(arrays, seconds, glop, start)
    resting = np.isin(start.columns, (AT_LOWER, FIXED)) & (col_lb == 0)
    working = ~resting
    tolerance = SIFT_TOLERANCE * max(1.0, float(np.abs(c).max(initial=0.0)))
    working[_best(resting, c - a.T @ prices, int(SIFT_FIRST * np.count_nonzero(resting)))] = True
    at_rest = np.where(col_lb == col_ub, FIXED, AT_LOWER).astype(np.int64)
    basis, iterations, last = start, 0, None
    while True:
        cols = np.flatnonzero(working)
        found = _solve(
            (col_lb[cols], col_ub[cols], c[cols], lb, ub, a[:, cols]),
            ends - time.monotonic(),
            f"{glop} {SIFT_GLOP}",
            Basis(basis.columns[cols], basis.rows),
        )
        iterations += found.iterations
        if not found.optimal or found.basis is None:
            if last is None:
                return _failed(len(col_lb), len(lb), found.reason, iterations)
            return replace(last, reason=f"{found.reason} after a finished round of sifting", iterations=iterations)
        columns = at_rest.copy()
        columns[cols] = found.basis.columns
        basis = Basis(columns, found.basis.rows)
        values = np.zeros(len(col_lb))
        values[cols] = found.values
        last = Simplex(False, found.value, values, found.prices, basis, found.reason, iterations, partial=True)
        profit = c - a.T @ found.prices
        joining = ~working & (profit > tolerance)
        if not joining.any():
            # Every column outside is priced out: the working set's optimum is the master's.
            return replace(last, optimal=True, partial=False)
        working[_best(joining, profit, max(1, int(SIFT_JOIN * len(col_lb))))] = True


def _best(among: BoolArray, profit: FloatArray, count: int) -> IntArray:
    """Up to `count` of the columns `among`, those of highest `profit`."""
    at = np.flatnonzero(among)
    if len(at) <= count:
        return at
    return at[np.argpartition(-profit[at], count)[:count]]


def basis_prices(a: sp.csc_matrix, c: FloatArray, basis: Basis) -> FloatArray | None:
    """The row prices of a basis (c_B = B^T y, a basic row's slack costing nothing), or None where the statuses
    are not a basis (not one basic per row, or singular)."""
    n_rows = a.shape[0]
    basic_cols = np.flatnonzero(basis.columns == BASIC)
    basic_rows = np.flatnonzero(basis.rows == BASIC)
    if len(basic_cols) + len(basic_rows) != n_rows:
        return None
    slacks = sp.csc_matrix(
        (np.ones(len(basic_rows)), (basic_rows, np.arange(len(basic_rows)))), (n_rows, len(basic_rows))
    )
    b = sp.hstack([a[:, basic_cols], slacks], format="csc")
    try:
        return np.asarray(sla.splu(b.T.tocsc()).solve(np.r_[c[basic_cols], np.zeros(len(basic_rows))]))
    except RuntimeError:  # singular
        return None


def model_proto(arrays: Arrays, integer: BoolArray) -> model_pb2.ModelProto:
    """The arrays as a MathOpt model (maximising), variables and rows numbered as the arrays' columns and rows."""
    col_lb, col_ub, objective, lb, ub, a = arrays
    proto = model_pb2.ModelProto()
    proto.variables.ids.extend(range(len(col_lb)))
    proto.variables.lower_bounds.extend(col_lb.tolist())
    proto.variables.upper_bounds.extend(col_ub.tolist())
    proto.variables.integers.extend(integer.tolist())
    proto.objective.maximize = True
    used = np.flatnonzero(objective)
    proto.objective.linear_coefficients.ids.extend(used.tolist())
    proto.objective.linear_coefficients.values.extend(objective[used].tolist())
    proto.linear_constraints.ids.extend(range(len(lb)))
    proto.linear_constraints.lower_bounds.extend(lb.tolist())
    proto.linear_constraints.upper_bounds.extend(ub.tolist())
    # MathOpt wants the entries sorted by row, then column, each once and none zero: a canonical CSR gives that.
    entries = sp.csr_matrix(a, copy=True)
    entries.sum_duplicates()
    entries.eliminate_zeros()
    entries.sort_indices()
    rows = np.repeat(np.arange(entries.shape[0]), np.diff(entries.indptr))
    proto.linear_constraint_matrix.row_ids.extend(rows.tolist())
    proto.linear_constraint_matrix.column_ids.extend(entries.indices.tolist())
    proto.linear_constraint_matrix.coefficients.extend(entries.data.tolist())
    return proto


def _fill_basis(proto: solution_pb2.BasisProto, basis: Basis) -> None:
    proto.variable_status.ids.extend(range(len(basis.columns)))
    proto.variable_status.values.extend(basis.columns.tolist())
    proto.constraint_status.ids.extend(range(len(basis.rows)))
    proto.constraint_status.values.extend(basis.rows.tolist())


def _answer(result: result_pb2.SolveResultProto, n_cols: int, n_rows: int) -> Simplex:
    reason = result_pb2.TerminationReasonProto.Name(result.termination.reason)
    optimal = result.termination.reason == result_pb2.TERMINATION_REASON_OPTIMAL and len(result.solutions) > 0
    iterations = int(result.solve_stats.simplex_iterations)
    if not optimal:
        return _failed(n_cols, n_rows, reason, iterations)
    solution = result.solutions[0]
    values = _dense(solution.primal_solution.variable_values, n_cols)
    prices = _dense(solution.dual_solution.dual_values, n_rows)
    basis = None
    if solution.HasField("basis"):
        basis = Basis(
            _dense(solution.basis.variable_status, n_cols).astype(np.int64),
            _dense(solution.basis.constraint_status, n_rows).astype(np.int64),
        )
    return Simplex(True, float(solution.primal_solution.objective_value), values, prices, basis, reason, iterations)


def _failed(n_cols: int, n_rows: int, reason: str, iterations: int) -> Simplex:
    """GLOP's answer where it found no optimum: no value, zero columns and prices, no basis."""
    return Simplex(False, math.nan, np.zeros(n_cols), np.zeros(n_rows), None, reason, iterations)


def _dense(vector: Any, n: int) -> FloatArray:
    """A MathOpt sparse vector (ids and values) as a dense array of length n."""
    out = np.zeros(n, dtype=np.float64)
    out[np.asarray(vector.ids, dtype=np.int64)] = np.asarray(vector.values, dtype=np.float64)
    return out
