"""Solver-independent check of a solution: every hard rule, capacity, budget, earmark and cap."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from matching.input.instance import Instance, Programme, Unit, Weights
from matching.input.months import month_label
from matching.model.solution import Assignment, Solution
from matching.model.stability import blocking_pairs
from matching.rules import rulebook
from matching.rules.groups import floor_targets
from matching.rules.prepare import prepare
from matching.rules.tables import last_full_month, month_index, qualified


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule in a solution."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


def verify(instance: Instance, solution: Solution, *, report: bool = True) -> list[Violation]:
    """Every rule the solution breaks; an empty list means it is valid.

    The rules are checked with this module's own code (and rulebook.py), never with the solver's, so that a
    bug in a rule cannot pass its own check. With `report`, the solution's own figures are checked too: placement
    count, total score, each score against its breakdown, money per programme, and an unmatched entry for every
    candidate left out.
    """
    out: list[Violation] = []
    known = _known(instance, solution.assignments, out)
    _check_pairs(instance, known, out)
    _check_counts(instance, known, out)
    _check_supervisors(instance, known, out)
    _check_money(instance, known, out)
    _check_pins(instance, solution.assignments, out)
    _check_floors(instance, known, out)
    _check_blocking(instance, solution, out)
    if report:
        _check_report(instance, solution, out)
    return out


def verify_commitments(instance: Instance) -> list[Violation]:
    """Every limit the commitments alone break: what accepting a placement, or cutting a budget, a cap, a seat or a
    supervisor's availability, must never cause."""
    out: list[Violation] = []
    _check_committed_supervisors(instance, out)
    _check_supervisors(instance, [], out)
    _check_money(instance, [], out)
    return out


def _check_committed_supervisors(instance: Instance, out: list[Violation]) -> None:
    """Each commitment's supervisor is available for the months it holds."""
    sups = {s.id: s for s in instance.supervisors}
    for c in instance.commitments:
        s = sups.get(c.supervisor_id or "")
        if s is None or not c.months:
            continue
        first = month_index(c.start)
        if month_index(s.available_from) > first or first + c.months - 1 > last_full_month(s.available_until):
            out.append(
                Violation(
                    "supervisor_available",
                    f"supervisor {s.id} holds commitment {c.id} ({c.candidate_id}) from {month_label(first)} to "
                    f"{month_label(first + c.months - 1)} and is not available for all of it",
                )
            )


def _known(instance: Instance, assignments: list[Assignment], out: list[Violation]) -> list[Assignment]:
    """The assignments whose ids all exist; report the others."""
    pools = {
        "candidate": {c.id for c in instance.candidates},
        "offer": {o.id for o in instance.offers},
        "supervisor": {s.id for s in instance.supervisors},
        "programme": {p.id for p in instance.programmes},
    }
    known = []
    for k, a in enumerate(assignments):
        values = {
            "candidate": a.candidate_id,
            "offer": a.offer_id,
            "supervisor": a.supervisor_id,
            "programme": a.programme_id,
        }
        missing = [f"{what} {value!r}" for what, value in values.items() if value not in pools[what]]
        if missing:
            out.append(Violation("known_id", f"assignment {k} names unknown {', '.join(missing)}"))
        else:
            known.append(a)
    return known


