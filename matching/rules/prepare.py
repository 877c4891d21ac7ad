"""Everything the solvers share: eligible pairs, scores, supervisor and programme options, and which
capacity or money constraints can bind at all (those that cannot are left out of the model)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching.input.instance import Instance
from matching.rules.eligibility import Eligible, eligible_pairs
from matching.rules.limits import NO_CAP
from matching.rules.scoring import Scores, score_pairs
from matching.rules.tables import BoolArray, IntArray, Tables, build_tables, month_index, supervisor_reach


@dataclass(frozen=True)
class Options:
    """Sparse (pair, choice) rows: the supervisors or programmes that may serve each pair."""

    pair: IntArray
    choice: IntArray
    amount: IntArray  # grant for programme options, 0 for supervisors
    binding: BoolArray  # per choice: its constraints can bind

    def free_choice(self, n_pairs: int) -> IntArray:
        """Per pair, a choice whose constraints can never bind, or -1."""
        free = np.full(n_pairs, -1, dtype=np.int64)
        rows = np.flatnonzero(~self.binding[self.choice])
        # The first free option in row order wins (rows are sorted by pair, then choice).
        free[self.pair[rows[::-1]]] = self.choice[rows[::-1]]
        return free


@dataclass(frozen=True)
class Prepared:
    """An instance ready to solve."""

    instance: Instance
    tables: Tables
    pairs: Eligible
    scores: Scores
    waiting_days: IntArray  # per pair, the candidate's wait (for waiting-time priority)
    supervisors: Options
    programmes: Options
    unit_cap_binding: BoolArray  # (programmes x units)
    budget_binding: BoolArray  # per programme
    seat_rows: list[SeatRow]  # supervisor seats per month that may bind (over all supervisor option rows)

    @property
    def free_supervisor(self) -> IntArray:
        """Per pair, a supervisor that can never run out of seats, or -1."""
        return self.supervisors.free_choice(len(self.pairs))

    @property
    def free_programme(self) -> IntArray:
        """Per pair, a programme whose budget and caps can never bind, or -1."""
        return self.programmes.free_choice(len(self.pairs))

    @property
    def is_flow(self) -> bool:
        """No side constraint can bind: the problem is a capacitated assignment (min-cost flow)."""
        policy = self.instance.policy
        if policy.floors or policy.forbid_blocking:
            return False
        return bool((self.free_supervisor >= 0).all() and (self.free_programme >= 0).all())


def _supervisor_options(instance: Instance, tables: Tables, pairs: Eligible) -> tuple[IntArray, IntArray]:
    """(pair, supervisor) rows for every supervisor who can take the pair's whole stay (a free seat in each month)."""
    rows_pair, rows_sup = [], []
    by_offer = np.argsort(pairs.offer, kind="stable")
    bounds = np.searchsorted(pairs.offer[by_offer], np.arange(len(instance.offers) + 1))
    for oi, offer in enumerate(instance.offers):
        idx = by_offer[bounds[oi] : bounds[oi + 1]]
        if not len(idx):
            continue
        start = month_index(offer.start)
        for sid in offer.supervisor_ids:
            s = tables.supervisor_index[sid]
            reach = supervisor_reach(instance, tables.limits, s, offer.profession.value, start)
            ok = idx[pairs.months[idx] <= reach]
            rows_pair.append(ok)
            rows_sup.append(np.full(len(ok), s, dtype=np.int64))
    pair = np.concatenate(rows_pair) if rows_pair else np.zeros(0, dtype=np.int64)
    sup = np.concatenate(rows_sup) if rows_sup else np.zeros(0, dtype=np.int64)
    order = np.lexsort((sup, pair))
    return pair[order], sup[order]


@dataclass(frozen=True)
class SeatRow:
    """One supervisor's seats in one month: the option rows active then may use at most `seats` of them."""

    supervisor: int
    month: int
    rows: IntArray  # supervisor option rows (indexes into Prepared.supervisors) whose stay covers the month
    seats: int  # free seats that month (capacity less earlier rounds' commitments)


