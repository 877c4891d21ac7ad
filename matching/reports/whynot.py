"""Why a candidate was not matched, and the smallest change to the round's input that would have placed them.

The cause and its facts come from the solution's state of capacity and money. The change is found by trying
small changes, smallest first, and re-solving the round with each, the round's proposals kept (CP-SAT on the
unmatched candidates' pairs of the changed instance, or the whole round with the proposals pinned); a change counts
only when the re-solve places the candidate and its solution passes `verify` on the changed instance. For many
candidates the changes are tried level by level and each distinct change is solved once for all who try it.
"""

from __future__ import annotations

import calendar
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np
from pydantic import Field

from matching.input.instance import (
    Candidate,
    Instance,
    LanguageProof,
    Offer,
    OfferStatus,
    Pair,
    Programme,
    Stage,
    Supervisor,
    Unit,
)
from matching.input.validate import InvalidInstance
from matching.model.solution import Assignment, Out, Reason, Solution, Unmatched
from matching.model.spec import build_spec, objective_tiers
from matching.reports.changes import Change, apply_changes, describe, fact_count
from matching.reports.verify import verify
from matching.rules.eligibility import PairChecks, check_pairs
from matching.rules.ledger import Ledger, Use
from matching.rules.prepare import Prepared, prepare
from matching.rules.tables import distance_km, last_full_month, month_index
from matching.solvers.greedy import Pick
from matching.solvers.solve import build_solution, solve
from matching.solvers.strategies import tier_report
from matching.solvers.submodel import Parts

MIN_TRY_SECONDS = 0.05  # below this a re-solve cannot say anything; stop instead
NOTHING_TO_TRY = (
    "no change to try: every offer fails a rule that no change to the candidate, a slot, a seat or money meets"
)
NEAREST_SHOWN = 5
# One batched re-solve's time limit. The part solve (proposals fixed) proves its optimum in about 0.05 s on the demo
# region; a full re-solve with the proposals pinned finds the extra placement at 0.3 s about as often as at 1 s
# (10 of 25 against 11) and at 0.1 s often returns less than the round.
RESOLVE_SECONDS = 0.3
MAX_OPENABLE = 50  # offers a change to the candidate could open, fewest failed rules first, that are tried
# Pair rules no change to the candidate can meet: an offer failing one is not tried.
FIXED_RULES = frozenset({"offer_status", "profession", "forbidden", "supervisor"})
# Programme rules a programme change can meet simply: more budget, a higher unit cap or candidate cap.
MONEY_RULES = frozenset({"programme_budget", "programme_unit_cap", "programme_candidate_cap"})
STAGE_TEXT = {
    Stage.EDUCATION_ASSESSED: "have the education assessed",
    Stage.LANGUAGE_PROOF: "have the language proof",
    Stage.THEORY_TEST: "pass the theory test",
    Stage.PRACTICAL_TEST: "pass the practical test",
    Stage.REGULATIONS_COURSE: "complete the regulations course",
    Stage.PTJ_DECISION: "have Socialstyrelsen's PTJ decision",
}


class Placement(Out):
    """Where the re-solve placed the candidate."""

    offer_id: str
    supervisor_id: str
    programme_id: str


class SeatTaken(Out):
    """A supervisor of an eligible offer with no free seat for the candidate's stay."""

    supervisor_id: str
    unit_id: str
    capacity: int


class MoneyShort(Out):
    """A programme limit that stops a match at an offer with room: the amount left against the grant needed."""

    programme_id: str
    offer_id: str
    limit: Literal["budget", "unit_cap"]
    unit_id: str | None = Field(default=None, description="the unit whose cap binds (limit unit_cap)")
    earmark_id: str | None = Field(default=None, description="the earmark the match would draw on (limit budget)")
    left: int
    needed: int


class WhyNot(Out):
    """Why one candidate was not matched, and the smallest change found (by re-solving) that places them."""

    candidate_id: str
    cause: Reason
    detail: str
    nearest_offers: dict[str, list[str]] = Field(
        default={}, description="no_eligible_offer: the offers failing the fewest rules -> those rules"
    )
    full_offers: list[str] = Field(default=[], description="eligible offers with every slot taken")
    seats_taken: list[SeatTaken] = Field(default=[], description="supervisors of eligible offers with no free seat")
    money: list[MoneyShort] = Field(default=[], description="no_money: the binding budgets and unit caps")
    rival_id: str | None = Field(default=None, description="out_competed: who got the offer")
    rival_offer_id: str | None = None
    score_gap: int | None = Field(default=None, description="out_competed: the rival's score minus the candidate's")
    change: list[Change] | None = Field(default=None, description="the smallest change found; [] for no change")
    change_text: list[str] = Field(default_factory=list)
    change_kind: str | None = Field(default=None, description="what the change is, for counting across candidates")
    placed_at: Placement | None = None
    placements_after: int | None = Field(default=None, description="placements in the re-solve that placed them")
    displaced: list[str] = Field(default=[], description="placed before, not placed in that re-solve")
    tries: int = 0
    verified: bool = False
    computed: bool = True
    note: str = ""


