"""Running account of what a set of matches uses: slots, supervisor months, budgets, earmarks and caps.

Greedy, hint repair, verification and explanations all count resources here, so they agree on the rules.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from matching.input.instance import Instance, Supervisor
from matching.rules.limits import NO_CAP, Limits, committed_limits, draw
from matching.rules.tables import last_full_month, month_index, qualified


@dataclass(frozen=True)
class Use:
    """What one match draws: the offer, its supervisor's months and the grant from one programme."""

    candidate: str
    offer: str
    supervisor: str
    programme: str
    start_month: int
    months: int
    grant: int


@dataclass
class Ledger:
    """Remaining capacity and money of an instance as matches are added.

    It starts from what earlier rounds' commitments left (limits.py); the counts here are this round's own.
    """

    instance: Instance
    limits: Limits | None = None
    placed: set[str] = field(default_factory=set)
    offer_used: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    supervisor_load: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    general_used: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    earmark_used: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    unit_granted: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        self.left = self.limits if self.limits is not None else committed_limits(self.instance)
        self.offers = {o.id: o for o in self.instance.offers}
        self.supervisors = {s.id: s for s in self.instance.supervisors}
        self.supervisor_index = {s.id: i for i, s in enumerate(self.instance.supervisors)}
        self.programmes = {p.id: p for p in self.instance.programmes}
        self.programme_index = {p.id: g for g, p in enumerate(self.instance.programmes)}
        self.units = {u.id: u for u in self.instance.units}
        self.unit_index = {u.id: i for i, u in enumerate(self.instance.units)}

    def seats_used(self, supervisor_id: str, month: int) -> int:
        """Trainees of the supervisor in a month: earlier rounds' commitments and this round's matches."""
        s = self.supervisor_index[supervisor_id]
        return self.left.supervisor_fixed.get(s, {}).get(month, 0) + self.supervisor_load[(supervisor_id, month)]

    def supervisor_fits(self, supervisor: Supervisor, offer_id: str, start_month: int, months: int) -> bool:
        """The supervisor may take this trainee and has a free seat in every month of the stay."""
        offer = self.offers[offer_id]
        if not qualified(supervisor.profession.value, supervisor.licensed, supervisor.capacity, offer.profession.value):
            return False
        if month_index(supervisor.available_from) > start_month:
            return False
        if start_month + months - 1 > last_full_month(supervisor.available_until):
            return False
        return all(
            self.seats_used(supervisor.id, m) < supervisor.capacity for m in range(start_month, start_month + months)
        )

    def free_supervisor(self, offer_id: str, start_month: int, months: int) -> str | None:
        """The first of the offer's supervisors with a free seat for the whole stay."""
        for sid in self.offers[offer_id].supervisor_ids:
            if self.supervisor_fits(self.supervisors[sid], offer_id, start_month, months):
                return sid
        return None

    def money_fits(self, programme_id: str, offer_id: str, grant: int) -> bool:
        """The programme can still pay `grant` for a match at this offer (budget, earmark, unit cap)."""
        return grant <= self.largest_grant(programme_id, offer_id)

    def largest_grant(self, programme_id: str, offer_id: str) -> int:
        """The most the programme can still pay for one more match at this offer (budget, earmark, unit cap)."""
        offer = self.offers[offer_id]
        room = self.room(programme_id, self.programmes[programme_id].earmark_for(offer.profession, offer.kind))
        cap_left = self.unit_cap_left(programme_id, offer.unit_id)
        return room if cap_left is None else min(room, cap_left)

    def unit_cap_left(self, programme_id: str, unit_id: str) -> int | None:
        """What the programme may still grant the unit (None: no cap)."""
        cap = int(self.left.unit_cap_left[self.programme_index[programme_id], self.unit_index[unit_id]])
        return None if cap == NO_CAP else cap - self.unit_granted[(programme_id, unit_id)]

    def room(self, programme_id: str, earmark: int | None) -> int:
        """The most one more match drawing on this earmark (None or -1: none) may get from the programme."""
        g = self.programme_index[programme_id]
        general = int(self.left.general_left[g]) - self.general_used[programme_id]
        if earmark is None or earmark < 0:
            return general
        return general + int(self.left.earmark_left[g][earmark]) - self.earmark_used[(programme_id, earmark)]

    def fits(self, use: Use) -> bool:
        """The match can be added without breaking any capacity, budget or cap."""
        offer = self.offers[use.offer]
        return (
            use.candidate not in self.placed
            and self.offer_used[use.offer] < offer.slots
            and self.supervisor_fits(self.supervisors[use.supervisor], use.offer, use.start_month, use.months)
            and self.money_fits(use.programme, use.offer, use.grant)
        )

    def add(self, use: Use) -> None:
        """Record the match; earmarked money is spent before general money."""
        offer = self.offers[use.offer]
        prog = self.programmes[use.programme]
        self.placed.add(use.candidate)
        self.offer_used[use.offer] += 1
        for m in range(use.start_month, use.start_month + use.months):
            self.supervisor_load[(use.supervisor, m)] += 1
        earmark = prog.earmark_for(offer.profession, offer.kind)
        from_general = use.grant
        if earmark is not None:
            g = self.programme_index[use.programme]
            left = int(self.left.earmark_left[g][earmark]) - self.earmark_used[(use.programme, earmark)]
            from_earmark, from_general = draw(use.grant, left)
            self.earmark_used[(use.programme, earmark)] += from_earmark
        self.general_used[use.programme] += from_general
        self.unit_granted[(use.programme, offer.unit_id)] += use.grant

    def granted(self, programme_id: str) -> int:
        """Everything the programme has granted in this round so far (commitments of earlier rounds apart)."""
        prog = self.programmes[programme_id]
        return self.general_used[programme_id] + sum(
            self.earmark_used[(programme_id, k)] for k in range(len(prog.earmarks))
        )