def _check_pairs(instance: Instance, known: list[Assignment], out: list[Violation]) -> None:
    """Each match passes every pair rule, its programme every programme rule, and its amounts add up."""
    candidates = {c.id: c for c in instance.candidates}
    offers = {o.id: o for o in instance.offers}
    units = {u.id: u for u in instance.units}
    programmes = {p.id: p for p in instance.programmes}
    for a in known:
        c, o, prog = candidates[a.candidate_id], offers[a.offer_id], programmes[a.programme_id]
        unit = units[o.unit_id]
        pair = f"({a.candidate_id}, {a.offer_id})"
        months = rulebook.months_of(c, o)
        costs = rulebook.costs_of(c, o, months)
        grant = rulebook.grant_of(prog, costs)
        out += [Violation(rule, f"pair {pair} breaks rule {rule}") for rule in rulebook.pair_failures(
            instance, c, o, unit, months
        )]  # fmt: skip
        out += [
            Violation(rule, f"pair {pair} paid by {prog.id} breaks {rule}")
            for rule in rulebook.programme_failures(instance, c, o, unit, prog, months, grant)
        ]
        total = sum(costs.values())
        if a.grant != grant:
            out.append(Violation("grant_amount", f"pair {pair}: grant {a.grant} SEK, the rules give {grant} SEK"))
        if a.total_cost != total or a.unit_share != total - a.grant:
            out.append(
                Violation(
                    "cost_split",
                    f"pair {pair}: total {a.total_cost} and unit share {a.unit_share} SEK, "
                    f"expected {total} and {total - a.grant}",
                )
            )
        if a.months != months:
            out.append(Violation("months", f"pair {pair}: {a.months} months, the rules give {months}"))
        mark = prog.earmark_for(o.profession, o.kind)
        if a.earmark_id != (prog.earmarks[mark].id if mark is not None else None) or a.start != o.start:
            out.append(Violation("assignment_facts", f"pair {pair}: its earmark or start is not the offer's"))


def _check_counts(instance: Instance, known: list[Assignment], out: list[Violation]) -> None:
    """One offer per candidate; no offer over its slots."""
    per_candidate = Counter(a.candidate_id for a in known)
    out += [
        Violation("one_offer_per_candidate", f"candidate {cid} has {n} offers")
        for cid, n in sorted(per_candidate.items())
        if n > 1
    ]
    per_offer = Counter(a.offer_id for a in known)
    slots = {o.id: o.slots for o in instance.offers}
    out += [
        Violation("slots", f"offer {oid} has {n} matches for {slots[oid]} slot(s)")
        for oid, n in sorted(per_offer.items())
        if n > slots[oid]
    ]


def _check_supervisors(instance: Instance, known: list[Assignment], out: list[Violation]) -> None:
    """Each match has a qualified supervisor of its offer, available throughout, and no supervisor has more
    trainees in a month than their capacity, counting the placements earlier rounds committed."""
    sups = {s.id: s for s in instance.supervisors}
    offers = {o.id: o for o in instance.offers}
    load: dict[tuple[str, int], int] = defaultdict(int)
    for c in instance.commitments:
        if c.supervisor_id is not None:
            for m in range(month_index(c.start), month_index(c.start) + c.months):
                load[(c.supervisor_id, m)] += 1
    for a in known:
        s, o = sups[a.supervisor_id], offers[a.offer_id]
        pair = f"({a.candidate_id}, {a.offer_id})"
        first = month_index(o.start)
        if a.supervisor_id not in o.supervisor_ids:
            out.append(Violation("supervisor_of_offer", f"pair {pair}: {s.id} does not supervise offer {o.id}"))
        if not qualified(s.profession.value, s.licensed, s.capacity, o.profession.value):
            out.append(Violation("supervisor_qualified", f"pair {pair}: {s.id} may not supervise this profession"))
        if month_index(s.available_from) > first or first + a.months - 1 > last_full_month(s.available_until):
            out.append(Violation("supervisor_available", f"pair {pair}: {s.id} is not available for the whole stay"))
        for m in range(first, first + a.months):
            load[(s.id, m)] += 1
    for (sid, m), n in sorted(load.items()):
        if n > sups[sid].capacity:
            out.append(
                Violation(
                    "supervisor_capacity",
                    f"supervisor {sid} has {n} trainees in {month_label(m)} (earlier rounds' commitments "
                    f"included), capacity {sups[sid].capacity}",
                )
            )


@dataclass(frozen=True, slots=True)
class _Grant:
    """Money a programme pays out: a match of this round or a commitment of an earlier one."""

    candidate_id: str
    unit_id: str
    earmark: int | None
    amount: int


