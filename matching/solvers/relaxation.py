"""The LP relaxation of the round (HiGHS through scipy): a bound, and a fractional solution that guides hints."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds
from scipy.optimize import milp as highs_milp

from matching.model.spec import linear_model
from matching.rules.prepare import Prepared
from matching.rules.tables import FloatArray, IntArray


@dataclass(frozen=True)
class Relaxation:
    """An optimal LP solution: pair, supervisor-row and funding-row values, and the bound it proves."""

    bound: float
    pair: FloatArray
    supervisor: FloatArray
    funding: FloatArray


def relax(
    prep: Prepared,
    values: IntArray,
    time_limit: float = 10.0,
    at_least: tuple[tuple[IntArray, int], ...] = (),
) -> Relaxation | None:
    """Maximise `values` over the LP relaxation, keeping each (tier values, total) of `at_least` at or above its
    total; None when HiGHS does not finish in time or the LP is infeasible."""
    if not len(prep.pairs):
        return None
    model = linear_model(prep)
    for tier_values, total in at_least:
        model.rows.add(np.arange(len(prep.pairs)), np.asarray(tier_values, dtype=np.float64), total - 0.5, np.inf)
    started = time.monotonic()
    res = highs_milp(
        model.objective(values),
        integrality=np.zeros(model.n_vars),
        bounds=Bounds(model.var_lb, model.var_ub),
        constraints=model.rows.constraint(),
        options={"time_limit": max(0.05, time_limit - (time.monotonic() - started)), "disp": False},
    )
    if int(res.status) != 0 or res.x is None:
        return None
    x = np.asarray(res.x, dtype=np.float64)
    n_fund = len(prep.pairs.fund_pair)
    return Relaxation(
        bound=-float(res.fun),
        pair=x[: len(prep.pairs)],
        supervisor=x[model.sup_at : model.fund_at],
        funding=x[model.fund_at : model.fund_at + n_fund],
    )
