"""The CP-SAT model: one Boolean per eligible pair, plus supervisor and programme choices only where a
capacity, budget or cap can bind (see `matching.rules.prepare`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from matching.input.instance import Policy
from matching.model.side import Row, satisfied, side_rows
from matching.rules.prepare import Prepared
from matching.rules.tables import IntArray
from matching.solvers.greedy import Pick, pinned_pairs
from matching.solvers.objective import tier_ceiling

Progress = Callable[[dict[str, float | int | str]], None]


@dataclass
class Model:
    """A built CP-SAT model with its variables."""

    prep: Prepared
    model: cp_model.CpModel = field(default_factory=cp_model.CpModel)
    x: list[cp_model.IntVar] = field(default_factory=list)
    sup_var: dict[int, cp_model.IntVar] = field(default_factory=dict)  # supervisor option row -> var
    fund_var: dict[int, cp_model.IntVar] = field(default_factory=dict)  # funding row -> var
    # Earmark overflow variables with the funding rows that draw on the earmark and its amount.
    overflow: list[tuple[cp_model.IntVar, IntArray, int]] = field(default_factory=list)
    side: list[Row] = field(default_factory=list)  # floors and no-blocking rows of the policy

    def accepts(self, picks: list[Pick]) -> bool:
        """True when picks from outside the model (a greedy start) meet the side rows, so they may be returned."""
        return satisfied(self.side, [p.pair for p in picks])

    def build(self) -> Model:
        """Add every variable and constraint."""
        prep = self.prep
        n = len(prep.pairs)
        self.x = [self.model.new_bool_var(f"x{k}") for k in range(n)]
        self._assignment()
        self._supervisors()
        self._money()
        for k in pinned_pairs(prep):
            self.model.add(self.x[k] == 1)
        self.side = side_rows(prep)
        for pairs, coef, rhs in self.side:
            terms = cp_model.LinearExpr.weighted_sum([self.x[int(k)] for k in pairs], [int(c) for c in coef])
            self.model.add(terms >= rhs)
        return self

    def _assignment(self) -> None:
        pairs, slots = self.prep.pairs, self.prep.tables.offers.slots
        for group in _groups(pairs.cand):
            if len(group) > 1:
                self.model.add_at_most_one(self.x[k] for k in group)
        for group in _groups(pairs.offer):
            offer = int(pairs.offer[group[0]])
            if len(group) > slots[offer]:
                self.model.add(sum(self.x[k] for k in group) <= int(slots[offer]))

    def _choice(self, rows: IntArray, pair_of_row: IntArray, store: dict[int, cp_model.IntVar], tag: str) -> None:
        """Exactly one of a pair's rows when the pair is chosen (the pair's own variable if it has one row)."""
        for group in _groups(pair_of_row[rows]):
            k = int(pair_of_row[rows[group[0]]])
            if len(group) == 1:
                store[int(rows[group[0]])] = self.x[k]
                continue
            chosen = [self.model.new_bool_var(f"{tag}{rows[g]}") for g in group]
            for g, var in zip(group, chosen, strict=True):
                store[int(rows[g])] = var
            self.model.add(sum(chosen) == self.x[k])

    def _supervisors(self) -> None:
        prep = self.prep
        opts = prep.supervisors
        rows = np.flatnonzero(prep.free_supervisor[opts.pair] < 0)
        self._choice(rows, opts.pair, self.sup_var, "z")
        modelled = np.zeros(len(opts.pair), dtype=bool)
        modelled[rows] = True
        for seat in prep.seat_rows:
            active = seat.rows[modelled[seat.rows]]
            if len(active) > seat.seats:
                self.model.add(sum(self.sup_var[int(r)] for r in active) <= max(0, seat.seats))

    def _money(self) -> None:
        prep, pairs, limits = self.prep, self.prep.pairs, self.prep.tables.limits
        rows = np.flatnonzero(prep.free_programme[pairs.fund_pair] < 0)
        self._choice(rows, pairs.fund_pair, self.fund_var, "y")
        unit_of_offer = prep.tables.offers.unit
        for g in range(len(prep.instance.programmes)):
            grows = rows[pairs.fund_programme[rows] == g]
            if not len(grows):
                continue
            if prep.budget_binding[g]:
                self._budget(g, grows)
            units = unit_of_offer[pairs.offer[pairs.fund_pair[grows]]]
            for u in np.unique(units):
                if prep.unit_cap_binding[g, u]:
                    self.model.add(self._spend(grows[units == u]) <= int(limits.unit_cap_left[g, u]))

    def _spend(self, rows: IntArray) -> cp_model.LinearExpr:
        grant = self.prep.pairs.fund_grant
        expr: cp_model.LinearExpr = cp_model.LinearExpr.weighted_sum(
            [self.fund_var[int(r)] for r in rows], [int(grant[r]) for r in rows]
        )
        return expr

    def _budget(self, g: int, rows: IntArray) -> None:
        limits = self.prep.tables.limits
        marks = self.prep.pairs.fund_earmark[rows]
        # Earmarked matches spend what is left of their earmark first; only the overflow uses general money.
        overflow: list[cp_model.IntVar] = []
        for k, left in enumerate(limits.earmark_left[g].tolist()):
            spend = self._spend(rows[marks == k])
            extra = self.model.new_int_var(0, limits.budget_left(g) + 1, f"overflow{g}_{k}")
            self.model.add(extra >= spend - left)
            overflow.append(extra)
            self.overflow.append((extra, rows[marks == k], left))
        self.model.add(self._spend(rows[marks < 0]) + cp_model.LinearExpr.sum(overflow) <= int(limits.general_left[g]))

    def hint(self, picks: list[Pick]) -> None:
        """Start the search from a feasible solution."""
        self.model.clear_hints()  # type: ignore[no-untyped-call]
        chosen = {p.pair for p in picks}
        sup_rows = {(p.pair, p.supervisor) for p in picks}
        fund_rows = {p.fund_row for p in picks}
        opts = self.prep.supervisors
        for k, var in enumerate(self.x):
            self.model.add_hint(var, k in chosen)
        for r, var in self.sup_var.items():
            if var is not self.x[int(opts.pair[r])]:
                self.model.add_hint(var, (int(opts.pair[r]), int(opts.choice[r])) in sup_rows)
        for r, var in self.fund_var.items():
            if var is not self.x[int(self.prep.pairs.fund_pair[r])]:
                self.model.add_hint(var, r in fund_rows)
        # A complete hint lets CP-SAT start from it as a solution instead of repairing it.
        grant = self.prep.pairs.fund_grant
        for var, rows, amount in self.overflow:
            spend = sum(int(grant[r]) for r in rows if int(r) in fund_rows)
            self.model.add_hint(var, max(0, spend - amount))


def _groups(keys: IntArray) -> list[IntArray]:
    """Indexes grouped by equal key (keys need not be sorted)."""
    if not len(keys):
        return []
    order = np.argsort(keys, kind="stable")
    cuts = np.flatnonzero(np.diff(keys[order])) + 1
    return list(np.split(order, cuts))


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
    options = [_read(built, solver)] if status != cp_model.UNKNOWN else []
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
    found = _read(built, solver)
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
) -> tuple[list[Pick], list[TierResult]]:
    """Maximise each tier in turn, holding earlier tiers at their best value.

    Each tier but the last gets half the time left; a tier that finds nothing keeps the previous tier's solution.
    """
    policy = built.prep.instance.policy
    deadline = time.monotonic() + policy.time_limit_s
    results: list[TierResult] = []
    current = picks if built.accepts(picks) else []
    for position, (name, values) in enumerate(tiers):
        used = np.flatnonzero(values)
        expr = cp_model.LinearExpr.weighted_sum([built.x[k] for k in used], [int(values[k]) for k in used])
        built.model.maximize(expr)
        built.hint(current or picks)
        share = 1.0 if position == len(tiers) - 1 else 0.5
        solver = cp_model.CpSolver()
        _configure(solver, policy, max(0.1, share * (deadline - time.monotonic())))
        started = time.monotonic()
        watcher = _Watcher(name, progress, progress_interval) if progress else None
        status = solver.solve(built.model, watcher)
        seconds = time.monotonic() - started
        if status == cp_model.INFEASIBLE or status == cp_model.MODEL_INVALID:
            results.append(TierResult(name, solver.status_name(status), 0, 0, seconds))
            return [], results
        if status == cp_model.UNKNOWN and not current:
            results.append(TierResult(name, "UNKNOWN", 0, 0, seconds))
            return [], results
        if status == cp_model.UNKNOWN:
            # No solution in time: keep the previous one (it satisfies every earlier tier) and report its value.
            value = int(values[[p.pair for p in current]].sum()) if current else 0
            results.append(TierResult(name, "FEASIBLE", value, round(solver.best_objective_bound), seconds))
            built.model.add(expr >= value)
            continue
        objective = round(solver.objective_value)
        results.append(
            TierResult(name, solver.status_name(status), objective, round(solver.best_objective_bound), seconds)
        )
        current = _read(built, solver)
        built.model.add(expr >= objective)
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
    if policy.deterministic:
        # Deterministic time instead of wall time makes repeated runs identical (a wall-clock guard stays).
        params.max_deterministic_time = seconds
        params.max_time_in_seconds = 10 * seconds + 60
    else:
        params.max_time_in_seconds = seconds
    for key, value in policy.solver_parameters.items():
        setattr(params, key, value)


def _read(built: Model, solver: cp_model.CpSolver) -> list[Pick]:
    """The chosen pairs with supervisor and funding rows (free choices where the model has none)."""
    prep = built.prep
    chosen = [k for k, var in enumerate(built.x) if solver.boolean_value(var)]
    sup_of: dict[int, int] = {}
    for r, var in built.sup_var.items():
        if solver.boolean_value(var):
            sup_of.setdefault(int(prep.supervisors.pair[r]), int(prep.supervisors.choice[r]))
    fund_of: dict[int, int] = {}
    for r, var in built.fund_var.items():
        if solver.boolean_value(var):
            fund_of.setdefault(int(prep.pairs.fund_pair[r]), r)
    free_sup, free_fund = prep.free_supervisor, prep.free_programme
    return [
        Pick(
            pair=k,
            supervisor=sup_of.get(k, int(free_sup[k])),
            fund_row=fund_of.get(k, int(free_fund[k])),
        )
        for k in chosen
    ]
