"""Strategies behind one interface, one class each, and the choice among them by the round's structure and size.

Every strategy gets a `Context`: the prepared round, its objective tiers, the model (built once, on first use), an
end-to-end `Deadline` and a `Reporter` for progress a person can read. It returns the chosen pairs with each tier's
objective and bound. A new strategy is a class with `name`, `applies` and `run`, named in
`matching.solvers.select`, which chooses among them.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np

from matching.model.side import satisfied, side_rows
from matching.model.spec import Spec, Tier, build_spec
from matching.rules.prepare import Prepared
from matching.rules.tables import FloatArray, IntArray
from matching.solvers import highs_worker
from matching.solvers.clock import guard
from matching.solvers.cpsat import (
    Model,
    TierResult,
    relative_gap,
    solve_restricted,
    solve_tiers,
    tier_totals,
)
from matching.solvers.flow import FlowOverflow, max_weight_assignment
from matching.solvers.greedy import Pick, Preference, greedy, pinned_pairs, place_in_order
from matching.solvers.mip import Guide, LinearBackend, Polish, lexicographic
from matching.solvers.objective import combined_values, tier_ceiling, tier_weights
from matching.solvers.relaxation import Relaxation, relax
from matching.solvers.submodel import Parts
from matching.solvers.tiered import Polisher

ProgressValue = float | int | str
Progress = Callable[[dict[str, ProgressValue]], None]

EXPLAIN_SHARE = 0.05  # of the time limit, kept for the reasons of the unmatched and the solution's figures
LP_HINT_MAX_ROWS = 100_000  # funding rows; national rounds (~350k) take HiGHS over a minute
MIP_MAX_COLUMNS = 60_000  # pairs + supervisor rows + funding rows up to which the MIP backend is tried at all
NODES_PER_SECOND = 200  # deterministic mode: HiGHS's node budget per second of time limit, instead of the clock
MIP_COLUMNS_PER_SECOND = 1_500  # HiGHS is run on a tier when the model has at most this many columns per second
PART_SHARE, PART_SECONDS_MIN, PART_SECONDS_MAX = 1 / 15, 0.1, 1.0  # time limit of one CP-SAT part: share of the limit
DETERMINISTIC_PARTS = 10  # parts per tier in deterministic mode (each with a deterministic time limit), at most
DETERMINISTIC_PARTS_PER_SECOND = 3  # of the time limit: fewer parts in short rounds (`deterministic_parts`)
MIN_DETERMINISTIC_PARTS = 3
EXPLAIN_PER_PREPARE = 1.5  # the mip strategy keeps this many times the preparation's seconds for the explanations


@dataclass(frozen=True)
class Deadline:
    """The end-to-end time limit of a round, counted from when solving was asked for."""

    started: float
    limit: float

    @property
    def end(self) -> float:
        """When the whole round must be done."""
        return self.started + self.limit

    @property
    def search_end(self) -> float:
        """When the search must stop, leaving time to explain the result."""
        return self.end - EXPLAIN_SHARE * self.limit

    def left(self) -> float:
        """Search seconds left (never below a token amount, so a late phase still returns what it has)."""
        return max(0.05, self.search_end - time.monotonic())


@dataclass
class Reporter:
    """Progress a person can read: the phase, placements and score found, the bound and the gap in per cent.

    Each report also carries `tier`, `objective`, `bound` and `gap` (a fraction) of the tier being decided, so that
    readers of the older format keep working. Reports come at most every `interval` seconds, except phase changes.
    """

    callback: Progress | None
    started: float
    interval: float = 1.0
    last: float = -math.inf
    phase: str = "prepare"

    def report(
        self,
        phase: str,
        *,
        placements: int | None = None,
        score: int | None = None,
        tier: str = "",
        objective: float | None = None,
        bound: float | None = None,
        strategy: str = "",
    ) -> None:
        """Send one progress report (dropped when the last was under `interval` ago and the phase is the same)."""
        now = time.monotonic()
        if self.callback is None or (phase == self.phase and now - self.last < self.interval):
            return
        self.phase, self.last = phase, now
        values: dict[str, ProgressValue] = {"phase": phase, "elapsed": round(now - self.started, 3)}
        if strategy:
            values["strategy"] = strategy
        if placements is not None:
            values["placements"] = placements
        if score is not None:
            values["score"] = score
        if objective is not None and bound is not None:
            gap = relative_gap(objective, bound)
            values.update(tier=tier, objective=objective, bound=bound, gap=gap, gap_percent=round(100 * gap, 3))
        self.callback(values)

    def picks(self, phase: str, prep: Prepared, picks: list[Pick], strategy: str = "") -> None:
        """Report what a set of picks places and scores."""
        chosen = np.array([p.pair for p in picks], dtype=np.int64)
        score = int(prep.scores.total[chosen].sum()) if len(chosen) else 0
        self.report(phase, placements=len(picks), score=score, strategy=strategy)

    def result(self, phase: str, prep: Prepared, picks: list[Pick], tier: TierResult, strategy: str) -> None:
        """Report a finished result: placements, score, and a tier's objective and bound."""
        chosen = np.array([p.pair for p in picks], dtype=np.int64)
        score = int(prep.scores.total[chosen].sum()) if len(chosen) else 0
        self.report(
            phase,
            placements=len(picks),
            score=score,
            tier=tier.name,
            objective=tier.objective,
            bound=tier.bound,
            strategy=strategy,
        )

    def cp_sat(self, names: list[str], weights: list[int]) -> Callable[[dict[str, ProgressValue]], None]:
        """A CP-SAT progress callback that reports through this reporter. CP-SAT sees one weighted sum; it is split
        back into tiers (each weight exceeds everything after it) so that people read placements and score, and the
        bound and gap of the tier being decided (the first whose bound is above what was found)."""

        def forward(values: dict[str, ProgressValue]) -> None:
            found = _split(float(values["objective"]), weights)
            bound = _split(float(values["bound"]), weights)
            at = next((i for i, (f, b) in enumerate(zip(found, bound, strict=True)) if b > f), len(names) - 1)
            parts = dict(zip(names, found, strict=True))
            self.report(
                "search",
                placements=parts.get("placements"),
                score=parts.get("score"),
                tier=names[at],
                objective=found[at],
                bound=max(found[at], bound[at]),
                strategy="cp_sat",
            )

        return forward