class ChangeCount(Out):
    """One kind of change and the candidates it would place."""

    kind: str
    candidates: int
    candidate_ids: list[str]


class WhyNotSummary(Out):
    """Counts over many WhyNot results."""

    total: int
    causes: dict[str, int]
    changes: list[ChangeCount]
    verified: int
    not_placed: int = Field(description="tried, but no change tried placed them")
    not_computed: int = Field(description="no change tried: the time budget was used up")

    def lines(self) -> list[str]:
        """Plain text: the causes, then the most common changes."""
        out = [f"{cause}: {n}" for cause, n in self.causes.items()]
        out += [f"{c.kind}: {c.candidates} candidate{'s' if c.candidates != 1 else ''}" for c in self.changes]
        out.append(f"verified {self.verified}, not placed {self.not_placed}, not computed {self.not_computed}")
        return out


@dataclass
class _Round:
    """A solved round, prepared once for any number of candidates."""

    instance: Instance
    solution: Solution
    prep: Prepared
    ledger: Ledger
    holders: dict[str, list[Assignment]]
    unmatched: dict[str, Unmatched]
    keep: tuple[Pair, ...]
    offers: dict[str, Offer] = field(default_factory=dict)
    supervisors: dict[str, Supervisor] = field(default_factory=dict)


@dataclass(frozen=True)
class _Try:
    """Changes to try and their rank: the cause's own kind of change first, then fewer facts, the smaller
    increment (1x before 2x), the smaller size, and the offer order."""

    changes: tuple[Change, ...]
    rank: tuple[float, ...]
    time_factor: float = 1.0


@dataclass(frozen=True)
class _Funder:
    """A programme that may pay for a pair (or would, after a money change), and the grant it would pay."""

    programme: int
    grant: int
    earmark: int
    over_candidate_cap: bool = False


def _round(instance: Instance, solution: Solution) -> _Round:
    prep = prepare(instance)
    ledger = Ledger(instance)
    holders: dict[str, list[Assignment]] = {}
    for a in solution.assignments:
        ledger.add(
            Use(a.candidate_id, a.offer_id, a.supervisor_id, a.programme_id, month_index(a.start), a.months, a.grant)
        )
        holders.setdefault(a.offer_id, []).append(a)
    return _Round(
        instance=instance,
        solution=solution,
        prep=prep,
        ledger=ledger,
        holders=holders,
        unmatched={u.candidate_id: u for u in solution.unmatched},
        keep=tuple(Pair(candidate_id=a.candidate_id, offer_id=a.offer_id) for a in solution.assignments),
        offers={o.id: o for o in instance.offers},
        supervisors={s.id: s for s in instance.supervisors},
    )


def why_not(
    instance: Instance, solution: Solution, candidate_id: str, *, seconds: float = 10.0, max_tries: int = 8
) -> WhyNot:
    """Why the candidate is not in the solution, and the smallest change (verified by re-solving) that places them.

    `seconds` bounds the re-solves for this candidate; `max_tries` the number of changes tried.
    Raises ValueError for an unknown or a matched candidate.
    """
    return _why_not(_round(instance, solution), candidate_id, seconds, max_tries)


def why_not_all(instance: Instance, solution: Solution, *, seconds_total: float, per_candidate: float) -> list[WhyNot]:
    """why_not for every unmatched candidate, in the solution's order, within `seconds_total` in all.

    Batched: the candidates' changes are tried level by level (every candidate's smallest change first, then each
    one's next), and a change that several candidates would try is solved once for all of them, so each gets the
    same smallest change as `why_not` would give, with far fewer re-solves. `per_candidate` caps one re-solve's
    time. Once the budget is used up, the remaining candidates get their cause and facts but no change ("not
    computed"), or the changes tried so far ("time budget used up after N tries").
    """
    started = time.monotonic()
    r = _round(instance, solution)
    with_tries = seconds_total >= MIN_TRY_SECONDS
    plans: dict[str, _Plan] = {}
    for u in solution.unmatched:
        ci = r.prep.tables.candidates.index[u.candidate_id]
        facts, tries = _facts_and_tries(r, ci, u, with_tries=with_tries)
        plans[u.candidate_id] = _Plan(ci, facts, _todo(tries, 8))
    _run_levels(r, plans, started, seconds_total, per_candidate)
    out = []
    for u in solution.unmatched:
        plan = plans[u.candidate_id]
        note = _plan_note(plan, with_tries, 8)
        out.append(_result(r, u.candidate_id, plan.facts, plan.tried, plan.found, note))
    return out


@dataclass
class _Plan:
    """One candidate in the batched path: the changes to try, smallest first, and what trying them found."""

    ci: int
    facts: dict[str, Any]
    todo: list[_Try]
    tried: int = 0
    found: tuple[tuple[Change, ...], Solution] | None = None
    done: bool = False  # found, or every change tried


