"""GLOP through MathOpt's core, loaded from arrays, with a simplex basis in and out.

Column generation solves a master, adds columns and solves again. From scratch, every master costs about as much
as the first. Started from the last master's basis (the new columns at zero, which keeps it primal feasible),
GLOP's primal simplex needs a fraction of the pivots. Measured on national:0 (2026-12-02, 2 cores, a test run
beside): the LP of the programme choice (`colgen.generate_columns`) converged in 3.7-3.9 s against 5.9-6.7 s, and
the generation over pairs (`pairgen`) in 4.2 s against 13.4 s. OR-Tools' model builder, which loads a sparse matrix
in bulk, takes no basis; MathOpt does, and its protos are filled from numpy arrays in bulk here too (about 1 s for a
stress master of 1.65 M entries, which GLOP then solves in 18 s either way). A basis is a status per column and per
row, as MathOpt numbers them.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
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


Arrays = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, Any]  # col_lb, col_ub, c, lb, ub, A


def maximise(arrays: Arrays, seconds: float, glop: str = "", start: Basis | None = None) -> Simplex:
    """Maximise c.x over lb <= A x <= ub, col_lb <= x <= col_ub (`arrays`, A sparse) by GLOP within `seconds`, with
    `glop` its own parameters (text format) and `start` a basis to begin from (one status per column and row)."""
    col_lb, col_ub, _, lb, ub, _ = arrays
    if np.any(lb > ub) or np.any(col_lb > col_ub):
        # MathOpt rejects crossed bounds as invalid input; to the caller they are an infeasible master.
        return Simplex(False, math.nan, np.zeros(len(col_lb)), np.zeros(len(lb)), None, "INFEASIBLE", 0)
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
        return Simplex(False, math.nan, np.zeros(n_cols), np.zeros(n_rows), None, reason, iterations)
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


def _dense(vector: Any, n: int) -> FloatArray:
    """A MathOpt sparse vector (ids and values) as a dense array of length n."""
    out = np.zeros(n, dtype=np.float64)
    out[np.asarray(vector.ids, dtype=np.int64)] = np.asarray(vector.values, dtype=np.float64)
    return out
