"""Large-neighbourhood search guided by the LP: improve a complete solution one neighbourhood at a time.

A neighbourhood is a few thousand pairs: those the LP finds attractive (reduced profit near zero, or used
fractionally), among the offers of a few units, one programme's pairs or one county's, or everywhere; plus the
incumbent's own pairs there. Every other column keeps its incumbent value and moves to the right-hand side, so the
sub-model has the same rows with what is left of each slot, seat, budget and cap. CP-SAT solves it from the
incumbent as a complete hint (so it never returns worse), and a better sub-solution replaces the incumbent's part.
This repeats, with neighbourhoods growing when they stop paying off, until the deadline. Every other step is an
offer group instead (`matching.solvers.groups`: a few offers and everyone placed there, every pair among them free),
and the other steps go mostly to the kind that gained the most per second so far.

Before that, `restricted_mip` gives HiGHS (through MathOpt) one larger sub-model: every column left out of the
few thousand with the best reduced profit at the LP's prices (and the incumbent's and the LP's own) held at zero.
The LP says where the good solutions are; a MIP solver with cuts closes most of the gap there far faster than
CP-SAT on the whole round, and far faster than HiGHS on the whole round.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from ortools.math_opt import solution_pb2
from ortools.math_opt.python import mathopt
from ortools.math_opt.solvers import highs_pb2
from ortools.sat.python import cp_model
from scipy.optimize import Bounds, LinearConstraint, milp

from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.clock import WorkClock, guard, limit_cp_sat, reader
from matching.solvers.greedy import Pick
from matching.solvers.groups import GroupSize, affinity, choose_group, incumbent_offer
from matching.solvers.matrix import RoundMatrix
from matching.solvers.mip import highs_request, solve_in_worker
from matching.solvers.simplex import model_proto

Report = Callable[[str, list[Pick]], None]
# Kinds of neighbourhood: offer groups (`matching.solvers.groups`) and the pair neighbourhoods of `neighbourhood`.
KINDS = ["offers", "anywhere", "rins", "programme", "unit", "county"]
PAIR_KINDS = len(KINDS) - 1  # this many failed pair neighbourhoods in a row widen them
MIN_SIZE = 300  # pairs, smallest pair neighbourhood
FADE = 0.8  # weight of a kind's earlier gain and time against its latest step's
FIRST_TRY = 1.5  # seconds, at most, for each kind's first neighbourhood
EXPLORE = 0.1  # share of steps on a kind drawn at random
GROUP_SECONDS = 1.0  # per offer-group neighbourhood, at most
MIN_STEP_WORK = 0.01  # deterministic seconds a neighbourhood counts at least
FEASIBLE = solution_pb2.SOLUTION_STATUS_FEASIBLE
HIGHS_OWN_LIMIT = 0.75  # of the restricted MIP's seconds, for HiGHS's own time limit (it overruns it by up to a third)
INITIAL_SHARE = 0.02  # neighbourhoods start from pairs whose reduced profit is within this share of the top value


@dataclass
class SearchLog:
    """What the search did: neighbourhoods tried and improved, per kind."""

    tried: dict[str, int] = field(default_factory=dict)
    improved: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, better: bool) -> None:
        """Record one neighbourhood."""
        self.tried[kind] = self.tried.get(kind, 0) + 1
        if better:
            self.improved[kind] = self.improved.get(kind, 0) + 1


def sub_model(m: RoundMatrix, free: BoolArray, w: FloatArray) -> tuple[sp.csr_array, FloatArray, FloatArray, IntArray]:
    """The rows over the free columns, with the fixed columns' activity moved to the bounds; rows with no free
    column are dropped (the incumbent already meets them). Returns (A, lb, ub, free column indexes)."""
    cols = np.flatnonzero(free)
    fixed = np.where(free, 0.0, w)
    activity = m.a @ fixed
    a = sp.csr_array(m.a[:, cols])
    used = np.diff(a.indptr) > 0
    return sp.csr_array(a[used]), (m.lb - activity)[used], (m.ub - activity)[used], cols


def solve_neighbourhood(
    m: RoundMatrix,
    c: FloatArray,
    free: BoolArray,
    w: FloatArray,
    seconds: float,
    seed: int,
    workers: int,
    proof: list[bool] | None = None,
    clock: WorkClock | None = None,
) -> FloatArray | None:
    """CP-SAT on the free columns from the incumbent `w`; the improved column values, or None. `proof` (when
    given) gets True appended when CP-SAT proves the neighbourhood's optimum (the incumbent's, if None returns).
    With a `clock` (deterministic rounds), `seconds` are deterministic time, which the solve adds to the clock."""
    a, lb, ub, cols = sub_model(m, free, w)
    model = cp_model.CpModel()
    upper = m.col_ub[cols]
    lower = m.col_lb[cols]
    # 0/1 columns as Booleans (CP-SAT's clauses and exactly-one detection work on those), the overflow as integers.
    xs = [
        model.new_bool_var("")
        if lo == 0 and hi == 1
        else model.new_int_var(math.ceil(lo - 1e-9), math.floor(hi + 1e-9), "")
        for lo, hi in zip(lower.tolist(), upper.tolist(), strict=True)
    ]
    indptr, indices, data = a.indptr, a.indices, a.data.round().astype(np.int64)
    for r in range(len(lb)):
        lo, hi = indptr[r], indptr[r + 1]
        expr = cp_model.LinearExpr.weighted_sum([xs[j] for j in indices[lo:hi]], data[lo:hi].tolist())
        low = -(2**62) if not math.isfinite(lb[r]) else math.ceil(lb[r] - 1e-6)
        high = 2**62 if not math.isfinite(ub[r]) else math.floor(ub[r] + 1e-6)
        model.add_linear_constraint(expr, low, high)
    gain = c[cols].round().astype(np.int64)
    used = np.flatnonzero(gain)
    model.maximize(cp_model.LinearExpr.weighted_sum([xs[j] for j in used], gain[used].tolist()))
    start = np.clip(np.round(w[cols]), m.col_lb[cols], upper)
    for var, value in zip(xs, start.tolist(), strict=True):
        model.add_hint(var, int(value))
    solver = cp_model.CpSolver()
    limit_cp_sat(solver.parameters, max(0.01 if clock is not None else 0.1, seconds), clock is not None)
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    if workers == 1:
        # Small models: the stronger linearisation proves them fastest (as in the engine's CP-SAT path).
        solver.parameters.linearization_level = 2
    status = solver.solve(model)
    if clock is not None:
        # At least a little per solve: a trivial sub-model must still move the clock towards the deadline.
        clock.spent += max(MIN_STEP_WORK, solver.response_proto.deterministic_time)
    if proof is not None:
        proof.append(status == cp_model.OPTIMAL)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    found = w.copy()
    found[cols] = [solver.value(x) for x in xs]
    if float(c @ found) <= float(c @ w) + 0.5:
        return None
    return found


def solve_neighbourhood_highs(
    m: RoundMatrix, tier_costs: list[FloatArray], free: BoolArray, w: FloatArray, seconds: float
) -> FloatArray | None:
    """HiGHS (through scipy) on the free columns, tier by tier: each tier maximised with the earlier ones held at
    what was found (never below the incumbent's). The better column values, or None.

    One MIP per tier is far easier than the weighted sum (a tier of equal values proves fast on its own)."""
    a, lb, ub, cols = sub_model(m, free, w)
    deadline = time.monotonic() + seconds
    held: list[tuple[FloatArray, float]] = []
    best = w
    for position, costs in enumerate(tier_costs):
        share = (deadline - time.monotonic()) / (len(tier_costs) - position)
        floor = float(costs[cols] @ best[cols])
        rows = sp.vstack([a, *[sp.csr_array(h[cols][None, :]) for h, _ in held], sp.csr_array(costs[cols][None, :])])
        low = np.r_[lb, [v for _, v in held], floor]
        high = np.r_[ub, [np.inf] * len(held), np.inf]
        res = milp(
            -costs[cols],
            integrality=m.integer[cols].astype(np.int64),
            bounds=Bounds(m.col_lb[cols], m.col_ub[cols]),
            constraints=LinearConstraint(sp.csr_array(rows), low, high),
            options={"time_limit": max(0.05, share), "disp": False, "mip_rel_gap": 1e-9},
        )
        if res.x is not None:
            found = best.copy()
            found[cols] = np.where(m.integer[cols], np.round(res.x), res.x)
            found[m.o_at :] = m.overflow_values(found)
            if m.violation(found) <= 1e-6 and float(costs @ found) >= float(costs @ best) - 1e-6:
                best = found
        held.append((costs, float(costs[cols] @ best[cols]) - 1e-6))
        if time.monotonic() >= deadline:
            break
    totals = [float(t @ best) for t in tier_costs]
    if totals <= [float(t @ w) + 1e-6 for t in tier_costs]:
        return None
    return best


def restricted_columns(m: RoundMatrix, profit: FloatArray, w: FloatArray, w_lp: FloatArray, count: int) -> BoolArray:
    """The `count` placing columns of best reduced profit, the incumbent's and the LP's columns, the supervisor
    columns of every pair among them, and every overflow column."""
    free = np.zeros(m.n_cols, dtype=bool)
    placing = np.r_[np.arange(m.z_at), np.arange(m.y_at, m.o_at)]
    best = placing[np.argsort(-profit[placing], kind="stable")[:count]]
    free[best] = True
    free |= (w > 0.5) | (w_lp > 1e-6)
    free[m.o_at :] = True
    has_column = m.placed @ free.astype(np.float64) > 0
    free[m.z_at : m.y_at] = has_column[m.prep.supervisors.pair[m.sup_rows]]
    return free


def restricted_mip(
    m: RoundMatrix, c: FloatArray, free: BoolArray, w: FloatArray, seconds: float, nodes: int | None = None
) -> FloatArray | None:
    """HiGHS (through MathOpt, which returns the incumbent at the time limit; OR-Tools' model builder does not) on
    the free columns, the others at zero; better column values than `w`, or None. No hint is given: OR-Tools
    9.15's HiGHS crashes on them, and the sub-model holds the incumbent's columns, so HiGHS finds it or better.

    It runs in a worker process (`matching.solvers.highs_worker`), killed when `seconds` have passed since the call:
    HiGHS's own limit (three quarters of what is left, so that it returns its incumbent itself) is checked too
    rarely, and in this process nothing could stop it (national:0 whole, 0.2 s: 3.9 s in this process).

    With `nodes` (deterministic rounds) HiGHS stops at that many branch-and-bound nodes on one thread instead, and
    the wall clock is only a guard far out: the same sub-model then gives the same solution."""
    if nodes is not None:
        seconds = guard(seconds)
    ends = time.monotonic() + seconds
    a, lb, ub, cols = sub_model(m, free, np.where(free, w, 0.0))
    if not len(cols):
        return None
    proto = model_proto((m.col_lb[cols], m.col_ub[cols], c[cols], lb, ub, sp.csr_array(a)), m.integer[cols])
    left = ends - time.monotonic()
    params = mathopt.SolveParameters(
        time_limit=datetime.timedelta(seconds=max(0.05, HIGHS_OWN_LIMIT * left)),
        node_limit=nodes,
        highs=highs_pb2.HighsOptionsProto(int_options={"threads": 1} if nodes is not None else {}),
    )
    answer = solve_in_worker(highs_request(proto, params), None, left)
    if answer is None:
        return None
    # Read from the answer itself: a MathOpt model of the national round whole took about 0.8 s to build.
    feasible = [s.primal_solution for s in answer.solutions if s.primal_solution.feasibility_status == FEASIBLE]
    if not feasible:
        return None
    found = np.where(free, 0.0, w)
    values = feasible[0].variable_values  # ids are the sub-model's columns (MathOpt lists a solution's nonzeros)
    found[cols[np.asarray(values.ids, dtype=np.int64)]] = np.asarray(values.values, dtype=np.float64)
    found = np.where(m.integer, np.round(found), found)
    found[m.o_at :] = m.overflow_values(found)
    if m.violation(found) > 1e-6 or float(c @ found) <= float(c @ w) + 0.5:
        return None
    return found


def neighbourhood(
    m: RoundMatrix,
    kind: str,
    attractive: BoolArray,
    w: FloatArray,
    size: int,
    rng: np.random.Generator,
    lp_pairs: FloatArray | None = None,
) -> BoolArray:
    """Free columns of one neighbourhood: attractive pairs in a random unit set, programme, county or anywhere (up
    to `size` pairs), the incumbent's pairs among them, and every overflow column."""
    prep = m.prep
    pairs = prep.pairs
    inc_pairs = m.pair_values(w) > 0.5
    pool = attractive | inc_pairs
    if kind == "rins" and lp_pairs is not None:
        # Where the incumbent and the LP agree on a whole pair, keep it; search the rest.
        agreed = inc_pairs & (lp_pairs >= 1 - 1e-6)
        pool = pool & ~agreed
        kind = "anywhere"
    if kind == "unit":
        unit = prep.tables.offers.unit[pairs.offer]
        order = rng.permutation(int(unit.max()) + 1 if len(unit) else 0)
        take = _grow(pool, unit, order, size, pairs.cand, rng)
    elif kind == "programme":
        # A few programmes' money moved around: every pair one of them may pay, placed or attractive.
        chosen = rng.permutation(len(prep.instance.programmes))[: max(2, len(prep.instance.programmes) // 6)]
        payable = np.zeros(len(pairs), dtype=bool)
        payable[pairs.fund_pair[np.isin(pairs.fund_programme, chosen)]] = True
        take = _limit(pool & payable, inc_pairs, size, rng)
    elif kind == "county":
        county = prep.tables.offers.municipality[pairs.offer] // 100
        order = rng.permutation(np.unique(county))
        take = _grow(pool, county, order, size, pairs.cand, rng)
    else:
        take = _limit(pool, inc_pairs, size, rng)
    # Candidates whose incumbent pair stays fixed cannot move; offer rows keep their fixed slots automatically.
    cand_free = np.zeros(len(prep.instance.candidates), dtype=bool)
    cand_free[pairs.cand[take & inc_pairs]] = True
    placed_fixed = np.zeros(len(prep.instance.candidates), dtype=bool)
    placed_fixed[pairs.cand[inc_pairs & ~take]] = True
    take &= ~placed_fixed[pairs.cand]
    return pair_columns(m, take)


def pair_columns(m: RoundMatrix, take: BoolArray) -> BoolArray:
    """Free columns of a set of free pairs: their placing and supervisor columns, and every overflow column."""
    col_pair = m.column_pair
    free = np.zeros(m.n_cols, dtype=bool)
    free[col_pair >= 0] = take[col_pair[col_pair >= 0]]
    free[m.o_at :] = True
    return free


def _limit(take: BoolArray, keep: BoolArray, size: int, rng: np.random.Generator) -> BoolArray:
    """At most `size` pairs: those in `keep` and a random choice of the others."""
    take = take.copy()
    if take.sum() > size:
        extra = np.flatnonzero(take & ~keep)
        take[rng.permutation(extra)[: int(take.sum()) - size]] = False
    return take


def _grow(
    pool: BoolArray, group: IntArray, order: IntArray, size: int, cand: IntArray, rng: np.random.Generator
) -> BoolArray:
    """Whole groups in `order` until `size` pairs of the pool are in; where the last group overshoots, only some
    of its candidates (each with all its pairs there)."""
    take = np.zeros(len(pool), dtype=bool)
    for g in order.tolist():
        more = pool & (group == g)
        if take.sum() + more.sum() > size:
            # One county can hold the whole round (every GAP agent is in one): 38,000 free pairs took 2 s there
            # and never improved, where neighbourhoods of `size` pairs did.
            take |= _some_candidates(more, cand, size - int(take.sum()), rng)
            break
        take |= more
    return take


def _some_candidates(pool: BoolArray, cand: IntArray, size: int, rng: np.random.Generator) -> BoolArray:
    """Candidates of the pool in random order, each with all its pairs in the pool, while they fit in `size` pairs
    (at least one candidate)."""
    at = np.flatnonzero(pool)
    owners, counts = np.unique(cand[at], return_counts=True)
    order = rng.permutation(len(owners))
    owners, counts = owners[order], counts[order]
    keep = owners[: max(1, int(np.searchsorted(np.cumsum(counts), size, side="right")))]
    out = np.zeros(len(pool), dtype=bool)
    out[at[np.isin(cand[at], keep)]] = True
    return out


def attractive_pairs(
    m: RoundMatrix, profit: FloatArray, w_lp: FloatArray, c: FloatArray, share: float, at_least: int = 0
) -> BoolArray:
    """Pairs the LP uses or that lose little at its prices (reduced profit above -share x the largest value); at
    least the `at_least` best by reduced profit."""
    pair_profit = np.full(m.n_pairs, -np.inf)
    placing = sp.coo_array(m.placed)
    np.maximum.at(pair_profit, placing.row, profit[placing.col])
    used = m.pair_values(w_lp) > 1e-6
    out = used | (pair_profit >= -share * max(1.0, float(np.abs(c).max(initial=0.0))))
    if out.sum() < at_least:
        out[np.argsort(-pair_profit, kind="stable")[:at_least]] = True
    return out


def search(
    m: RoundMatrix,
    values: IntArray,
    w: FloatArray,
    profit: FloatArray,
    w_lp: FloatArray,
    deadline: float,
    *,
    seed: int = 0,
    workers: int = 2,
    size: int = 3000,
    step_seconds: float = 3.0,
    report: Report | None = None,
    backend: str = "cp_sat",
    tiers: list[IntArray] | None = None,
    stop: Callable[[FloatArray], bool] | None = None,
    clock: WorkClock | None = None,
) -> tuple[FloatArray, SearchLog]:
    """Improve the incumbent `w` neighbourhood by neighbourhood until the deadline (`tiers`: the tiers' values
    per pair, for the HiGHS backend, which solves them in turn; `stop`: end early after an improvement it accepts).
    With a `clock` (deterministic rounds, CP-SAT backend) the deadline and every step's seconds are on that clock."""
    rng = np.random.default_rng(seed)
    now = reader(clock)
    # Smaller rounds get smaller pair neighbourhoods, and less time for each: on a 20 x 200 GAP round 800 pairs
    # at 1 s found more than 3,000 at 3 s.
    size = min(size, max(MIN_SIZE, m.n_cols // 5))
    step_seconds = min(step_seconds, max(1.0, step_seconds * size / 3000))
    c = m.objective(values)
    tier_costs = [m.objective(t) for t in (tiers or [values])]
    lp_pairs = m.pair_values(w_lp)
    log = SearchLog()
    kinds = [k for k in KINDS if backend != "highs" or k != "offers"]
    # Per kind, the gain and the seconds it took, both fading: the search spends its time where it pays.
    rate = {k: [0.0, 0.0] for k in kinds}
    share, fails = INITIAL_SHARE, 0
    attractive = attractive_pairs(m, profit, w_lp, c, share, size // 2)
    turn = 0
    group_size = GroupSize()
    while deadline - now() > 0.3:
        kind, trial = _choose(kinds, rate, turn, rng)
        turn += 1
        started = now()
        if kind == "offers":
            found = _group_step(m, c, w, attractive, group_size, rng, deadline, seed + turn, workers, clock)
        else:
            free = neighbourhood(m, kind, attractive, w, size, rng, lp_pairs)
            # A trial (a kind's first, or one drawn at random) is short: it only has to show whether the kind pays.
            seconds = min(FIRST_TRY if trial else step_seconds, deadline - now() - 0.2)
            if backend == "highs":
                found = solve_neighbourhood_highs(m, tier_costs, free, w, seconds)
            else:
                found = solve_neighbourhood(m, c, free, w, seconds, seed + turn, workers, clock=clock)
        gain = 0.0 if found is None else float(c @ found - c @ w)
        rate[kind] = [FADE * rate[kind][0] + gain, FADE * rate[kind][1] + now() - started]
        log.count(kind, found is not None)
        if found is not None:
            w = found
            if kind != "offers":
                fails = 0
            if report is not None:
                report(kind, m.picks_of(w))
            if stop is not None and stop(w):
                break
            continue
        if kind == "offers":
            continue
        fails += 1
        if fails % PAIR_KINDS == 0:
            if size >= m.n_cols and share >= 1.0:
                break  # every neighbourhood was already the whole round: nothing wider to look at
            # A full round of kinds found nothing: look wider (more pairs, less attractive ones).
            size = min(int(size * 1.5), m.n_cols)
            share = min(max(2 * share, 1e-5), 1.0)
            attractive = attractive_pairs(m, profit, w_lp, c, share, size // 2)
    return w, log


def _choose(kinds: list[str], rate: dict[str, list[float]], turn: int, rng: np.random.Generator) -> tuple[str, bool]:
    """The next kind, and whether it is a trial: each kind once in turn, then offer groups every other step and
    otherwise mostly the kind with the best gain per second so far (fading), sometimes another at random so that a
    kind that failed early gets another chance."""
    if turn < len(kinds):
        return kinds[turn], True
    if turn % 2 == 0 and "offers" in kinds:
        # Every other step an offer group: they take a second where a pair neighbourhood takes three, and on
        # GAP rounds nearly every one of them improved (22 of 23 on 80 x 1,600, while the other kinds dried up).
        return "offers", False
    best = max(kinds, key=lambda k: rate[k][0] / max(rate[k][1], 1e-3))
    if rng.random() < EXPLORE:
        other = str(rng.choice(kinds))
        return other, other != best
    return best, False


def _group_step(
    m: RoundMatrix,
    c: FloatArray,
    w: FloatArray,
    attractive: BoolArray,
    size: GroupSize,
    rng: np.random.Generator,
    deadline: float,
    seed: int,
    workers: int,
    clock: WorkClock | None = None,
) -> FloatArray | None:
    """CP-SAT on one offer group (`matching.solvers.groups`); adapts the group size to how it went."""
    now = reader(clock)
    at = incumbent_offer(m, w)
    take = choose_group(m, at, attractive, affinity(m, at, attractive), size.pairs, rng)
    seconds = min(GROUP_SECONDS, deadline - now() - 0.2)
    proof: list[bool] = []
    started = now()
    found = solve_neighbourhood(m, c, pair_columns(m, take), w, seconds, seed, workers, proof, clock)
    size.update(bool(proof and proof[0]), now() - started < 0.5 * seconds)
    return found
