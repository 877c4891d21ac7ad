"""Improve a complete solution one tier at a time by CP-SAT on parts of the model (`matching.solvers.submodel`).

Used by the lexicographic MIP strategy beside HiGHS (in the same tier, on the other core) and alone where HiGHS
cannot finish in the time limit. Each tier starts from the best complete solution known so far and only ever
improves it, so a tier cut short by the deadline still hands the next tier (and the caller) a good solution.

Parts: first the pairs the tier's LP uses plus the incumbent's (the LP nearly solves the placement tier: CP-SAT
proves the regional rounds' placement count on that part in 0.1-0.3 s); then parts of a few dozen candidates,
chosen at random, by shared offers (they compete for slots and supervisors) or by programme (they compete for its
money). Parts that CP-SAT proves quickly grow; parts it cannot finish shrink.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from matching.model.spec import Tier
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.submodel import Parts

START_CANDIDATES = 40  # candidates in a part at first; grows and shrinks with how parts go
MIN_CANDIDATES, MAX_CANDIDATES = 12, 400
Stop = Callable[[], bool]


def machine_load() -> tuple[float, int]:
    """The 1-minute load average and the number of cores (no load where the platform cannot say)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return load, os.cpu_count() or 1


def racing(machine: tuple[float, int]) -> int:
    """How many seeds race on the LP's part: two where a core is free, else one. Two searches on one busy core
    each get half of it: on regional-s1 at load 5 (2 cores) the placement count took 0.44-0.57 s with two and
    0.22-0.27 s with one, and at a 2 s limit the race then missed the last placement."""
    load, cores = machine
    return 2 if cores >= 2 and load + 1 <= cores else 1


@dataclass
class PolishLog:
    """What the search did, for progress reports and tests."""

    parts: int = 0
    improved: int = 0
    proven: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