def _split(total: float, weights: list[int]) -> list[int]:
    """A weighted sum of non-negative tier totals back into the totals (each weight exceeds all later tiers)."""
    rest, out = math.floor(total + 1e-6), []
    for weight in weights:
        part, rest = divmod(rest, weight)
        out.append(int(part))
    return out


@dataclass
class Context:
    """What a strategy works with."""

    prep: Prepared
    tiers: list[Tier]
    deadline: Deadline
    reporter: Reporter
    _spec: Spec | None = field(default=None, repr=False)

    @cached_property
    def spec(self) -> Spec:
        """The round's model, built on first use."""
        self.reporter.report("model")
        return build_spec(self.prep, self.tiers)

    @property
    def deterministic(self) -> bool:
        """Same input, same result: fixed work budgets instead of the clock."""
        return self.prep.instance.policy.deterministic


@dataclass(frozen=True)
class Outcome:
    """What a strategy found: the picks and, per tier, the objective and bound."""

    picks: list[Pick]
    results: list[TierResult]
    method: str


class Strategy(ABC):
    """One way of solving a round."""

    name: ClassVar[str]

    def applies(self, ctx: Context) -> bool:
        """True when the strategy can solve this round."""
        return True

    @abstractmethod
    def run(self, ctx: Context) -> Outcome:
        """Solve the round within ctx.deadline."""


# --- the strategies -------------------------------------------------------------------------------------------------


class GreedyStrategy(Strategy):
    """Pairs in order of combined value, each placed where a supervisor and money are left. Proves nothing."""

    name = "greedy"

    def run(self, ctx: Context) -> Outcome:
        prep, tiers = ctx.prep, ctx.tiers
        picks = greedy(prep, combined_values(prep, tiers))
        # Greedy cannot prove anything; if it could not seat every pin, it has no valid solution to offer.
        valid = {p.pair for p in picks} >= set(pinned_pairs(prep)) and satisfied(
            side_rows(prep), [p.pair for p in picks]
        )
        results = tier_report(prep, tiers, picks, "FEASIBLE" if valid else "UNKNOWN")
        ctx.reporter.result("greedy", prep, picks, results[-1], self.name)
        return Outcome(picks, results, "greedy")


