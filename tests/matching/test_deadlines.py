"""Deadlines inside a round: a CP-SAT part stops at the caller's deadline (`until`), counted after its model is
built; a tier that starts past the search's deadline solves no LP of its own (GLOP would finish it late); two
seeds race on the LP's part only where a core is free."""

from __future__ import annotations

import time

import numpy as np

from matching.generators.generate import generate, generate_scale
from matching.model.spec import build_spec, objective_tiers
from matching.rules.prepare import prepare
from matching.solvers.mip import LinearBackend, LinearResult, lexicographic, tier_value
from matching.solvers.strategies import _columns, greedy_start
from matching.solvers.submodel import Parts
from matching.solvers.tiered import racing


def test_a_part_with_a_long_limit_stops_at_until_and_never_gets_worse() -> None:
    # The whole score tier of a regional round: CP-SAT does not prove it in 30 s (its LP bound is 9-10 % above any
    # known solution), so without `until` this part would run for all 30 s.
    prep = prepare(generate_scale("regional", 1))
    tiers = objective_tiers(prep)
    spec = build_spec(prep, tiers)
    parts = Parts(spec, tiers)
    start = parts.of(greedy_start(prep, tiers))
    placed, scored = parts.totals(start)
    everything = np.ones(spec.n_pairs, dtype=bool)
    began = time.monotonic()
    part = parts.solve(everything, start, tiers[1].values, 30.0, held=[(tiers[0].values, placed)], until=began + 0.3)
    assert time.monotonic() - began < 15.0
    assert not part.proven
    assert parts.totals(part.values)[0] >= placed and parts.totals(part.values)[1] >= scored
    picks = parts.picks(part.values)
    full = spec.vector(
        *(np.array([getattr(p, f) for p in picks], dtype=np.int64) for f in ("pair", "supervisor", "fund_row"))
    )
    assert len(spec.violations(full)) == 0


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