def seat_rows(tables: Tables, pairs: Eligible, sup_pair: IntArray, sup_choice: IntArray) -> list[SeatRow]:
    """Every month at which a supervisor's seats can be the tightest: where a stay starts or the committed load
    changes. Between two such months no stay starts and the free seats stay the same, so the earlier one dominates."""
    out = []
    first_all = tables.offers.start_month[pairs.offer[sup_pair]]
    last_all = first_all + pairs.months[sup_pair] - 1
    order = np.argsort(sup_choice, kind="stable")
    cuts = np.flatnonzero(np.diff(sup_choice[order])) + 1
    for mine in np.split(order, cuts) if len(order) else []:
        s = int(sup_choice[mine[0]])
        first, last = first_all[mine], last_all[mine]
        fixed = tables.limits.supervisor_fixed.get(s, {})
        lo, hi = int(first.min()), int(last.max())
        changes = [m for m in range(lo + 1, hi + 1) if fixed.get(m, 0) != fixed.get(m - 1, 0)]
        for m in sorted({*np.unique(first).tolist(), *changes}):
            active = mine[(first <= m) & (m <= last)]
            out.append(SeatRow(s, m, active, tables.limits.seats_left(s, m)))
    return out


def _supervisor_binding(
    instance: Instance, tables: Tables, pairs: Eligible, pair: IntArray, seats: list[SeatRow]
) -> BoolArray:
    """A supervisor binds if all offers that could use them, full, would exceed a month's free seats."""
    binding = np.zeros(len(instance.supervisors), dtype=bool)
    slots = tables.offers.slots
    for row in seats:
        # Each offer fills at most its slots at once, however many of its pairs could use the supervisor.
        offers = np.unique(pairs.offer[pair[row.rows]])
        binding[row.supervisor] |= int(slots[offers].sum()) > row.seats
    return binding


def _money_binding(instance: Instance, tables: Tables, pairs: Eligible) -> tuple[BoolArray, BoolArray]:
    """Which programme budgets and which (programme, unit) caps could be exceeded by some solution."""
    n_prog, n_units = len(instance.programmes), len(instance.units)
    budget = np.zeros(n_prog, dtype=bool)
    unit_cap = np.zeros((n_prog, n_units), dtype=bool)
    unit_of_offer, slots = tables.offers.unit, tables.offers.slots
    limits = tables.limits
    for g in range(n_prog):
        rows = np.flatnonzero(pairs.fund_programme == g)
        if not len(rows):
            continue
        p, grant = pairs.fund_pair[rows], pairs.fund_grant[rows]
        by_cand = np.zeros(len(instance.candidates), dtype=np.int64)
        np.maximum.at(by_cand, pairs.cand[p], grant)
        by_offer = np.zeros(len(instance.offers), dtype=np.int64)
        np.maximum.at(by_offer, pairs.offer[p], grant)
        most = min(int(by_cand.sum()), int((by_offer * slots).sum()))
        budget[g] = most > int(limits.general_left[g])
        for u in range(n_units):
            cap = int(limits.unit_cap_left[g, u])
            if cap == NO_CAP:
                continue
            at_unit = unit_of_offer == u
            unit_cap[g, u] = int((by_offer[at_unit] * slots[at_unit]).sum()) > cap
    return budget, unit_cap


def prepare(instance: Instance) -> Prepared:
    """Eligible pairs, scores and the constraint structure of a checked instance."""
    tables = build_tables(instance)
    pairs = eligible_pairs(instance, tables)
    scores = score_pairs(instance, tables, pairs)
    sup_pair, sup_choice = _supervisor_options(instance, tables, pairs)
    seats = seat_rows(tables, pairs, sup_pair, sup_choice)
    sup_binding = _supervisor_binding(instance, tables, pairs, sup_pair, seats)
    budget_binding, unit_cap_binding = _money_binding(instance, tables, pairs)
    prog_binding_row = (
        budget_binding[pairs.fund_programme]
        | unit_cap_binding[pairs.fund_programme, tables.offers.unit[pairs.offer[pairs.fund_pair]]]
        if len(pairs.fund_pair)
        else np.zeros(0, dtype=bool)
    )
    # A programme option is binding per row (its unit's cap may bind at one unit only), so index rows, not choices.
    programmes = Options(
        pair=pairs.fund_pair,
        choice=np.arange(len(pairs.fund_pair), dtype=np.int64),
        amount=pairs.fund_grant,
        binding=prog_binding_row,
    )
    waited = instance.round_date.toordinal() - tables.candidates.ready[pairs.cand]
    return Prepared(
        instance=instance,
        tables=tables,
        pairs=pairs,
        scores=scores,
        waiting_days=np.clip(waited, 0, 3650),
        supervisors=Options(pair=sup_pair, choice=sup_choice, amount=np.zeros_like(sup_pair), binding=sup_binding),
        programmes=programmes,
        unit_cap_binding=unit_cap_binding,
        budget_binding=budget_binding,
        seat_rows=seats,
    )