@dataclass
class Polisher:
    """Improves one tier of a complete solution, earlier tiers held, until told to stop."""

    parts: Parts
    seed: int = 0
    workers: int = 1
    deterministic: bool = False
    part_seconds: float = 0.15  # the time limit of one part (wall clock, or deterministic time)
    log: PolishLog = field(default_factory=PolishLog)
    size: int = START_CANDIDATES
    proven: bool = False  # the last `improve` proved its tier (a part that was the whole round)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        prep = self.parts.spec.prep
        self.cand, self.offer = prep.pairs.cand, prep.pairs.offer
        self.n_candidates = len(prep.instance.candidates)
        self.fund_cand = prep.pairs.cand[prep.pairs.fund_pair]
        self.fund_programme = prep.pairs.fund_programme
        self.n_programmes = len(prep.instance.programmes)

    def improve(
        self,
        tier: Tier,
        start: FloatArray,
        held: Sequence[tuple[IntArray, int]],
        end: float,
        *,
        bound: int | None = None,
        guides: Sequence[tuple[BoolArray, Sequence[IntArray]]] = (),
        later: Sequence[IntArray] = (),
        stop: Stop | None = None,
        max_parts: int | None = None,
    ) -> FloatArray:
        """Core column values at least as good as `start` on `tier` (held rows kept), improved part by part until
        `end`, `stop()`, `max_parts` parts, or the tier reaching `bound`. `guides`: parts to try first (pairs, and
        later tiers that break ties there, so that such a part also keeps what the next tiers want). The `later`
        tiers break ties in the other parts."""
        w = start
        value = self._value(tier, w)
        self.proven = False
        n = self.parts.n_pairs
        count = 0
        queue = list(guides)
        while time.monotonic() < end - 0.02 and (bound is None or value < bound):
            if (stop is not None and stop()) or (max_parts is not None and count >= max_parts):
                break
            ties: Sequence[IntArray] = ()
            if queue:
                # The LP's part first, with most of the tier's time when it needs it (CP-SAT usually proves it far
                # sooner; on a loaded machine it took up to 0.5 s for the regional placement count).
                share = 0.8 if len(queue) == len(guides) else 0.5
                pairs, ties = queue.pop(0)
                kind, free = "lp", pairs | (w[:n] > 0.5)
                # At least 1 s of wall clock, for a loaded machine; deterministic time does not slow down with load,
                # and there the floor alone made a deterministic regional round at 2 s end at 2.6-3.2 s.
                floor = 0.0 if self.deterministic else 1.0
                seconds = min(max(5 * self.part_seconds, floor), share * (end - time.monotonic()))
            else:
                # Later tiers break ties here too: a part that cannot raise this tier still improves the next ones.
                kind, free = self._next(count, w)
                ties = later
                seconds = min(self.part_seconds, end - time.monotonic())
            part = self.parts.solve(
                free,
                w,
                tier.values,
                seconds,
                held=held,
                later=ties,
                # Presolve off only where one tier alone is searched on the LP's part (the quick proof of a count).
                presolve=not (kind == "lp" and not ties and later),
                race=racing(machine_load()) if kind == "lp" and not self.deterministic else 1,
                seed=self.seed + self.log.parts,
                workers=self.workers,
                deterministic=self.deterministic,
                until=end,
                # Deterministic rounds run the MIP first and the parts after it: nothing to stop them early.
                stop=None if self.deterministic else stop,
            )
            count += 1
            self._count(kind, part.improved, part.proven)
            if part.improved:
                w, value = part.values, self._value(tier, part.values)
            if part.proven and bool(free.all()):
                self.proven = True  # the part was the whole round: its optimum is the tier's
                break
            if kind != "lp":
                # Parts proven quickly are too easy to find much; parts cut short are too big to finish.
                grow = 1.25 if part.proven else 0.85
                self.size = int(min(MAX_CANDIDATES, max(MIN_CANDIDATES, round(self.size * grow))))
        return w

    def _value(self, tier: Tier, w: FloatArray) -> int:
        x = np.round(w[: self.parts.n_pairs]).astype(np.int64)
        return int(np.asarray(tier.values, dtype=np.int64) @ x)

    def _count(self, kind: str, improved: bool, proven: bool) -> None:
        self.log.parts += 1
        self.log.improved += int(improved)
        self.log.proven += int(proven)
        self.log.kinds[kind] = self.log.kinds.get(kind, 0) + 1

    def _next(self, count: int, w: FloatArray) -> tuple[str, BoolArray]:
        """The next part: its kind and its free pairs (every pair of the chosen candidates)."""
        size = min(self.size, self.n_candidates)
        kind = ("random", "offers", "programme")[count % 3]
        if kind == "offers":
            chosen = self._by_offers(size)
        elif kind == "programme" and self.n_programmes:
            chosen = self._by_programme(size)
        else:
            kind, chosen = "random", self.rng.choice(self.n_candidates, size=size, replace=False)
        mask = np.zeros(self.n_candidates, dtype=bool)
        mask[chosen] = True
        return kind, mask[self.cand]

    def _by_offers(self, size: int) -> IntArray:
        """Candidates who share offers: a few random offers' candidates, widened offer by offer."""
        offers = self.rng.permutation(int(self.offer.max()) + 1 if len(self.offer) else 0)
        chosen: IntArray = np.zeros(0, dtype=np.int64)
        for o in offers.tolist():
            chosen = np.union1d(chosen, self.cand[self.offer == o])
            if len(chosen) >= size:
                break
        if len(chosen) > size:
            chosen = self.rng.choice(chosen, size=size, replace=False)
        return chosen

    def _by_programme(self, size: int) -> IntArray:
        """Candidates whom one programme may pay."""
        g = int(self.rng.integers(self.n_programmes))
        pool = np.unique(self.fund_cand[self.fund_programme == g])
        if not len(pool):
            return self.rng.choice(self.n_candidates, size=size, replace=False)
        return self.rng.choice(pool, size=min(size, len(pool)), replace=False)
