"""Deterministic rounds (the service's default) take the strong strategies too, and repeat exactly: the LP-guided
neighbourhood search counts CP-SAT's deterministic time and HiGHS's nodes instead of the wall clock, and the MIP
strategy without HiGHS runs its parts in deterministic time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from matching.generators.generate import generate, generate_scale
from matching.input.instance import Instance
from matching.model.solution import Solution
from matching.model.spec import objective_tiers
from matching.reports.verify import verify
from matching.rules.prepare import prepare
from matching.solvers.colgen import first_columns, generate_columns
from matching.solvers.large import LnsStrategy
from matching.solvers.lns import restricted_mip
from matching.solvers.matrix import build_matrix
from matching.solvers.objective import combined_values
from matching.solvers.priced import PricedStrategy
from matching.solvers.select import choose
from matching.solvers.solve import solve
from matching.solvers.strategies import Context, Deadline, MipStrategy, Reporter, deterministic_parts
from matching.solvers.submodel import Parts


def _deterministic(instance: Instance, seconds: float) -> Instance:
    policy = instance.policy.model_copy(update={"time_limit_s": seconds, "deterministic": True, "seed": 3})
    return instance.model_copy(update={"policy": policy})


def _context(instance: Instance) -> Context:
    prep = prepare(instance)
    started = time.monotonic()
    return Context(
        prep, objective_tiers(prep), Deadline(started, instance.policy.time_limit_s), Reporter(None, started)
    )


@contextmanager
def _busy() -> Iterator[None]:
    """Two processes that keep both cores busy while the block runs."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def _decided(solution: Solution) -> list[tuple[str, str, str, str]]:
    return sorted((a.candidate_id, a.offer_id, a.supervisor_id, a.programme_id) for a in solution.assignments)


def test_auto_takes_the_neighbourhood_search_for_a_deterministic_national_round() -> None:
    # Before, CP-SAT: on national:0 at 30 s it placed 1,135 in 43 s, against 1,196 in 25.9 s now.
    ctx = _context(_deterministic(generate_scale("national", 0), 30.0))
    assert isinstance(choose(ctx, "auto"), LnsStrategy)


def test_auto_takes_the_mip_strategy_for_a_deterministic_round_too_large_for_highs() -> None:
    # regional-s1 at 2 s: HiGHS does not fit the limit; before, CP-SAT alone (score 738,477 against 774,029).
    ctx = _context(_deterministic(generate_scale("regional", 1), 2.0))
    assert isinstance(choose(ctx, "auto"), MipStrategy)


def test_auto_takes_the_lagrangian_strategy_for_a_deterministic_round_of_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before, CP-SAT, which did not finish a stress round; national:0 stands in for one (84,000 pairs).
    monkeypatch.setattr("matching.solvers.select.MIN_PAIRS", 50_000)
    ctx = _context(_deterministic(generate_scale("national", 0), 300.0))
    assert isinstance(choose(ctx, "auto"), PricedStrategy)


@pytest.mark.parametrize("method", ["lns", "mip", "lagrange"])
def test_a_deterministic_round_repeats_exactly_on_a_busy_machine(method: str) -> None:
    # 1,200 x 400: the restricted MIP (more than 1,000 columns, the start short of the LP) and the neighbourhoods
    # both run. The second solve runs beside two processes that keep both cores busy: anything read from the wall
    # clock would take other steps there.
    instance = _deterministic(generate(1200, 400, seed=11, binding_budgets=True), 4.0)
    quiet = solve(instance, method=method)  # type: ignore[arg-type]
    with _busy():
        busy = solve(instance, method=method)  # type: ignore[arg-type]
    assert _decided(busy) == _decided(quiet)
    assert busy.objective == quiet.objective and busy.bound == quiet.bound
    assert len(quiet.assignments) > 0
    assert verify(instance, quiet) == []


def test_the_restricted_mip_with_a_node_budget_gives_the_same_solution_on_a_busy_machine() -> None:
    # HiGHS on one thread with a node limit (deterministic rounds): no clock decides where it stops.
    prep = prepare(generate(60, 25, seed=4003, binding_budgets=True))
    m = build_matrix(prep)
    c = m.objective(combined_values(prep, objective_tiers(prep)))
    lp, _, _, _ = generate_columns(m, c, first_columns(m), time.monotonic() + 30)
    free = np.ones(m.n_cols, dtype=bool)
    start = np.zeros(m.n_cols)
    start[m.o_at :] = m.overflow_values(start)
    quiet = restricted_mip(m, c, free, start, 5.0, nodes=3)
    with _busy():
        busy = restricted_mip(m, c, free, start, 5.0, nodes=3)
    assert quiet is not None and busy is not None
    assert np.array_equal(quiet, busy)
    assert m.violation(quiet) <= 1e-6 and float(c @ quiet) <= lp.value + 1e-6


def test_a_short_deterministic_round_runs_fewer_and_shorter_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deterministic regional round at 2 s ran 10 CP-SAT parts per tier, the LP's part with at least 1 s of
    deterministic time (a floor meant for a loaded machine's wall clock), and ended at 2.6-3.2 s. Its parts now
    follow the limit: at most 6 per tier, the LP's part 5 x the others' time (2/15 s each)."""
    calls: list[tuple[bytes, float]] = []
    original = Parts.solve

    def counted(self: Parts, free: np.ndarray, w: np.ndarray, objective: np.ndarray, seconds: float, **kw: object):  # type: ignore[no-untyped-def]
        assert kw["deterministic"] is True
        calls.append((np.asarray(objective).tobytes(), seconds))
        return original(self, free, w, objective, seconds, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Parts, "solve", counted)
    instance = _deterministic(generate_scale("regional", 0), 2.0)
    solution = solve(instance, method="mip")
    assert not verify(instance, solution)
    per_tier: dict[bytes, list[float]] = {}
    for tier, seconds in calls:
        per_tier.setdefault(tier, []).append(seconds)
    assert calls and all(len(s) <= 6 for s in per_tier.values())
    part = 2.0 / 15
    for seconds in per_tier.values():
        assert seconds[0] == pytest.approx(5 * part)
        assert all(s == pytest.approx(part) for s in seconds[1:])
    assert deterministic_parts(2.0) == 6 and deterministic_parts(10.0) == 10