def _run_levels(r: _Round, plans: dict[str, _Plan], started: float, seconds: float, cap: float) -> bool:
    """Try level k of every open candidate's changes, each distinct change solved once; True if time ran out.

    A change's re-solve is kept (by key) for later levels, where another candidate may try the same change.
    """
    solved: dict[str, Solution | None] = {}
    for level in range(max((len(p.todo) for p in plans.values()), default=0)):
        groups: dict[str, tuple[_Try, list[str]]] = {}
        for cid, plan in plans.items():
            if plan.done:
                continue
            if level >= len(plan.todo):
                plan.done = True
                continue
            t = plan.todo[level]
            groups.setdefault(_key(t), (t, []))[1].append(cid)
        # The biggest groups first: one solve answers the most candidates.
        todo = sorted(groups.items(), key=lambda kv: -len(kv[1][1]))
        for n, (key, (t, cids)) in enumerate(todo):
            if key not in solved:
                left = seconds - (time.monotonic() - started)
                if left < MIN_TRY_SECONDS:
                    return True
                per_solve = min(cap, max(RESOLVE_SECONDS, left / (len(todo) - n)), RESOLVE_SECONDS * 2)
                solved[key] = _resolve(r, t, per_solve)
            for cid in cids:
                _record(r, plans[cid], t, solved[key])
    for plan in plans.values():
        plan.done = True  # every planned change was tried
    return False


def _record(r: _Round, plan: _Plan, t: _Try, solution: Solution | None) -> None:
    if solution is None:
        return  # not a change that can be made: not counted as a try, as in `_run`
    plan.tried += 1
    cid = r.instance.candidates[plan.ci].id
    if any(a.candidate_id == cid for a in solution.assignments):
        plan.found, plan.done = (t.changes, solution), True


def _plan_note(plan: _Plan, with_tries: bool, max_tries: int) -> str:
    if plan.found is not None:
        return _found_note(next(t for t in plan.todo if t.changes == plan.found[0]))
    if not with_tries:
        return "not computed: time budget used up"
    if not plan.todo:
        return NOTHING_TO_TRY
    if not plan.done:
        if plan.tried == 0:
            return "not computed: time budget used up"
        return f"time budget used up after {plan.tried} tries; none placed this candidate"
    if len(plan.todo) >= max_tries:
        return f"no single change within {max_tries} tries placed this candidate"
    return f"none of the {plan.tried} changes tried placed this candidate"


def _why_not(r: _Round, cid: str, seconds: float, max_tries: int) -> WhyNot:
    if cid not in r.prep.tables.candidates.index:
        raise ValueError(f"unknown candidate {cid!r}")
    if cid not in r.unmatched:
        raise ValueError(f"candidate {cid!r} is matched in this solution")
    unmatched = r.unmatched[cid]
    ci = r.prep.tables.candidates.index[cid]
    facts, tries = _facts_and_tries(r, ci, unmatched, with_tries=seconds >= MIN_TRY_SECONDS)
    tried, found, note = _run(r, ci, tries, seconds, max_tries)
    return _result(r, cid, facts, tried, found, note)


def _result(
    r: _Round,
    cid: str,
    facts: dict[str, Any],
    tried: int,
    found: tuple[tuple[Change, ...], Solution] | None,
    note: str,
) -> WhyNot:
    unmatched = r.unmatched[cid]
    result = {**facts, "candidate_id": cid, "cause": unmatched.reason, "tries": tried, "note": note}
    if tried == 0 and note.startswith("not computed"):
        result["computed"] = False
    if found is not None:
        changes, solution = found
        a = next(a for a in solution.assignments if a.candidate_id == cid)
        before = {x.candidate_id for x in r.solution.assignments}
        result.update(
            change=list(changes),
            change_text=[describe(c, r.instance) for c in changes] or ["no input change: solve again, longer"],
            change_kind=_kind(changes, r),
            placed_at=Placement(offer_id=a.offer_id, supervisor_id=a.supervisor_id, programme_id=a.programme_id),
            placements_after=solution.placements,
            displaced=sorted(before - {x.candidate_id for x in solution.assignments}),
            verified=True,
        )
        if result["displaced"]:
            result["note"] = f"{note}; the re-solve leaves out {', '.join(result['displaced'])}"
    return WhyNot(**result)


# --- the facts of each cause, and the changes to try ------------------------------------------------------------


