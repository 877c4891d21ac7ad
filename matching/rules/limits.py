"""What is left of every capacity and money limit once the commitments of earlier rounds are counted.

A placement accepted in an earlier round (`Instance.commitments`) keeps its grant in the programme's budget, the
earmark it drew on, the programme's cap for its unit and its per-candidate cap, and a seat of its supervisor in each
of its months. Every solver, bound, check and explanation reads the limits from here, so that a later round never
hands out money or seats that are already promised.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from matching.input.instance import Instance
from matching.input.months import month_index

IntArray = npt.NDArray[np.int64]
NO_CAP = -1


def draw(grant: int, earmark_left: int) -> tuple[int, int]:
    """How a grant drawing on an earmark splits: (from the earmark, from general money). Earmarks are spent first."""
    from_earmark = max(0, min(earmark_left, grant))
    return from_earmark, grant - from_earmark


@dataclass(frozen=True)
class Limits:
    """Every limit left for new matches. Indexes follow the instance's lists (programme g, earmark k, unit u, ...)."""

    general_left: IntArray  # per programme: general (not earmarked) money left
    earmark_left: list[IntArray]  # per programme, per earmark: money left in the earmark
    unit_cap_left: IntArray  # programmes x units: what the programme may still grant the unit, NO_CAP for none
    candidate_cap: IntArray  # per programme: the per-candidate cap, NO_CAP for none
    candidate_committed: dict[tuple[int, int], int]  # (programme, candidate) -> SEK committed to the candidate
    capacity: IntArray  # per supervisor: concurrent trainees
    supervisor_fixed: dict[int, dict[int, int]]  # supervisor -> month index -> trainees already committed
    committed: IntArray  # per programme: SEK held by commitments
    committed_earmark: list[IntArray]  # per programme, per earmark: SEK of commitments that drew on it

    def budget_left(self, g: int) -> int:
        """All money the programme may still grant (general and earmarked)."""
        return int(self.general_left[g] + self.earmark_left[g].sum())

    def room(self, g: int, earmark: int) -> int:
        """The most one new match drawing on this earmark (-1: none) may get from programme g."""
        return int(self.general_left[g] + (self.earmark_left[g][earmark] if earmark >= 0 else 0))

    def candidate_cap_left(self, g: int, cands: IntArray) -> IntArray:
        """Per candidate, what programme g may still grant them (NO_CAP for no cap)."""
        cap = int(self.candidate_cap[g])
        if cap == NO_CAP:
            return np.full(len(cands), NO_CAP, dtype=np.int64)
        left = np.full(len(cands), cap, dtype=np.int64)
        for (pg, ci), amount in self.candidate_committed.items():
            if pg == g:
                left[cands == ci] = max(0, cap - amount)
        return left

    def seats_left(self, s: int, month: int) -> int:
        """Free seats of supervisor s in a month."""
        return int(self.capacity[s]) - self.supervisor_fixed.get(s, {}).get(month, 0)

    def free_months(self, s: int, first: int, last: int) -> int:
        """How many consecutive months from `first` (up to `last`) supervisor s has a free seat in."""
        fixed = self.supervisor_fixed.get(s)
        if not fixed:
            return max(0, last - first + 1)
        month = first
        while month <= last and int(self.capacity[s]) - fixed.get(month, 0) > 0:
            month += 1
        return month - first


def committed_limits(instance: Instance) -> Limits:
    """The limits of the round after its commitments (the raw limits when there are none)."""
    progs = instance.programmes
    programme_index = {p.id: g for g, p in enumerate(progs)}
    unit_index = {u.id: i for i, u in enumerate(instance.units)}
    supervisor_index = {s.id: i for i, s in enumerate(instance.supervisors)}
    candidate_index = {c.id: i for i, c in enumerate(instance.candidates)}
    general = np.array([p.budget - sum(e.amount for e in p.earmarks) for p in progs], dtype=np.int64)
    earmark = [np.array([e.amount for e in p.earmarks], dtype=np.int64) for p in progs]
    unit_cap = np.array(
        [[_or_no_cap(p.unit_caps.for_size(u.size_class)) for u in instance.units] for p in progs], dtype=np.int64
    ).reshape(len(progs), len(instance.units))
    committed = np.zeros(len(progs), dtype=np.int64)
    committed_earmark = [np.zeros(len(p.earmarks), dtype=np.int64) for p in progs]
    per_candidate: dict[tuple[int, int], int] = defaultdict(int)
    fixed: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for c in instance.commitments:
        g = programme_index[c.programme_id]
        k = next((i for i, e in enumerate(progs[g].earmarks) if e.id == c.earmark_id), -1)
        committed[g] += c.grant
        if k >= 0:
            committed_earmark[g][k] += c.grant
            from_earmark, from_general = draw(c.grant, int(earmark[g][k]))
            earmark[g][k] -= from_earmark
            general[g] -= from_general
        else:
            general[g] -= c.grant
        u = unit_index[c.unit_id]
        if unit_cap[g, u] != NO_CAP:
            unit_cap[g, u] = max(0, unit_cap[g, u] - c.grant)
        if c.candidate_id in candidate_index:
            per_candidate[(g, candidate_index[c.candidate_id])] += c.grant
        if c.supervisor_id is not None:
            s, first = supervisor_index[c.supervisor_id], month_index(c.start)
            for m in range(first, first + c.months):
                fixed[s][m] += 1
    return Limits(
        # An over-committed programme (its budget was cut by hand) has nothing left, never less than nothing.
        general_left=np.maximum(general, 0),
        earmark_left=earmark,
        unit_cap_left=unit_cap,
        candidate_cap=np.array([_or_no_cap(p.candidate_cap) for p in progs], dtype=np.int64),
        candidate_committed=dict(per_candidate),
        capacity=np.array([s.capacity for s in instance.supervisors], dtype=np.int64),
        supervisor_fixed={s: dict(months) for s, months in fixed.items()},
        committed=committed,
        committed_earmark=committed_earmark,
    )


def _or_no_cap(value: int | None) -> int:
    return NO_CAP if value is None else value
