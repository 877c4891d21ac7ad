"""Deadlines inside a round: a CP-SAT part stops at the caller's deadline (`until`), counted after its model is
built, or when told to (HiGHS proved the tier beside it); a tier that starts past the search's deadline solves no LP
of its own (GLOP would finish it late); a neighbourhood that holds every better solution gets all the time left;
two seeds race on the LP's part only where a core is free."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from matching.generators.generate import generate, generate_scale
from matching.input.validate import load_instance
from matching.model.spec import build_spec, objective_tiers
from matching.rules.prepare import prepare
from matching.solvers.mip import LinearBackend, LinearResult, _neighbourhoods, lexicographic, tier_value
from matching.solvers.strategies import _columns, greedy_start
from matching.solvers.submodel import Parts
from matching.solvers.tiered import racing


@pytest.mark.parametrize("ends_by", ["until", "stop"])
def test_a_part_with_a_long_limit_ends_when_told_and_never_gets_worse(ends_by: str) -> None:
    # The whole score tier of a regional round: CP-SAT does not prove it in 30 s (its LP bound is 9-10 % above any
    # known solution), so without `until` or `stop` this part would run for all 30 s. In a tier, HiGHS proving it
    # is what sets `stop`: the part running on for its full limit kept the demo region's placement tier open for
    # 0.7-1.2 s after HiGHS had proven it.
    prep = prepare(generate_scale("regional", 1))
    tiers = objective_tiers(prep)
    spec = build_spec(prep, tiers)
    parts = Parts(spec, tiers)
    start = parts.of(greedy_start(prep, tiers))
    placed, scored = parts.totals(start)
    everything = np.ones(spec.n_pairs, dtype=bool)
    began = time.monotonic()
    ending = {"until": began + 0.3} if ends_by == "until" else {"stop": lambda: time.monotonic() > began + 0.3}
    part = parts.solve(everything, start, tiers[1].values, 30.0, held=[(tiers[0].values, placed)], **ending)
    assert time.monotonic() - began < 15.0
    assert not part.proven
    assert parts.totals(part.values)[0] >= placed and parts.totals(part.values)[1] >= scored
    picks = parts.picks(part.values)
    full = spec.vector(
        *(np.array([getattr(p, f) for p in picks], dtype=np.int64) for f in ("pair", "supervisor", "fund_row"))
    )
    assert len(spec.violations(full)) == 0


class RecordingBackend(LinearBackend):
    """The real backend, recording per solve the pairs allowed, the seconds given and the seconds left then."""

    deadline = 0.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls: list[tuple[int, float, float]] = []

    def solve(self, values: object, seconds: float, **kwargs: object) -> LinearResult:  # type: ignore[override]
        allowed = kwargs.get("allowed")
        size = self.spec.n_pairs if allowed is None else int(np.sum(allowed))  # type: ignore[call-overload]
        self.calls.append((size, seconds, self.deadline - time.monotonic()))
        return super().solve(values, seconds, **kwargs)  # type: ignore[arg-type]


def test_the_neighbourhood_that_holds_every_better_solution_gets_all_the_time_left() -> None:
    # The demo region's placement tier: the LP's support proves nothing, and the next neighbourhood (every pair of
    # reduced cost above what a 97th placement needs) holds every better solution. Given half the time left, as
    # before, such a neighbourhood was cut short on the demo region's score tier in 2 of 4 runs at 10 s.
    prep = prepare(load_instance(Path(__file__).parents[2] / "fixtures" / "demo_region.json"))
    tiers = objective_tiers(prep)
    spec = build_spec(prep, tiers)
    backend = RecordingBackend(spec, full=True)
    lp = backend.solve(tiers[0].values, 30.0, integral=False)
    backend.calls.clear()
    backend.deadline = time.monotonic() + 60.0
    pool: list[np.ndarray] = []
    best, proven, bound = _neighbourhoods(backend, tiers[0], lp, None, pool, backend.deadline)
    assert best is not None and proven and tier_value(tiers[0], best) == 96
    assert len(spec.violations(best)) == 0
    assert len(backend.calls) >= 2, backend.calls
    first, *rest = backend.calls
    assert first[1] < 0.6 * first[2]  # a first, small neighbourhood gets half
    assert all(seconds > 0.95 * left for _, seconds, left in rest), backend.calls
    assert bound is None or bound >= 96


class CountingBackend(LinearBackend):
    """The real backend, counting the LPs it is asked to solve."""

    lps = 0

    def solve(self, *args: object, **kwargs: object) -> LinearResult:  # type: ignore[override]
        if kwargs.get("integral") is False:
            self.lps += 1
        return super().solve(*args, **kwargs)  # type: ignore[arg-type]


def test_tiers_that_start_past_the_deadline_keep_the_start_and_solve_no_lp() -> None:
    prep = prepare(generate(40, 20, seed=5, binding_budgets=True))
    tiers = objective_tiers(prep)
    spec = build_spec(prep, tiers)
    start = spec.vector(*_columns(greedy_start(prep, tiers)))
    backend = CountingBackend(spec, full=True)
    values, outcomes = lexicographic(backend, tiers, time.monotonic() - 1.0, start, use_mip=False)
    assert backend.lps == 0
    assert values is not None and len(spec.violations(values)) == 0
    assert [o.objective for o in outcomes] == [tier_value(t, start) for t in tiers]
    assert all(o.bound >= o.objective for o in outcomes)


def test_two_seeds_race_on_the_lps_part_only_where_a_core_is_free() -> None:
    assert racing((0.3, 2)) == 2
    assert racing((1.0, 2)) == 2
    # The shared 2-core machine at load 5: two searches would each get half a core.
    assert racing((5.0, 2)) == 1
    assert racing((1.5, 2)) == 1
    assert racing((0.0, 1)) == 1
