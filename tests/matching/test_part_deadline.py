"""A CP-SAT part stops at the caller's deadline (`until`), counted after its model is built."""

from __future__ import annotations

import time

import numpy as np

from matching.generators.generate import generate_scale
from matching.model.spec import build_spec, objective_tiers
from matching.rules.prepare import prepare
from matching.solvers.strategies import greedy_start
from matching.solvers.submodel import Parts


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