class FlowStrategy(Strategy):
    """Min-cost flow: exact when no supervisor, budget, cap or side rule can bind."""

    name = "min_cost_flow"

    def applies(self, ctx: Context) -> bool:
        if not ctx.prep.is_flow:
            return False
        try:
            combined_values(ctx.prep, ctx.tiers)
        except FlowOverflow:
            return False
        return True

    def run(self, ctx: Context) -> Outcome:
        ctx.reporter.report("search", strategy=self.name)
        picks = flow_picks(ctx.prep, combined_values(ctx.prep, ctx.tiers))
        results = tier_report(ctx.prep, ctx.tiers, picks, "OPTIMAL")
        ctx.reporter.result("optimal", ctx.prep, picks, results[-1], self.name)
        return Outcome(picks, results, self.name)


class MipStrategy(Strategy):
    """The model tier by tier (most placements, then with that count held the best score): per tier the LP, a
    rounded LP, then HiGHS (where it can finish in the time limit) in a thread beside CP-SAT on parts of the model
    improving the best solution known; the tier ends with the better of the two. Starts from the rounded LP (the best
    greedy order only when that gives nothing)."""

    name = "mip_highs"

    def __init__(self, highs: bool | None = None) -> None:
        # None: HiGHS where it can finish in the time limit (`mip_affordable`); True or False: always or never.
        self.highs = highs

    def applies(self, ctx: Context) -> bool:
        return columns(ctx.prep) <= MIP_MAX_COLUMNS

    def run(self, ctx: Context) -> Outcome:
        # What preparing took so far measures the round's size and the machine's load at once: the explanations
        # after the search take about as long (0.02-0.2 s on regional rounds, up to 0.21 s at load 7 where 5 % of a
        # 2 s limit kept 0.1 s), so the search keeps EXPLAIN_PER_PREPARE times that for them.
        reserve = EXPLAIN_PER_PREPARE * (time.monotonic() - ctx.deadline.started)
        prep, tiers, spec = ctx.prep, ctx.tiers, ctx.spec
        ctx.reporter.report("hint", strategy=self.name)

        def fallback() -> FloatArray | None:
            # Asked for only when the rounded LP gives nothing: greedy costs 0.1-0.3 s on a loaded regional round.
            start = greedy_start(prep, tiers)
            ctx.reporter.picks("hint", prep, start, self.name)
            return spec.vector(*_columns(start)) if satisfied(side_rows(prep), [p.pair for p in start]) else None

        backend = LinearBackend(spec, full=True)
        end = min(ctx.deadline.search_end, ctx.deadline.end - reserve)
        limit = prep.instance.policy.time_limit_s
        if ctx.deterministic:
            # Node budgets instead of the clock (a wall-clock guard stays far out): the same input, the same result.
            backend.deterministic_nodes = max(50, int(NODES_PER_SECOND * limit))
            end = time.monotonic() + guard(limit)
        use_mip = mip_affordable(prep) if self.highs is None else self.highs
        if use_mip:
            highs_worker.warm()  # HiGHS's process starts (and loads OR-Tools) while the LP is solved
        values, outcomes = lexicographic(
            backend,
            tiers,
            end,
            fallback,
            on_tier=self._progress(ctx, spec),
            rounder=lambda lp: _rounded(ctx, spec, lp),
            polish=_polish(ctx, spec),
            use_mip=use_mip,
            parallel=not ctx.deterministic,
            combined=_combined(prep, tiers),
        )
        results = [TierResult(o.tier.name, o.status, o.objective, o.bound, o.seconds) for o in outcomes]
        if values is None:
            return Outcome([], results, self.name)
        chosen, sups, funds = spec.choices(values)
        picks = [Pick(int(k), int(s), int(f)) for k, s, f in zip(chosen, sups, funds, strict=True)]
        return Outcome(picks, results, self.name)

    def _progress(self, ctx: Context, spec: Spec) -> Callable[[int, str, int, int, np.ndarray], None]:
        def on_tier(position: int, name: str, objective: int, bound: int, values: np.ndarray) -> None:
            chosen = np.flatnonzero(values[: spec.n_pairs] > 0.5)
            ctx.reporter.report(
                f"tier {position + 1} of {len(ctx.tiers)}: {name}",
                placements=len(chosen),
                score=int(ctx.prep.scores.total[chosen].sum()),
                tier=name,
                objective=objective,
                bound=bound,
                strategy=self.name,
            )

        return on_tier


