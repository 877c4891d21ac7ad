"""Reference solvers to measure the engine against: Hungarian, HiGHS MIP and brute force.

Each is independent of the CP-SAT model in `matching.solvers.cpsat` (only the eligible pairs, scores and option rows of
`matching.rules.prepare` are shared), so that agreement between them is evidence that both are right.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, linear_sum_assignment
from scipy.optimize import milp as highs_milp

from matching.model.spec import LinearModel, linear_model
from matching.rules.ledger import Ledger, Use
from matching.rules.prepare import Prepared
from matching.rules.tables import IntArray
from matching.solvers.cpsat import TierResult
from matching.solvers.greedy import Pick, pick_use, pinned_pairs

FloatArray = npt.NDArray[np.float64]
Tiers = Sequence[tuple[str, IntArray]]


# --- Hungarian -----------------------------------------------------------------------------------------------------


def hungarian(prep: Prepared, values: IntArray) -> list[int]:
    """Maximum-value assignment (scipy's Hungarian method, one column per slot), ignoring supervisors and money."""
    # Like min-cost flow, this is the exact optimum only where no supervisor, budget, earmark or cap can bind
    # (`prep.is_flow`), and an upper bound otherwise. Pins are honoured. The cost matrix is dense (candidates x
    # slots) and values are compared as floats, so keep them below 2**53 / candidates.
    pairs = prep.pairs
    values = np.asarray(values, dtype=np.int64)
    pinned = np.asarray(pinned_pairs(prep), dtype=np.int64)
    slots = prep.tables.offers.slots.copy()
    np.subtract.at(slots, pairs.offer[pinned], 1)
    if (slots < 0).any():
        raise ValueError("more pins than slots at an offer")
    taken = np.zeros(len(prep.instance.candidates), dtype=bool)
    taken[pairs.cand[pinned]] = True
    # Pairs of value <= 0 never improve the total, so leaving them out keeps "unassigned" free of charge.
    free = np.flatnonzero(~taken[pairs.cand] & (values > 0) & (slots[pairs.offer] > 0))
    chosen = _assign(pairs.cand[free], pairs.offer[free], values[free], slots)
    return sorted([*pinned.tolist(), *free[chosen].tolist()])


def _assign(cand: IntArray, offer: IntArray, values: IntArray, slots: IntArray) -> IntArray:
    """Indexes of the chosen edges; a zero-cost non-edge cell stands for leaving a candidate unassigned."""
    if not len(cand):
        return np.zeros(0, dtype=np.int64)
    _, row = np.unique(cand, return_inverse=True)
    offers, group = np.unique(offer, return_inverse=True)
    # An offer never needs more columns than it has candidates.
    width = np.minimum(slots[offers], np.bincount(group, minlength=len(offers)))
    col_start = np.concatenate([[0], np.cumsum(width)[:-1]])
    reps = width[group]
    edge = np.repeat(np.arange(len(cand)), reps)
    within = np.arange(len(edge)) - np.repeat(np.cumsum(reps) - reps, reps)
    col = col_start[group][edge] + within
    cost = np.zeros((int(row.max()) + 1, int(width.sum())), dtype=np.float64)
    which = np.full(cost.shape, -1, dtype=np.int64)
    cost[row[edge], col] = -values[edge].astype(np.float64)
    which[row[edge], col] = edge
    rows, cols = linear_sum_assignment(cost)
    hit = which[rows, cols]
    return np.sort(hit[hit >= 0])


# --- HiGHS MIP on the full model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MilpResult:
    """Outcome of the HiGHS MIP, tier by tier."""

    status: str
    tiers: list[TierResult]  # objective of each tier and HiGHS's dual bound (rounded down: values are integers)
    chosen: list[int]  # pair indexes, sorted
    supervisor: list[int]  # per chosen pair, the supervisor index
    fund_row: list[int]  # per chosen pair, the funding row (index into prep.pairs.fund_*)
    lp_bound: float  # LP relaxation of the last tier, earlier tiers held at their optimum
    seconds: float

    @property
    def objectives(self) -> list[int]:
        """Objective value of each tier."""
        return [t.objective for t in self.tiers]

    def picks(self) -> list[Pick]:
        """The chosen pairs as picks, ready for `matching.solvers.solve.build_solution`."""
        return [Pick(k, s, f) for k, s, f in zip(self.chosen, self.supervisor, self.fund_row, strict=True)]


_STATUS = {0: "OPTIMAL", 2: "INFEASIBLE", 3: "MODEL_INVALID"}


def _gap(prep: Prepared, values: IntArray) -> float:
    """A relative gap small enough that HiGHS proves the integer optimum (an absolute gap below one)."""
    best = np.zeros(len(prep.instance.candidates), dtype=np.int64)
    np.maximum.at(best, prep.pairs.cand, np.abs(values))
    return min(1e-4, 0.5 / max(1, int(best.sum())))


def milp(prep: Prepared, tiers: Tiers, time_limit: float = 60.0) -> MilpResult:
    """The round solved by HiGHS (scipy.optimize.milp), one tier at a time, each held at its optimum after."""
    # HiGHS may overrun `time_limit` on large models; run it in a child process with a hard cap where that matters.
    started = time.monotonic()
    deadline = started + time_limit
    if not len(prep.pairs) and not prep.instance.policy.floors:
        # Nothing to choose; with a floor, though, no pairs means the floor cannot be met, which the model says.
        empty = [TierResult(name, "OPTIMAL", 0, 0, 0.0) for name, _ in tiers]
        return MilpResult("OPTIMAL", empty, [], [], [], 0.0, time.monotonic() - started)
    model = linear_model(prep)
    bounds = Bounds(model.var_lb, model.var_ub)
    results: list[TierResult] = []
    x: FloatArray | None = None
    lp = math.nan
    for i, (name, values) in enumerate(tiers):
        if i == len(tiers) - 1:
            lp = _lp(model, values, bounds, deadline)
        tier_start = time.monotonic()
        options = {"time_limit": max(0.05, deadline - tier_start), "mip_rel_gap": _gap(prep, values), "disp": False}
        res = highs_milp(
            model.objective(values),
            integrality=model.integrality,
            bounds=bounds,
            constraints=model.rows.constraint(),
            options=options,
        )
        status = _STATUS.get(int(res.status), "UNKNOWN")
        if res.x is None:
            results.append(TierResult(name, status, 0, 0, time.monotonic() - tier_start))
            return MilpResult(status, results, [], [], [], lp, time.monotonic() - started)
        if status != "OPTIMAL":
            status = "FEASIBLE"
        x = np.asarray(res.x, dtype=np.float64)
        picked = np.flatnonzero(x[: len(prep.pairs)] > 0.5)
        objective = int(np.asarray(values, dtype=np.int64)[picked].sum())
        bound = math.floor(-float(res.mip_dual_bound) + 1e-6) if status == "FEASIBLE" else objective
        results.append(TierResult(name, status, objective, bound, time.monotonic() - tier_start))
        model.rows.add(np.arange(len(prep.pairs)), np.asarray(values), objective - 0.5, np.inf)
    assert x is not None or not tiers
    chosen, sups, funds = _read(model, x)
    overall = "OPTIMAL" if all(r.status == "OPTIMAL" for r in results) else "FEASIBLE"
    return MilpResult(overall, results, chosen, sups, funds, lp, time.monotonic() - started)


def _lp(model: LinearModel, values: IntArray, bounds: Bounds, deadline: float) -> float:
    """The LP relaxation's optimum of `values` (nan when HiGHS does not finish)."""
    res = highs_milp(
        model.objective(values),
        integrality=np.zeros(model.n_vars),
        bounds=bounds,
        constraints=model.rows.constraint(),
        options={"time_limit": max(0.05, deadline - time.monotonic())},
    )
    return -float(res.fun) if int(res.status) == 0 else math.nan


def lp_bound(prep: Prepared, values: IntArray) -> float:
    """Upper bound on the total of `values`: the LP relaxation of the full model (nan when infeasible)."""
    if not len(prep.pairs):
        return 0.0
    model = linear_model(prep)
    return _lp(model, values, Bounds(model.var_lb, model.var_ub), time.monotonic() + 600.0)


def _read(model: LinearModel, x: FloatArray | None) -> tuple[list[int], list[int], list[int]]:
    """Chosen pairs with, for each, the supervisor and funding row whose variable is largest."""
    if x is None:
        return [], [], []
    prep = model.prep
    n, sups, pairs = len(prep.pairs), prep.supervisors, prep.pairs
    chosen = np.flatnonzero(x[:n] > 0.5)
    sup_bounds = np.searchsorted(sups.pair, np.arange(n + 1))
    fund_bounds = np.searchsorted(pairs.fund_pair, np.arange(n + 1))
    z, y = x[model.sup_at : model.fund_at], x[model.fund_at : model.fund_at + len(pairs.fund_pair)]
    sup_of, fund_of = [], []
    for k in chosen:
        lo, hi = sup_bounds[k], sup_bounds[k + 1]
        sup_of.append(int(sups.choice[lo + int(np.argmax(z[lo:hi]))]))
        lo, hi = fund_bounds[k], fund_bounds[k + 1]
        fund_of.append(int(lo + int(np.argmax(y[lo:hi]))))
    return [int(k) for k in chosen], sup_of, fund_of


# --- Brute force ---------------------------------------------------------------------------------------------------


def feasible_picks(prep: Prepared, chosen: Sequence[int]) -> list[Pick] | None:
    """A supervisor and programme for every chosen pair that the Ledger accepts together, or None (exhaustive)."""
    inst, pairs, sups = prep.instance, prep.pairs, prep.supervisors
    sup_bounds = np.searchsorted(sups.pair, np.arange(len(pairs) + 1))
    fund_bounds = np.searchsorted(pairs.fund_pair, np.arange(len(pairs) + 1))
    options: list[list[tuple[Pick, Use]]] = []
    for k in chosen:
        picks = [
            Pick(int(k), int(sups.choice[s]), int(f))
            for s in range(sup_bounds[k], sup_bounds[k + 1])
            for f in range(fund_bounds[k], fund_bounds[k + 1])
        ]
        options.append([(pick, pick_use(prep, pick)) for pick in picks])

    def extend(done: list[tuple[Pick, Use]]) -> list[Pick] | None:
        """Picks completing `done`, or None."""
        if len(done) == len(options):
            return [pick for pick, _ in done]
        # Every resource only fills up, so a set fits in any order; a fresh ledger per node keeps undo trivial.
        ledger = Ledger(inst, prep.tables.limits)
        for _, use in done:
            ledger.add(use)
        for option in options[len(done)]:
            if ledger.fits(option[1]):
                found = extend([*done, option])
                if found is not None:
                    return found
        return None

    return extend([])


def brute_force(prep: Prepared, tiers: Tiers, max_pairs: int = 16) -> list[int]:
    """The lexicographically best feasible set of pairs by enumeration: the oracle for tiny instances."""
    pairs = prep.pairs
    if len(pairs) > max_pairs:
        raise ValueError(f"{len(pairs)} eligible pairs: brute force is for at most {max_pairs}")
    pinned = set(pinned_pairs(prep))
    per_cand: dict[int, list[int | None]] = {}
    for k in range(len(pairs)):
        per_cand.setdefault(int(pairs.cand[k]), [None]).append(k)
    choices = [[k for k in ks if k in pinned] or ks for ks in per_cand.values()]
    slots = prep.tables.offers.slots
    table = np.array([np.asarray(v, dtype=np.int64) for _, v in tiers], dtype=np.int64).reshape(len(tiers), -1)
    ranked: list[tuple[tuple[int, ...], list[int]]] = []
    for combo in itertools.product(*choices):
        chosen = sorted(k for k in combo if k is not None)
        if (np.bincount(pairs.offer[chosen], minlength=len(slots)) > slots).any():
            continue
        ranked.append((tuple(-int(v) for v in table[:, chosen].sum(axis=1)), chosen))
    ranked.sort()
    for _, chosen in ranked:
        if feasible_picks(prep, chosen) is not None:
            return chosen
    raise ValueError("no feasible set of pairs: the pins cannot all be met")