def _facts_and_tries(r: _Round, ci: int, unmatched: Unmatched, with_tries: bool) -> tuple[dict[str, Any], list[_Try]]:
    """The facts of the candidate's cause, and (with_tries) the changes that might place them."""
    cause = unmatched.reason
    gaps = _gaps(r, ci)
    own = _eligibility(r, ci, cause, with_tries)
    facts: dict[str, Any] = {"detail": unmatched.detail}
    tries: list[_Try] = []
    if cause == "no_eligible_offer":
        facts.update(nearest_offers=own.nearest, detail=_nearest_detail(r, ci, own.nearest))
        return facts, own.tries
    full = [g for g in gaps if g.full]
    facts["full_offers"] = sorted({g.offer.id for g in full})
    seats = {s.id: s for g in gaps for s in g.busy}
    facts["seats_taken"] = [
        SeatTaken(supervisor_id=s.id, unit_id=s.unit_id, capacity=s.capacity) for s in seats.values()
    ]
    if cause == "no_money":
        shorts = _money_facts(r, gaps)
        facts.update(money=shorts, detail=_money_detail(shorts) or unmatched.detail)
    elif cause == "no_capacity":
        facts["detail"] = _capacity_detail(gaps) or unmatched.detail
    elif cause == "out_competed":
        rival = next((a for a in r.solution.assignments if a.candidate_id == unmatched.competitor_id), None)
        facts.update(
            rival_id=unmatched.competitor_id,
            rival_offer_id=rival.offer_id if rival else None,
            score_gap=unmatched.score_gap,
        )
    elif cause == "not_selected":
        # The solver ran out of time: the same input, solved for twice as long.
        tries.append(_Try((), (0, 0, 0, 0.0, 0.0, 0.0), time_factor=2.0))
    family = "money" if cause == "no_money" else "capacity"
    for g in gaps if with_tries else []:
        for d in (1, 2):
            changes = _open_pair(r, g, d)
            if changes:
                kinds = {_family(c) for c in changes}
                mixed = 0 if kinds == {family} else 1
                tries.append(_Try(tuple(changes), (mixed, fact_count(changes), d, _size(changes), *g.order)))
    return facts, [*tries, *own.tries]


@dataclass(frozen=True)
class _Gap:
    """What one eligible pair (or one the candidate could make eligible) has left at the end of the round."""

    offer: Offer
    start: int
    months: int
    slots_free: int
    seats: list[tuple[Supervisor, int]]  # supervisors who could take the stay, with their free seats over it
    funders: list[_Funder]
    order: tuple[float, float]

    @property
    def full(self) -> bool:
        """No slot left."""
        return self.slots_free <= 0

    @property
    def seats_free(self) -> int:
        """Free supervisor seats for the whole stay, over all the offer's supervisors."""
        return sum(max(0, free) for _, free in self.seats)

    @property
    def busy(self) -> list[Supervisor]:
        """The supervisors, all without a free seat for the stay (empty when one has a seat)."""
        return [] if self.seats_free else [s for s, _ in self.seats]


def _gaps(r: _Round, ci: int) -> list[_Gap]:
    """The candidate's eligible pairs, ordered (out-competed: smallest rival gap first; else best score first)."""
    prep, pairs = r.prep, r.prep.pairs
    lo, hi = np.searchsorted(pairs.cand, [ci, ci + 1])
    f_bounds = np.searchsorted(pairs.fund_pair, np.arange(lo, hi + 1))
    gaps = []
    for k in range(int(lo), int(hi)):
        oi = int(pairs.offer[k])
        funders = [
            _Funder(int(pairs.fund_programme[row]), int(pairs.fund_grant[row]), int(pairs.fund_earmark[row]))
            for row in range(int(f_bounds[k - lo]), int(f_bounds[k - lo + 1]))
        ]
        mine = int(prep.scores.total[k])
        offer = r.instance.offers[oi]
        rivals = [a.score - mine for a in r.holders.get(offer.id, [])]
        # Out-competed: the full offer where the rival's lead is smallest first; otherwise the best-scoring offer.
        full = rivals and r.ledger.offer_used[offer.id] >= offer.slots
        order = (0.0, float(min(rivals))) if full else (1.0, float(-mine))
        gaps.append(_gap(r, oi, int(pairs.months[k]), funders, order))
    return sorted(gaps, key=lambda g: g.order)


def _gap(r: _Round, oi: int, months: int, funders: list[_Funder], order: tuple[float, float]) -> _Gap:
    offer = r.instance.offers[oi]
    start = int(r.prep.tables.offers.start_month[oi])
    seats = []
    for sid in offer.supervisor_ids:
        s = r.supervisors[sid]
        peak = max(r.ledger.seats_used(sid, m) for m in range(start, start + months))
        # Could take the stay with one seat more than they use (qualified, available for every month)?
        if r.ledger.supervisor_fits(s.model_copy(update={"capacity": peak + 1}), offer.id, start, months):
            seats.append((s, s.capacity - peak))
    slots_free = offer.slots - r.ledger.offer_used[offer.id]
    return _Gap(offer, start, months, slots_free, seats, funders, order)


def _open_pair(r: _Round, g: _Gap, d: int) -> list[Change]:
    """Changes that leave the pair room for d matches: slots, a supervisor's seats and money; [] if it has room."""
    changes = []
    if g.slots_free < d:
        changes.append(Change(target="offer", id=g.offer.id, set={"slots": g.offer.slots + d - g.slots_free}))
    if g.seats_free < d and g.seats:
        s, free = max(g.seats, key=lambda sf: sf[1])
        changes.append(Change(target="supervisor", id=s.id, set={"capacity": s.capacity + d - max(0, free)}))
    money = _money_fix(r, g, d)
    return changes + (money or [])