class CpSatStrategy(Strategy):
    """CP-SAT on the model, from a complete hint: the best of greedy orders and a rounded LP, improved on the LP's
    support first; then the tiers as a sequence (most placements, with the LP bound as a cut; then, with that count
    held as a constraint, the best score, hinted with the first tier's solution)."""

    name = "cp_sat"

    def run(self, ctx: Context) -> Outcome:
        prep, tiers = ctx.prep, ctx.tiers
        limit = prep.instance.policy.time_limit_s
        ctx.reporter.report("hint", strategy=self.name)
        hint, lp = _hint(prep, tiers, lp_seconds=min(limit / 4, ctx.deadline.left() / 3))
        ctx.reporter.picks("hint", prep, hint, self.name)
        bounds: list[int | None] = []
        try:
            weights = tier_weights(prep, tiers)
        except FlowOverflow:
            weights = []
        if lp is not None and weights:
            # Good solutions mostly use pairs that the LP uses: solving that small model first gives a far better
            # start.
            for support in _lp_supports(prep, tiers, lp, seconds=min(limit / 8, ctx.deadline.left() / 4)):
                seconds = min(5.0, limit / 6, ctx.deadline.left() / 3)
                hint = solve_restricted(Model(prep).build(), tiers, weights, support, hint, seconds=seconds)
            ctx.reporter.picks("hint", prep, hint, self.name)
            # The combined LP's first tier is within 1 - 1/weight of that tier's own LP optimum (later tiers are
            # worth less than one unit of it): a valid cut for the first tier's search.
            if all(bool((values >= 0).all()) for _, values in tiers[1:]):
                first = float(np.asarray(tiers[0][1], dtype=np.float64) @ lp.pair)
                bounds = [math.floor(first + 1 - 1 / weights[0] + 1e-6)]
        # Deterministic rounds get a fixed share, not what the wall clock leaves, so that a re-run repeats exactly.
        remaining = limit / 2 if ctx.deterministic else ctx.deadline.left()
        picks, results = solve_tiers(
            Model(prep).build(),
            tiers,
            hint,
            seconds=remaining,
            bounds=bounds,
            on_tier=lambda found, result: ctx.reporter.result(f"tier {result.name}", prep, found, result, self.name),
        )
        return Outcome(picks, _tighten_last_tier(prep, tiers, results, ctx.deadline.left()), self.name)


def columns(prep: Prepared) -> int:
    """Columns of the full model: pairs, supervisor rows and funding rows."""
    return len(prep.pairs) + len(prep.supervisors.pair) + len(prep.pairs.fund_pair)


def mip_affordable(prep: Prepared) -> bool:
    """HiGHS can be expected to finish a tier in the time limit: at most MIP_COLUMNS_PER_SECOND columns per second
    (it proves the demo region, 9,900 columns, in about 5 s; a regional round of 18,000 columns takes 2-4 s per tier
    and overruns a 2 s limit)."""
    return columns(prep) <= MIP_COLUMNS_PER_SECOND * prep.instance.policy.time_limit_s


