"""The two clocks a solve reads: the wall clock, and for deterministic rounds work (CP-SAT's deterministic time, HiGHS's
nodes), where the wall clock is only a guard far out, so that the same input takes the same steps on any machine at
any load."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ortools.sat.python import cp_model_helper


def guard(seconds: float) -> float:
    """The wall-clock guard of a limit counted in work: far enough out that only a machine far slower than usual
    (or a defect) reaches it."""
    return 10 * seconds + 60


def limit_cp_sat(params: cp_model_helper.SatParameters, seconds: float, deterministic: bool) -> None:
    """CP-SAT stops after `seconds` of deterministic time (with the guard on the wall clock), or of wall time."""
    if deterministic:
        params.max_deterministic_time = seconds
        params.max_time_in_seconds = guard(seconds)
    else:
        params.max_time_in_seconds = seconds


@dataclass
class WorkClock:
    """A search's clock in a deterministic round: CP-SAT's deterministic time spent so far (and the restricted
    MIP's share, whose HiGHS counts nodes), never the wall clock."""

    spent: float = 0.0

    def now(self) -> float:
        """Seconds of deterministic time spent."""
        return self.spent


def reader(clock: WorkClock | None) -> Callable[[], float]:
    """What tells the time: the work clock of a deterministic round, else the wall clock."""
    return clock.now if clock is not None else time.monotonic
