"""Where the engine's time goes: its CP-SAT path on one instance, step by step, with seconds and peak memory.

The steps follow `matching.solvers.solve.solve` (prepare, the hint's flow relaxation, greedy orders and LP, model build,
search, explanations), so that a slow phase can be named with a number.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from benchmarks.engine import overall_status
from matching.input.validate import load_instance
from matching.model.spec import objective_tiers
from matching.rules.eligibility import eligible_pairs
from matching.rules.prepare import prepare
from matching.rules.scoring import score_pairs
from matching.rules.tables import IntArray, build_tables
from matching.solvers.cpsat import Model, solve_combined, tier_totals
from matching.solvers.flow import max_weight_assignment
from matching.solvers.greedy import pinned_pairs, place_in_order
from matching.solvers.objective import combined_values, tier_weights
from matching.solvers.relaxation import relax
from matching.solvers.solve import build_solution

T = TypeVar("T")


@dataclass(frozen=True)
class Phase:
    """One step: its name, seconds, the process's peak memory so far, and a note."""

    name: str
    seconds: float
    peak_mb: float
    note: str = ""


class _Clock:
    def __init__(self) -> None:
        self.phases: list[Phase] = []

    def time(self, name: str, step: Callable[[], T]) -> T:
        started = time.monotonic()
        value = step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.phases.append(Phase(name, time.monotonic() - started, peak))
        return value

    def note(self, text: str) -> None:
        last = self.phases[-1]
        self.phases[-1] = Phase(last.name, last.seconds, last.peak_mb, text)


def profile(path: Path, time_limit: float) -> list[Phase]:
    """Run the engine's CP-SAT path on an instance file, timing each step."""
    clock = _Clock()
    instance = clock.time("load", lambda: load_instance(path.read_bytes()))
    policy = instance.policy.model_copy(update={"time_limit_s": time_limit})
    instance = instance.model_copy(update={"policy": policy})
    tables = clock.time("prepare: tables", lambda: build_tables(instance))
    pairs = clock.time("prepare: eligibility", lambda: eligible_pairs(instance, tables))
    clock.time("prepare: scores", lambda: score_pairs(instance, tables, pairs))
    prep = clock.time("prepare (all, again)", lambda: prepare(instance))
    free_sup = int((prep.free_supervisor >= 0).sum())
    clock.note(f"{len(prep.pairs):,} pairs, {len(prep.pairs.fund_pair):,} funding rows, {free_sup:,} free supervisors")
    tiers = objective_tiers(prep)
    values = combined_values(prep, tiers)
    pins = pinned_pairs(prep)
    slots = prep.tables.offers.slots
    flow = partial(max_weight_assignment, prep.pairs.cand, prep.pairs.offer, values, slots, pins)
    relaxed, _ = clock.time("hint: flow relaxation", flow)
    clock.note(f"places {len(relaxed):,} ignoring supervisors and money")
    orders = _orders(prep.pairs.fund_pair, prep.pairs.fund_grant, values, relaxed, len(prep.pairs))
    hints = []
    for name, order in orders.items():
        hints.append(clock.time(f"hint: greedy {name}", partial(place_in_order, prep, [*pins, *order])))
        clock.note(f"places {len(hints[-1]):,}")
    lp = clock.time(f"hint: LP (limit {time_limit / 4:.1f} s)", lambda: relax(prep, values, time_limit=time_limit / 4))
    clock.note("finished" if lp is not None else "did not finish: the hint goes without it")
    built = clock.time("model build", lambda: Model(prep).build())
    clock.note(f"{len(built.model.proto.variables):,} variables, {len(built.model.proto.constraints):,} constraints")
    best = max(hints, key=lambda picks: tier_totals(picks, tiers))
    weights = tier_weights(prep, tiers)
    picks, results = clock.time("CP-SAT search", lambda: solve_combined(built, tiers, weights, best))
    improved = tier_totals(picks, tiers) > tier_totals(best, tiers)
    clock.note(
        f"{overall_status(results)}; {'improved on' if improved else 'returned'} the hint: {len(picks):,} placed"
    )
    clock.time("explain (build_solution)", lambda: build_solution(prep, picks, results, "cp_sat", 0.0))
    return clock.phases


def _orders(
    fund_pair: IntArray, fund_grant: IntArray, values: IntArray, relaxed: IntArray, n: int
) -> dict[str, list[int]]:
    """The hint's three greedy orders (see `matching.solvers.solve._hint`)."""
    by_value = np.lexsort((np.arange(n), -values))
    cheapest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(cheapest, fund_pair, fund_grant)
    return {
        "flow first": [*relaxed[np.argsort(-values[relaxed], kind="stable")].tolist(), *by_value.tolist()],
        "by value": by_value.tolist(),
        "cheapest money first": np.lexsort((-values, cheapest)).tolist(),
    }


def phases_table(phases: list[Phase]) -> str:
    """The phases as a markdown table."""
    from benchmarks.report import md_table

    rows = [(p.name, f"{p.seconds:.2f}", f"{p.peak_mb:,.0f}", p.note) for p in phases]
    return md_table(("phase", "seconds", "peak MB so far", "note"), rows)