def _money_fix(r: _Round, g: _Gap, d: int) -> list[Change] | None:
    """None when a programme can pay now; else the cheapest fix: more budget, a higher unit or candidate cap.

    d = 1 adds what is missing for this match; d = 2 money for one more match like it too (a rival who waits for
    the same money may take the first amount).
    """
    best: tuple[tuple[int, int], list[Change]] | None = None
    for f in g.funders:
        prog = r.instance.programmes[f.programme]
        update: dict[str, Any] = {}
        short = d * f.grant - r.ledger.room(prog.id, f.earmark)
        if short > 0:
            update["budget"] = prog.budget + short
        cap, cap_left = _cap_left(r, prog, g.offer)
        if cap is not None and cap_left is not None and d * f.grant > cap_left:
            size = _unit(r, g.offer).size_class.value
            update["unit_caps"] = {size: cap + d * f.grant - cap_left}
        if f.over_candidate_cap:
            update["candidate_cap"] = f.grant
        if not update:
            return None
        rank = (len(update), sum(_sek(v) for v in update.values()))
        if best is None or rank < best[0]:
            best = (rank, [Change(target="programme", id=prog.id, set=update)])
    return best[1] if best else []


def _cap_left(r: _Round, prog: Programme, offer: Offer) -> tuple[int | None, int | None]:
    """The programme's cap for the offer's unit and what is left of it (None, None: no cap)."""
    cap = prog.unit_caps.for_size(_unit(r, offer).size_class)
    if cap is None:
        return None, None
    return cap, r.ledger.unit_cap_left(prog.id, offer.unit_id)


def _unit(r: _Round, offer: Offer) -> Unit:
    return r.instance.units[r.prep.tables.unit_index[offer.unit_id]]


def _money_facts(r: _Round, gaps: list[_Gap]) -> list[MoneyShort]:
    """Per programme limit, the cheapest match it stops at an offer with a slot and a seat free."""
    best: dict[tuple[str, str, str | None], MoneyShort] = {}
    for g in gaps:
        if g.full or not g.seats_free:
            continue
        for f in g.funders:
            prog = r.instance.programmes[f.programme]
            left = r.ledger.room(prog.id, f.earmark)
            shorts = []
            if f.grant > left:
                mark = prog.earmarks[f.earmark].id if f.earmark >= 0 else None
                shorts.append(
                    MoneyShort(
                        programme_id=prog.id,
                        offer_id=g.offer.id,
                        limit="budget",
                        earmark_id=mark,
                        left=left,
                        needed=f.grant,
                    )
                )
            _, cap_left = _cap_left(r, prog, g.offer)
            if cap_left is not None and f.grant > cap_left:
                shorts.append(
                    MoneyShort(
                        programme_id=prog.id,
                        offer_id=g.offer.id,
                        limit="unit_cap",
                        unit_id=g.offer.unit_id,
                        left=cap_left,
                        needed=f.grant,
                    )
                )
            for m in shorts:
                key = (m.programme_id, m.limit, m.unit_id or m.earmark_id)
                if key not in best or m.needed - m.left < best[key].needed - best[key].left:
                    best[key] = m
    return sorted(best.values(), key=lambda m: (m.needed - m.left, m.programme_id))


# --- changes to the candidate that make an offer eligible -------------------------------------------------------


@dataclass(frozen=True)
class _Own:
    nearest: dict[str, list[str]]
    tries: list[_Try]


def _eligibility(r: _Round, ci: int, cause: str, with_tries: bool) -> _Own:
    """The nearest offers of the candidate's profession, and changes to the candidate that open them."""
    t = r.prep.tables
    same = np.flatnonzero(np.array(t.offers.profession, dtype=object) == t.candidates.profession[ci])
    if not len(same):
        return _Own({}, [])
    checks = check_pairs(r.instance, t, np.full(len(same), ci), same)
    failed = {int(oi): checks.failed(k) for k, oi in enumerate(same)}
    ineligible = {oi: rules for oi, rules in failed.items() if rules}
    fewest = min((len(rules) for rules in ineligible.values()), default=0)
    nearest = {r.instance.offers[oi].id: rules for oi, rules in ineligible.items() if len(rules) == fewest}
    nearest = dict(list(nearest.items())[:NEAREST_SHOWN])
    tries: list[_Try] = []
    other_family = cause != "no_eligible_offer"
    # The offers a change to the candidate could open, fewest failed rules first; a few are plenty.
    openable = [
        (len(rules), k, oi)
        for k, oi in enumerate(same.tolist())
        if (rules := failed[oi])
        and not FIXED_RULES & set(rules)
        and r.instance.offers[oi].status is OfferStatus.PUBLISHED
    ]
    for _, k, oi in sorted(openable)[: MAX_OPENABLE if with_tries else 0]:
        tries += _eligibility_tries(r, ci, oi, k, checks, failed[oi], other_family)
    return _Own(nearest, tries)