def _polish(ctx: Context, spec: Spec) -> Polish:
    """CP-SAT on parts of the model, improving a tier of a complete solution (spec columns in and out)."""
    prep = ctx.prep
    policy = prep.instance.policy
    parts = Parts(spec, ctx.tiers)
    polisher = Polisher(
        parts,
        seed=policy.seed,
        deterministic=ctx.deterministic,
        part_seconds=max(PART_SECONDS_MIN, min(PART_SECONDS_MAX, policy.time_limit_s * PART_SHARE)),
    )

    def polish(
        position: int,
        start: FloatArray,
        held: list[tuple[IntArray, int]],
        end: float,
        bound: int,
        guides: list[Guide],
        stop: Callable[[], bool],
    ) -> tuple[FloatArray, bool]:
        tier = ctx.tiers[position]
        found = polisher.improve(
            tier,
            start[parts.core.columns],
            held,
            end,
            bound=bound,
            guides=[(g.pairs, g.later) for g in guides],
            later=[t.values for t in ctx.tiers[position + 1 :]],
            stop=stop,
            max_parts=deterministic_parts(policy.time_limit_s) if ctx.deterministic else None,
        )
        picks = parts.picks(found)
        ctx.reporter.picks(f"tier {position + 1} of {len(ctx.tiers)}: {tier.name} (parts)", prep, picks, "mip_highs")
        return spec.vector(*_columns(picks)), polisher.proven

    return polish


def deterministic_parts(limit: float) -> int:
    """CP-SAT parts per tier in a deterministic round of this time limit. Each part costs its model's building
    besides its deterministic time, which matters in short rounds: a regional round at 2 s took 2.1-2.6 s with 10
    parts and 1.7-2.2 s with 6 (scores 750,583 and 753,297 against 756,248 and 765,602; the LP's part without its
    wall-clock floor in both). From 3.4 s, 10."""
    return int(min(DETERMINISTIC_PARTS, max(MIN_DETERMINISTIC_PARTS, round(DETERMINISTIC_PARTS_PER_SECOND * limit))))


def _combined(prep: Prepared, tiers: list[Tier]) -> tuple[IntArray, int] | None:
    """The tiers as one value per pair, and the first tier's weight (None past 64 bits)."""
    try:
        return combined_values(prep, tiers), tier_weights(prep, tiers)[0]
    except FlowOverflow:
        return None


def _rounded(ctx: Context, spec: Spec, lp: FloatArray) -> FloatArray | None:
    """An LP solution rounded to a feasible one: pairs in order of LP value, each placed where it fits, preferring
    the supervisors and programmes the LP uses (None when the result breaks a side rule)."""
    prep = ctx.prep
    values, _ = _values(prep, ctx.tiers)
    by_lp = np.lexsort((-values, -np.round(lp[: spec.n_pairs], 6)))
    preference = Preference(supervisor=lp[spec.sup_at : spec.fund_at], funding=lp[spec.fund_at : spec.over_at])
    picks = place_in_order(prep, [*pinned_pairs(prep), *map(int, by_lp)], preference=preference)
    if not satisfied(side_rows(prep), [p.pair for p in picks]):
        return None
    return spec.vector(*_columns(picks))


# --- shared pieces --------------------------------------------------------------------------------------------------


def _columns(picks: list[Pick]) -> tuple[IntArray, IntArray, IntArray]:
    pair = np.array([p.pair for p in picks], dtype=np.int64)
    sup = np.array([p.supervisor for p in picks], dtype=np.int64)
    fund = np.array([p.fund_row for p in picks], dtype=np.int64)
    return pair, sup, fund


def tier_report(prep: Prepared, tiers: list[Tier], picks: list[Pick], status: str) -> list[TierResult]:
    """Each tier's value for picks; the bound is the value when proven, else each candidate's best."""
    chosen = np.array([p.pair for p in picks], dtype=np.int64)
    out = []
    for name, values in tiers:
        value = int(values[chosen].sum()) if len(chosen) else 0
        bound = value if status == "OPTIMAL" else tier_ceiling(prep, values)
        out.append(TierResult(name, status, value, bound, 0.0))
    return out


def flow_picks(prep: Prepared, values: IntArray) -> list[Pick]:
    """The min-cost flow optimum of `values`, with the free supervisor and programme of each pair."""
    pairs = prep.pairs
    chosen, _ = max_weight_assignment(pairs.cand, pairs.offer, values, prep.tables.offers.slots, pinned_pairs(prep))
    sup, fund = prep.free_supervisor, prep.free_programme
    return [Pick(pair=int(k), supervisor=int(sup[k]), fund_row=int(fund[k])) for k in chosen]