def _grants(instance: Instance, known: list[Assignment]) -> dict[str, list[_Grant]]:
    """Per programme, every grant: commitments at the earmark they drew on, new matches at the earmark their
    profession and offer kind draw on."""
    offers = {o.id: o for o in instance.offers}
    programmes = {p.id: p for p in instance.programmes}
    grants: dict[str, list[_Grant]] = defaultdict(list)
    for c in instance.commitments:
        marks = [e.id for e in programmes[c.programme_id].earmarks]
        mark = marks.index(c.earmark_id) if c.earmark_id in marks else None
        grants[c.programme_id].append(_Grant(c.candidate_id, c.unit_id, mark, c.grant))
    for a in known:
        o = offers[a.offer_id]
        mark = programmes[a.programme_id].earmark_for(o.profession, o.kind)
        grants[a.programme_id].append(_Grant(a.candidate_id, o.unit_id, mark, a.grant))
    return grants


def _check_money(instance: Instance, known: list[Assignment], out: list[Violation]) -> None:
    """Budgets with earmarks, per-unit caps by size class and per-candidate caps, over this round's grants and
    the commitments of earlier rounds together."""
    units = {u.id: u for u in instance.units}
    grants = _grants(instance, known)
    for prog in instance.programmes:
        paid = grants.get(prog.id, [])
        spent_by_earmark: dict[int | None, int] = defaultdict(int)
        for grant in paid:
            spent_by_earmark[grant.earmark] += grant.amount
        total = sum(spent_by_earmark.values())
        if total > prog.budget:
            out.append(
                Violation("budget", f"programme {prog.id} grants {total} SEK (commitments included) of {prog.budget}")
            )
        # Earmarked money serves only its own matches; everything else must fit in the general part.
        general = prog.budget - sum(e.amount for e in prog.earmarks)
        overflow = spent_by_earmark.get(None, 0) + sum(
            max(0, spent_by_earmark.get(k, 0) - e.amount) for k, e in enumerate(prog.earmarks)
        )
        if prog.earmarks and overflow > general:
            out.append(
                Violation(
                    "earmark",
                    f"programme {prog.id} needs {overflow} SEK of general money, {general} SEK is not earmarked",
                )
            )
        _check_caps(prog, units, paid, out)


def _check_caps(prog: Programme, units: dict[str, Unit], paid: list[_Grant], out: list[Violation]) -> None:
    per_unit: dict[str, int] = defaultdict(int)
    per_candidate: dict[str, int] = defaultdict(int)
    for grant in paid:
        per_unit[grant.unit_id] += grant.amount
        per_candidate[grant.candidate_id] += grant.amount
    for uid, granted in sorted(per_unit.items()):
        cap = prog.unit_caps.for_size(units[uid].size_class)
        if cap is not None and granted > cap:
            out.append(Violation("unit_cap", f"programme {prog.id} grants unit {uid} {granted} SEK, cap {cap} SEK"))
    if prog.candidate_cap is not None:
        for cid, granted in sorted(per_candidate.items()):
            if granted > prog.candidate_cap:
                out.append(
                    Violation(
                        "candidate_cap",
                        f"programme {prog.id} grants candidate {cid} {granted} SEK, cap {prog.candidate_cap} SEK",
                    )
                )


def _check_pins(instance: Instance, assignments: list[Assignment], out: list[Violation]) -> None:
    """Every pinned pair is matched (forbidden pairs are caught by the `forbidden` pair rule)."""
    matched = {(a.candidate_id, a.offer_id) for a in assignments}
    out += [
        Violation("pinned", f"pinned pair ({p.candidate_id}, {p.offer_id}) is not matched")
        for p in instance.policy.pins
        if (p.candidate_id, p.offer_id) not in matched
    ]


def _check_floors(instance: Instance, assignments: list[Assignment], out: list[Violation]) -> None:
    """Each floor's group has at least the required number placed."""
    matched = {a.candidate_id for a in assignments}
    for floor, group, required in floor_targets(instance):
        placed = sum(1 for i in group if instance.candidates[i].id in matched)
        if placed < required:
            out.append(Violation("floor", f"{placed} placed in {floor.label()}, the floor asks for {required}"))