def _eligibility_tries(
    r: _Round, ci: int, oi: int, k: int, checks: PairChecks, rules: list[str], other_family: bool
) -> list[_Try]:
    fix = _candidate_fix(r, ci, oi, int(checks.costs.months[k]), [x for x in rules if x != "funding"])
    if fix is None:
        return []
    funders = _funders(checks, k, "funding" in rules)
    if funders is None:
        if "period_length" not in rules:
            return []
        # A shorter stay costs less and ends sooner: the funding may follow from the candidate's change alone.
        funders, rules = [], [x for x in rules if x != "funding"]
    fields, notes, size = fix
    base = (
        [Change(target="candidate", id=r.instance.candidates[ci].id, set=fields, note="; ".join(notes))]
        if fields
        else []
    )
    g = _gap(r, oi, int(checks.costs.months[k]), funders, order=(float(len(rules)), float(oi)))
    if "funding" in rules:
        base += _money_fix(r, g, 1) or []
    # Earlier proposals are kept: an offer the change opens must also have a slot, a seat and money to spare.
    changes = base + [c for c in _open_pair(r, g, 1) if c.target != "programme" or "funding" not in rules]
    if not changes:
        return []
    rank = (2 if other_family else 0, fact_count(changes), 1, size + _size(changes), *g.order)
    return [_Try(tuple(changes), rank)]


def _funders(checks: PairChecks, k: int, funding_failed: bool) -> list[_Funder] | None:
    """Programmes that may pay the pair; when none may, those a money change makes pay (None: no such one)."""
    prog = checks.programmes
    out = []
    for g in range(prog.grant.shape[1]):
        failed = {name for name, mask in prog.rules.items() if not mask[k, g]}
        if failed and (not funding_failed or not failed <= MONEY_RULES):
            continue
        grant, mark = int(prog.grant[k, g]), int(prog.earmark[k, g])
        out.append(_Funder(g, grant, mark, over_candidate_cap="programme_candidate_cap" in failed))
    return out or None


def _candidate_fix(
    r: _Round, ci: int, oi: int, months: int, rules: list[str]
) -> tuple[dict[str, Any], list[str], float] | None:
    """The candidate's new field values that pass these pair rules at the offer, notes, and a size; None if the
    candidate cannot pass one of them."""
    cand, offer = r.instance.candidates[ci], r.instance.offers[oi]
    start = offer.start.isoformat()
    fields: dict[str, Any] = {}
    ladder: dict[str, Any] = {}
    notes: list[str] = []
    size = 0.0
    for rule in rules:
        if rule == "language":
            fields["cefr"] = offer.min_cefr.value
            size += offer.min_cefr.rank - cand.cefr.rank
        elif rule == "language_proof":
            fields["language_proof"] = LanguageProof.TISUS.value
            notes.append("show an accepted language proof, e.g. Tisus")
            size += 1
        elif rule == "commute":
            t = r.prep.tables
            km = math.ceil(float(distance_km()[t.candidates.municipality[ci], t.offers.municipality[oi]]))
            fields["max_commute_km"] = km
            size += (km - cand.max_commute_km) / 10
        elif rule == "availability":
            size += _availability_fix(cand, offer, months, fields, notes)
        elif rule == "special_authorisation":
            ladder["special_authorisation"] = "applied"
            notes.append("apply for the special authorisation")
            size += 1
        elif rule in ("ladder_stage", "practical_test"):
            stage = offer.stage_needed() if rule == "ladder_stage" else Stage.PRACTICAL_TEST
            ladder[stage.value] = start
            if stage is Stage.PRACTICAL_TEST and (
                cand.ladder.theory_test is None or cand.ladder.theory_test > offer.start
            ):
                ladder["theory_test"] = start
            notes.append(f"{STAGE_TEXT[stage]} by {start}")
            size += 1
        elif rule == "period_length":
            share = _part_time_fix(cand, offer)
            if share is None:
                return None
            fields["part_time"] = share
            notes.append(f"work at least {share:.0%} of full time")
            size += (share - cand.part_time) * 10
        else:
            return None
    if ladder:
        fields["ladder"] = ladder
    return fields, notes, size


def _availability_fix(cand: Candidate, offer: Offer, months: int, fields: dict[str, Any], notes: list[str]) -> float:
    size = 0.0
    if cand.available_from > offer.start:
        fields["available_from"] = offer.start.isoformat()
        notes.append(f"be available from {offer.start.isoformat()}")
        size += (cand.available_from - offer.start).days / 30
    end = month_index(offer.start) + months - 1
    if end > last_full_month(cand.available_until):
        year, month = divmod(end, 12)
        until = date(year, month + 1, calendar.monthrange(year, month + 1)[1]).isoformat()
        fields["available_until"] = until
        notes.append(f"be available until {until}")
        size += end - last_full_month(cand.available_until)
    return size


def _part_time_fix(cand: Candidate, offer: Offer) -> float | None:
    """The smallest part-time share (in steps of 5 %) at which the PTJ fits in the offer's months."""
    base = cand.model_copy(update={"part_time": 1.0}).required_months()
    if base > offer.months:
        return None
    share = math.ceil(base / offer.months * 20 - 1e-9) / 20
    while math.ceil(base / share - 1e-9) > offer.months and share < 1.0:
        share = round(share + 0.05, 2)
    return max(share, cand.part_time)


# --- running the tries ------------------------------------------------------------------------------------------


def _todo(tries: list[_Try], max_tries: int) -> list[_Try]:
    """The distinct changes to try, smallest first, at most max_tries."""
    unique: dict[str, _Try] = {}
    for t in sorted(tries, key=lambda t: t.rank):
        unique.setdefault(_key(t), t)
    return list(unique.values())[:max_tries]


