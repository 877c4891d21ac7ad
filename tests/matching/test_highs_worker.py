"""HiGHS MIPs in a worker process (matching.solvers.highs_worker): a stopped solve returns at once and frees its
core, and the next solve still works. MathOpt's SolveInterrupter does not stop the HiGHS of OR-Tools 9.15."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from ortools.math_opt import parameters_pb2, rpc_pb2

from matching.generators.generate import generate, generate_scale
from matching.model.spec import build_spec, objective_tiers
from matching.rules.prepare import prepare
from matching.solvers import highs_worker
from matching.solvers.mip import LinearBackend, tier_value
from matching.solvers.simplex import model_proto


@pytest.fixture(scope="module")
def regional() -> LinearBackend:
    # The score tier of a regional round: HiGHS does not finish it in 60 s (benchmarks/README.md).
    prep = prepare(generate_scale("regional", 1))
    return LinearBackend(build_spec(prep, objective_tiers(prep)), full=True)


def _small() -> tuple[LinearBackend, int]:
    prep = prepare(generate(40, 20, seed=3, binding_budgets=True))
    tiers = objective_tiers(prep)
    return LinearBackend(build_spec(prep, tiers), full=True), 1


def test_a_stopped_mip_returns_at_once_without_a_solution_and_the_next_solve_works(regional: LinearBackend) -> None:
    small, tier = _small()
    tiers = objective_tiers(small.spec.prep)
    small.solve(tiers[tier].values, 60.0)  # a worker, started and idle
    stop = threading.Event()
    score = objective_tiers(regional.spec.prep)[1].values
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    # 120 s for HiGHS (90 s of its own limit): in a thread, without the worker, this ran for all of it.
    result = regional.solve(score, 120.0, stop=stop)
    assert time.monotonic() - started < 30.0
    assert result.status == "UNKNOWN" and result.values is None
    # The killed worker is gone; the next solve gets a new one and proves a small round's score tier.
    assert all(w.alive() for w in highs_worker._idle)
    after = small.solve(tiers[tier].values, 60.0)
    assert after.status == "OPTIMAL" and after.values is not None
    values = np.where(small.spec.integer, np.round(after.values), after.values)
    assert len(small.spec.violations(values)) == 0
    assert tier_value(tiers[tier], after.values) == round(after.objective)


def test_a_mip_past_its_wall_limit_is_stopped(regional: LinearBackend) -> None:
    # The limit given to solve is also the wall clock: HiGHS's own limit (three quarters of it) is checked too
    # rarely on a loaded machine, and its overrun kept a core from the next tier.
    score = objective_tiers(regional.spec.prep)[1].values
    result = regional.solve(score, 0.3)
    assert result.status in ("UNKNOWN", "FEASIBLE")
    assert result.seconds < 30.0


def test_a_stop_set_before_the_solve_kills_its_worker() -> None:
    small, tier = _small()
    # A warm worker answers this small MIP within the first poll; the stop flag set before the call must win anyway
    # (it lost in CI when the flag was read only after a wait).
    highs_worker.solve(_request(small, tier))
    stop = threading.Event()
    stop.set()
    with pytest.raises(highs_worker.Stopped):
        highs_worker.solve(_request(small, tier), stop=stop)
    assert all(w.alive() for w in highs_worker._idle)


def _request(backend: LinearBackend, tier: int) -> rpc_pb2.SolveRequest:
    values = objective_tiers(backend.spec.prep)[tier].values
    proto = model_proto(backend._arrays(backend.spec.objective(values), None, ()), backend.core.integer)
    return rpc_pb2.SolveRequest(solver_type=parameters_pb2.SOLVER_TYPE_HIGHS, model=proto)


def test_a_worker_killed_from_outside_mid_solve_is_reported_and_replaced(regional: LinearBackend) -> None:
    worker = highs_worker.Worker()
    request = _request(regional, 1)  # the regional score tier: HiGHS runs far longer than the kill below
    threading.Timer(0.5, lambda: os.kill(worker.process.pid, signal.SIGKILL)).start()
    with pytest.raises(highs_worker.WorkerDied):
        worker.solve(request, None, time.monotonic() + 120.0)
    assert not worker.alive()
    small, tier = _small()
    after = small.solve(objective_tiers(small.spec.prep)[tier].values, 60.0)
    assert after.status == "OPTIMAL" and after.values is not None