def _orders(prep: Prepared, values: IntArray) -> list[list[int]]:
    """Pair orders for greedy placement: the flow relaxation's picks first, by value, and by cheapest funding."""
    pins = pinned_pairs(prep)
    by_value = np.lexsort((np.arange(len(values)), -values))
    relaxed, _ = max_weight_assignment(prep.pairs.cand, prep.pairs.offer, values, prep.tables.offers.slots, pins)
    flow_first = [*relaxed[np.argsort(-values[relaxed], kind="stable")], *by_value]
    # When money binds, cheap matches place more people: try the cheapest funding first too.
    cheapest = np.full(len(prep.pairs), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(cheapest, prep.pairs.fund_pair, prep.pairs.fund_grant)
    by_cost = np.lexsort((-values, cheapest))
    return [[*pins, *map(int, order)] for order in (flow_first, by_value, by_cost)]


def _values(prep: Prepared, tiers: list[Tier]) -> tuple[IntArray, bool]:
    try:
        return combined_values(prep, tiers), True
    except FlowOverflow:
        return tiers[-1][1], False


def greedy_start(prep: Prepared, tiers: list[Tier], orders: int = 3) -> list[Pick]:
    """The best of a few greedy orders: a complete, feasible start (side rules aside) in well under a second."""
    values, _ = _values(prep, tiers)
    candidates = [place_in_order(prep, order) for order in _orders(prep, values)[:orders]]
    return max(candidates, key=lambda picks: tier_totals(picks, tiers))


def _hint(prep: Prepared, tiers: list[Tier], lp_seconds: float) -> tuple[list[Pick], Relaxation | None]:
    """A feasible start, the best of a few greedy orders and a rounded LP; and the LP relaxation of the combined
    tiers (None when the tiers cannot be combined or the LP did not finish)."""
    values, combined = _values(prep, tiers)
    candidates = [place_in_order(prep, order) for order in _orders(prep, values)]
    # HiGHS needs far longer than a round's time limit for the LP of very large models: skip it there.
    lp = relax(prep, values, time_limit=lp_seconds) if len(prep.pairs.fund_pair) <= LP_HINT_MAX_ROWS else None
    if lp is not None:
        # The LP optimum is nearly integral on assignments: round it by walking pairs in order of LP value.
        by_lp = np.lexsort((-values, -np.round(lp.pair, 6)))
        preference = Preference(supervisor=lp.supervisor, funding=lp.funding)
        candidates.append(place_in_order(prep, [*pinned_pairs(prep), *by_lp], preference=preference))
    best = max(candidates, key=lambda picks: tier_totals(picks, tiers))
    return best, (lp if combined else None)


def _lp_supports(prep: Prepared, tiers: list[Tier], lp: Relaxation, seconds: float) -> list[IntArray]:
    """Pairs used by the combined LP; then those and the pairs used by the LP of the last tier with the earlier
    tiers held at the combined LP's level.

    The combined LP favours the first tier so strongly that its support misses pairs that good later-tier
    solutions need; the second LP adds them.
    """
    used = lp.pair > 1e-6
    supports = [np.flatnonzero(used)]
    if len(tiers) > 1:
        held = tuple((values, math.floor(float(values @ lp.pair) + 1e-6)) for _, values in tiers[:-1])
        last = relax(prep, tiers[-1][1], time_limit=seconds, at_least=held)
        if last is not None:
            supports.append(np.flatnonzero(used | (last.pair > 1e-6)))
    return supports


def _tighten_last_tier(
    prep: Prepared, tiers: list[Tier], results: list[TierResult], seconds: float
) -> list[TierResult]:
    """With every earlier tier proven, bound the last by its LP with the earlier tiers held at their optimum."""
    if len(results) < 2 or any(r.status != "OPTIMAL" for r in results[:-1]) or results[-1].status == "OPTIMAL":
        return results
    held = tuple((values, r.objective) for (_, values), r in zip(tiers[:-1], results[:-1], strict=True))
    lp = relax(prep, tiers[-1][1], time_limit=seconds, at_least=held)
    if lp is None:
        return results
    last = results[-1]
    bound = max(last.objective, min(last.bound, math.floor(lp.bound + 1e-6)))
    status = "OPTIMAL" if bound == last.objective else last.status
    return [*results[:-1], TierResult(last.name, status, last.objective, bound, last.seconds)]