def _key(t: _Try) -> str:
    return "|".join(c.key() for c in t.changes) + (f"@{t.time_factor}" if t.time_factor != 1 else "")


def _resolve(r: _Round, t: _Try, limit: float) -> Solution | None:
    """Re-solve the round with the change, the round's proposals kept (so it never places fewer than the round);
    None when the change cannot be made (e.g. a capacity past its maximum).

    First CP-SAT on the changed instance with every proposal of the round fixed and only the unmatched candidates'
    pairs free, from the round's solution as a complete hint (a tenth of a full re-solve's time); its solution
    counts only when it passes `verify` on the changed instance. Otherwise, or for a solve for longer (time
    factor), the whole round is solved again with the proposals pinned.
    """
    try:
        changed = apply_changes(r.instance, t.changes)
    except InvalidInstance:
        return None
    limit = min(r.instance.policy.time_limit_s * t.time_factor, limit)
    if t.time_factor == 1:
        found = _part_solve(r, changed, limit)
        if found is not None:
            return found
    try:
        return solve(changed.with_policy(time_limit_s=max(limit, 0.01), pins=_pins(r, changed)))
    except InvalidInstance:
        return None  # the change broke a pin


def _part_solve(r: _Round, changed: Instance, seconds: float) -> Solution | None:
    """CP-SAT on the unmatched candidates' pairs of the changed instance, the round's proposals fixed: a verified
    solution, or None when the round's proposals do not carry over, the part was neither improved nor proven in
    time, or the result does not pass `verify`."""
    started = time.monotonic()
    prep = prepare(changed)
    kept = _round_picks(prep, r.solution)
    if kept is None:
        return None
    tiers = objective_tiers(prep)
    parts = Parts(build_spec(prep, tiers), tiers)
    left = np.array([prep.tables.candidates.index[c] for c in r.unmatched], dtype=np.int64)
    free = np.isin(prep.pairs.cand, left)
    policy = changed.policy
    part = parts.solve(
        free,
        parts.of(kept),
        tiers[0].values,
        max(0.01, seconds - (time.monotonic() - started)),
        later=[tier.values for tier in tiers[1:]],
        seed=policy.seed,
        deterministic=policy.deterministic,
    )
    if not part.improved:
        # Proven: no assignment places more (or scores higher) than the round's own, which places nobody new; that
        # is the answer and needs no new solution. Not proven in time: the full re-solve answers instead.
        return r.solution if part.proven else None
    picks = parts.picks(part.values)
    status = "OPTIMAL" if part.proven else "FEASIBLE"
    solution = build_solution(
        prep, picks, tier_report(prep, tiers, picks, status), "why_not_part", time.monotonic() - started
    )
    return None if verify(changed, solution) else solution


def _round_picks(prep: Prepared, solution: Solution) -> list[Pick] | None:
    """The round's assignments as picks of `prep` (pair, supervisor, funding row); None if one is not a pair."""
    t, pairs = prep.tables, prep.pairs
    fund_bounds = np.searchsorted(pairs.fund_pair, np.arange(len(pairs) + 1))
    programmes = {g.id: i for i, g in enumerate(prep.instance.programmes)}
    picks = []
    for a in solution.assignments:
        ci, oi = t.candidates.index[a.candidate_id], t.offers.index[a.offer_id]
        lo, hi = np.searchsorted(pairs.cand, [ci, ci + 1])
        at = [k for k in range(int(lo), int(hi)) if int(pairs.offer[k]) == oi]
        if not at:
            return None
        k = at[0]
        g = programmes[a.programme_id]
        prog = prep.instance.programmes[g]
        mark = next((i for i, e in enumerate(prog.earmarks) if e.id == a.earmark_id), -1)
        rows = [
            row
            for row in range(int(fund_bounds[k]), int(fund_bounds[k + 1]))
            if int(pairs.fund_programme[row]) == g and int(pairs.fund_earmark[row]) == mark
        ]
        if not rows:
            return None
        picks.append(Pick(pair=k, supervisor=t.supervisor_index[a.supervisor_id], fund_row=rows[0]))
    return picks


def _pins(r: _Round, changed: Instance) -> tuple[Pair, ...]:
    """The round's proposals as pins, with the coordinator's own pins (no pair twice)."""
    return tuple(dict.fromkeys([*changed.policy.pins, *r.keep]))


def _run(
    r: _Round, ci: int, tries: list[_Try], seconds: float, max_tries: int
) -> tuple[int, tuple[tuple[Change, ...], Solution] | None, str]:
    """Re-solve with each change, smallest first, until one places the candidate: (tries, found, note)."""
    cid = r.instance.candidates[ci].id
    todo = _todo(tries, max_tries)
    if seconds < MIN_TRY_SECONDS:
        return 0, None, "not computed: time budget used up"
    if not todo:
        return 0, None, NOTHING_TO_TRY
    started, tried = time.monotonic(), 0
    for n, t in enumerate(todo):
        left = seconds - (time.monotonic() - started)
        if left < MIN_TRY_SECONDS:
            if tried == 0:
                return 0, None, "not computed: time budget used up"
            return tried, None, f"time budget used up after {tried} tries; none placed this candidate"
        limit = left if t.time_factor > 1 else left / (len(todo) - n)
        solution = _resolve(r, t, limit)
        if solution is None:
            continue
        tried += 1
        if any(a.candidate_id == cid for a in solution.assignments):
            return tried, (t.changes, solution), _found_note(t)
    if len(todo) >= max_tries:
        return tried, None, f"no single change within {max_tries} tries placed this candidate"
    return tried, None, f"none of the {tried} changes tried placed this candidate"


