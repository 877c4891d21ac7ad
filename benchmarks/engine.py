"""The engine's solve path on a prepared instance, and HiGHS on the same model, as benchmarks run them.

`matching.solvers.solve.solve` goes from an Instance to a Solution in one call; benchmarks need the steps apart (to time
prepare, solve and explain separately, to switch the hint off, and to solve instances built without an Instance's
eligibility rules, like GAP); `matching.solvers.solve.solve_prepared` is the dispatch it shares with the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds
from scipy.optimize import milp as highs_milp

from matching.model.spec import linear_model, objective_tiers
from matching.rules.prepare import Prepared
from matching.rules.tables import FloatArray, IntArray
from matching.solvers.cpsat import Model, Progress, TierResult, solve_combined, solve_tiers, tier_totals
from matching.solvers.flow import FlowOverflow
from matching.solvers.greedy import Pick
from matching.solvers.objective import tier_weights
from matching.solvers.solve import solve_prepared
from matching.solvers.strategies import Deadline

Tiers = list[tuple[str, IntArray]]
METHODS = ("cp_sat", "flow", "greedy", "auto", "lns", "lagrange", "mip")


@dataclass(frozen=True)
class Outcome:
    """What one method decided: the picks, each tier's result, and a bound on the combined objective."""

    picks: list[Pick]
    tiers: list[TierResult]
    method: str
    status: str
    bound: float | None  # upper bound on the combined objective proven by the method itself


class _NoHintModel(Model):
    """The engine's model with the warm start switched off."""

    def hint(self, picks: list[Pick]) -> None:
        """Leave the search to start cold."""
        self.model.clear_hints()  # type: ignore[no-untyped-call]


def run_engine(
    prep: Prepared,
    method: str,
    *,
    hint: bool = True,
    progress: Progress | None = None,
    started: float | None = None,
) -> Outcome:
    """Solve with the engine's own dispatch (`cp_sat`, `flow`, `greedy` or `auto`); `hint=False` starts CP-SAT cold.
    `started` (monotonic): when the round's time limit began, as `solve` counts it (before prepare); now if None."""
    if method not in METHODS:
        raise ValueError(f"unknown engine method {method!r}; known: {', '.join(METHODS)}")
    tiers = objective_tiers(prep)
    if method == "cp_sat" and not hint:
        picks, results = _solve_cold(prep, tiers, progress)
        used = "cp_sat"
    else:
        deadline = Deadline(started, prep.instance.policy.time_limit_s) if started is not None else None
        picks, results, used = solve_prepared(prep, tiers, method, progress, deadline=deadline)  # type: ignore[arg-type]
    return Outcome(picks, results, used, overall_status(results), combined_bound(prep, tiers, results))


def _solve_cold(prep: Prepared, tiers: Tiers, progress: Progress | None) -> tuple[list[Pick], list[TierResult]]:
    try:
        weights = tier_weights(prep, tiers)
    except FlowOverflow:
        return solve_tiers(_NoHintModel(prep).build(), tiers, [], progress)
    return solve_combined(_NoHintModel(prep).build(), tiers, weights, [], progress)


def overall_status(results: list[TierResult]) -> str:
    """OPTIMAL when every tier is proven, the first failing status if any, FEASIBLE otherwise."""
    if not results:
        return "UNKNOWN"
    bad = [r.status for r in results if r.status not in ("OPTIMAL", "FEASIBLE")]
    if bad:
        return bad[0]
    return "OPTIMAL" if all(r.status == "OPTIMAL" for r in results) else "FEASIBLE"


def combined_bound(prep: Prepared, tiers: Tiers, results: list[TierResult]) -> float | None:
    """Sum of weight x tier bound: a valid (if loose once a tier is open) bound on the combined objective."""
    if len(results) != len(tiers) or overall_status(results) not in ("OPTIMAL", "FEASIBLE"):
        return None
    try:
        weights = tier_weights(prep, tiers)
    except FlowOverflow:
        return None
    return float(sum(w * r.bound for w, r in zip(weights, results, strict=True)))


# --- HiGHS on the same model --------------------------------------------------------------------------------------


def run_highs(prep: Prepared, values: IntArray, time_limit: float) -> Outcome:
    """The combined objective over the full model (`matching.model.spec.linear_model`) in one HiGHS MIP solve."""
    # One solve of the same weighted objective that CP-SAT optimises, so that objectives, bounds and times compare
    # like for like (`matching.solvers.baselines.milp` solves tier by tier and adds an LP solve of its own).
    tiers = objective_tiers(prep)
    if not len(prep.pairs):
        return Outcome([], [TierResult(n, "OPTIMAL", 0, 0, 0.0) for n, _ in tiers], "highs", "OPTIMAL", 0.0)
    model = linear_model(prep)
    best = np.zeros(len(prep.instance.candidates), dtype=np.int64)
    np.maximum.at(best, prep.pairs.cand, np.abs(values))
    ceiling = float(best.sum())
    res = highs_milp(
        model.objective(values),
        integrality=model.integrality,
        bounds=Bounds(model.var_lb, model.var_ub),
        constraints=model.rows.constraint(),
        # An absolute gap below one on an integer objective: a proven optimum is the exact optimum.
        options={"time_limit": time_limit, "mip_rel_gap": max(1e-10, 0.5 / max(1.0, ceiling)), "disp": False},
    )
    if res.x is None:
        status = {2: "INFEASIBLE"}.get(int(res.status), "UNKNOWN")
        return Outcome([], [TierResult(n, status, 0, 0, 0.0) for n, _ in tiers], "highs", status, None)
    status = "OPTIMAL" if int(res.status) == 0 else "FEASIBLE"
    picks = _read_picks(prep, model.sup_at, model.fund_at, np.asarray(res.x, dtype=np.float64))
    totals = tier_totals(picks, tiers)
    results = [TierResult(n, status, t, t, 0.0) for (n, _), t in zip(tiers, totals, strict=True)]
    dual = getattr(res, "mip_dual_bound", None)
    bound = math.floor(-float(dual) + 1e-6) if dual is not None and math.isfinite(float(dual)) else None
    return Outcome(picks, results, "highs", status, float(bound) if bound is not None else None)


def _read_picks(prep: Prepared, sup_at: int, fund_at: int, x: FloatArray) -> list[Pick]:
    """Chosen pairs, each with the supervisor and funding row whose variable is largest."""
    pairs, sups = prep.pairs, prep.supervisors
    n = len(pairs)
    sup_bounds = np.searchsorted(sups.pair, np.arange(n + 1))
    fund_bounds = np.searchsorted(pairs.fund_pair, np.arange(n + 1))
    z, y = x[sup_at:fund_at], x[fund_at : fund_at + len(pairs.fund_pair)]
    picks = []
    for k in np.flatnonzero(x[:n] > 0.5):
        s_lo, s_hi, f_lo, f_hi = sup_bounds[k], sup_bounds[k + 1], fund_bounds[k], fund_bounds[k + 1]
        supervisor = int(sups.choice[s_lo + int(np.argmax(z[s_lo:s_hi]))]) if s_hi > s_lo else -1
        fund_row = int(f_lo + int(np.argmax(y[f_lo:f_hi]))) if f_hi > f_lo else -1
        picks.append(Pick(int(k), supervisor, fund_row))
    return picks


def money_used(prep: Prepared, picks: list[Pick]) -> int:
    """Total grant of the picks, in SEK."""
    rows = np.array([p.fund_row for p in picks if p.fund_row >= 0], dtype=np.int64)
    return int(prep.pairs.fund_grant[rows].sum()) if len(rows) else 0