def _check_blocking(instance: Instance, solution: Solution, out: list[Violation]) -> None:
    """With forbid_blocking, no candidate and offer would both rather be together (stated preferences)."""
    if not instance.policy.forbid_blocking:
        return
    prep = prepare(instance)
    try:
        blocking = blocking_pairs(prep, solution)
    except ValueError:
        return  # a pair that is not eligible is reported by the pair checks
    for c, o in blocking[:20]:
        out.append(
            Violation("blocking_pair", f"{instance.candidates[c].id} and {instance.offers[o].id} would both rather")
        )


def _check_report(instance: Instance, solution: Solution, out: list[Violation]) -> None:
    """The solution's own figures agree with its matches: count, score, breakdowns, unmatched list and money."""
    matches = solution.assignments
    if solution.placements != len(matches):
        out.append(Violation("report_placements", f"reports {solution.placements} placements for {len(matches)}"))
    if solution.score != sum(a.score for a in matches):
        out.append(Violation("report_score", f"reports a total score of {solution.score}, the matches add up to "
                                             f"{sum(a.score for a in matches)}"))  # fmt: skip
    weights = instance.policy.weights
    names = set(Weights.model_fields)
    for a in matches:
        pair = f"({a.candidate_id}, {a.offer_id})"
        if set(a.breakdown) != names or any(not 0 <= v <= 1000 for v in a.breakdown.values()):
            out.append(Violation("report_breakdown", f"pair {pair}: the breakdown is not one 0..1000 per component"))
        elif a.score != sum(getattr(weights, name) * value for name, value in a.breakdown.items()):
            out.append(Violation("report_score", f"pair {pair}: score {a.score} is not its weighted breakdown"))
    if solution.status in ("OPTIMAL", "FEASIBLE"):
        _check_unmatched(instance, solution, out)
    _check_money_report(instance, solution, out)


def _check_unmatched(instance: Instance, solution: Solution, out: list[Violation]) -> None:
    placed = {a.candidate_id for a in solution.assignments}
    listed = Counter(u.candidate_id for u in solution.unmatched)
    missing = [c.id for c in instance.candidates if c.id not in placed and c.id not in listed]
    wrong = sorted(cid for cid, n in listed.items() if n > 1 or cid in placed)
    if missing:
        out.append(Violation("report_unmatched", f"{len(missing)} unplaced candidate(s) have no reason, e.g. "
                                                 f"{missing[0]}"))  # fmt: skip
    if wrong:
        out.append(Violation("report_unmatched", f"{wrong[0]} is listed as unmatched twice or while placed"))


def _check_money_report(instance: Instance, solution: Solution, out: list[Violation]) -> None:
    """Per programme: budget, granted, matches, drawn per earmark, committed and left, counted again here."""
    uses = Counter(m.programme_id for m in solution.money)
    if sorted(uses.elements()) != sorted(p.id for p in instance.programmes):
        out.append(Violation("report_money", "the money report does not list every programme exactly once"))
        return
    reported = {m.programme_id: m for m in solution.money}
    offers = {o.id: o for o in instance.offers}
    for prog in instance.programmes:
        mine = [a for a in solution.assignments if a.programme_id == prog.id]
        committed = [c for c in instance.commitments if c.programme_id == prog.id]
        granted, held = sum(a.grant for a in mine), sum(c.grant for c in committed)
        drawn = {}
        for k, earmark in enumerate(prog.earmarks):
            before = sum(c.grant for c in committed if c.earmark_id == earmark.id)
            new = sum(
                a.grant for a in mine if prog.earmark_for(offers[a.offer_id].profession, offers[a.offer_id].kind) == k
            )
            drawn[earmark.id] = min(earmark.amount, before + new) - min(earmark.amount, before)
        m = reported[prog.id]
        left = prog.budget - held - granted
        facts = (m.budget, m.granted, m.matches, m.committed, m.left, dict(m.earmarks))
        if facts != (prog.budget, granted, len(mine), held, left if m.left is not None else None, drawn):
            out.append(
                Violation(
                    "report_money",
                    f"programme {prog.id}: reports budget {m.budget}, granted {m.granted} in {m.matches} match(es), "
                    f"committed {m.committed}, left {m.left}, earmarks {dict(m.earmarks)}; the matches give "
                    f"{prog.budget}, {granted} in {len(mine)}, {held}, {left}, {drawn}",
                )
            )