def _found_note(t: _Try) -> str:
    if not t.changes:
        return "placed by solving the same input for twice as long"
    return "placed by re-solving the round with this change, the round's proposals kept"


# --- sizes, kinds and text --------------------------------------------------------------------------------------


def _sek(value: Any) -> int:
    if isinstance(value, dict):
        return sum(int(v or 0) for v in value.values())
    return int(value)


def _family(change: Change) -> str:
    return (
        "money" if change.target == "programme" else "capacity" if change.target in ("offer", "supervisor") else "own"
    )


def _size(changes: Sequence[Change]) -> float:
    """Money in SEK, capacity in seats; a candidate's own change is sized where it is made."""
    total = 0.0
    for c in changes:
        if c.target == "programme":
            total += sum(_sek(v) for v in c.set.values())
        elif c.target in ("offer", "supervisor"):
            total += 1
    return total


def _kind(changes: Sequence[Change], r: _Round) -> str:
    """A label for counting changes across candidates, e.g. 'one more supervisor seat at unit U3'."""
    if not changes:
        return "solve longer (no input change)"
    parts = []
    for c in changes:
        if c.target == "supervisor":
            s = r.supervisors[c.id]
            n = int(c.set["capacity"]) - s.capacity
            parts.append(f"{_count(n)} more supervisor seat{'s' if n > 1 else ''} at unit {s.unit_id}")
        elif c.target == "offer" and set(c.set) == {"slots"}:
            n = int(c.set["slots"]) - r.offers[c.id].slots
            parts.append(f"{_count(n)} more slot{'s' if n > 1 else ''} at offer {c.id}")
        elif c.target == "programme":
            parts += [_PROGRAMME_KIND.get(f, f"a new {f}") + f" in programme {c.id}" for f in c.set]
        else:
            parts.append(f"{c.target} change: {', '.join(_leaves(c.set))}")
    return " + ".join(parts)


def _leaves(values: dict[str, Any]) -> list[str]:
    """Field names, nested ones as 'ladder.practical_test'."""
    out = []
    for name, value in values.items():
        out += [f"{name}.{key}" for key in value] if isinstance(value, dict) else [name]
    return out


_PROGRAMME_KIND = {
    "budget": "more budget",
    "unit_caps": "a higher unit cap",
    "candidate_cap": "a higher candidate cap",
}


def _count(n: int) -> str:
    return {1: "one", 2: "two", 3: "three"}.get(n, str(n))


def _nearest_detail(r: _Round, ci: int, nearest: dict[str, list[str]]) -> str:
    if not nearest:
        return f"no offer of the candidate's profession ({r.instance.candidates[ci].profession.value})"
    shown = "; ".join(f"{oid} fails {', '.join(rules)}" for oid, rules in nearest.items())
    return f"no offer passes every rule; nearest: {shown}"


def _capacity_detail(gaps: list[_Gap]) -> str:
    parts = []
    for g in gaps:
        if g.full:
            parts.append(f"offer {g.offer.id} has all {g.offer.slots} slot(s) taken")
        elif g.busy:
            seats = ", ".join(f"{s.id} (unit {s.unit_id})" for s in g.busy)
            parts.append(f"offer {g.offer.id}: supervisor {seats} has no free seat")
    return "every eligible offer is out of room: " + "; ".join(parts) if parts else ""


def _money_detail(shorts: list[MoneyShort]) -> str:
    parts = []
    for m in shorts:
        what = f"programme {m.programme_id}" + (f" cap for unit {m.unit_id}" if m.limit == "unit_cap" else "")
        parts.append(f"{what} has {m.left:,} SEK left; offer {m.offer_id} needs {m.needed:,} SEK")
    return "; ".join(parts)


# --- summary ----------------------------------------------------------------------------------------------------


def summarise(results: list[WhyNot]) -> WhyNotSummary:
    """Counts per cause, the most common changes, how many were verified, placed by nothing tried, or not computed."""
    causes = Counter(w.cause for w in results)
    kinds: dict[str, list[str]] = {}
    for w in results:
        if w.verified and w.change_kind is not None:
            kinds.setdefault(w.change_kind, []).append(w.candidate_id)
    changes = [
        ChangeCount(kind=kind, candidates=len(ids), candidate_ids=ids)
        for kind, ids in sorted(kinds.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return WhyNotSummary(
        total=len(results),
        causes=dict(causes.most_common()),
        changes=changes,
        verified=sum(w.verified for w in results),
        not_placed=sum(1 for w in results if w.computed and not w.verified),
        not_computed=sum(1 for w in results if not w.computed),
    )
