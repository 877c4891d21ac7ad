"""What changed between two rounds' results: who kept their place, who moved, who was added, who lost a place,
and why (a withdrawn offer, a declined pair, a rule, or the new round's reason for leaving them out)."""

from __future__ import annotations

from typing import Literal

from matching.input.instance import Instance, OfferStatus
from matching.model.solution import Out, Solution, Unmatched
from matching.rules.eligibility import explain_candidate
from matching.rules.tables import Tables, build_tables

Change = Literal["kept", "moved", "added", "lost"]


class Move(Out):
    """One candidate whose place changed (or was kept)."""

    candidate_id: str
    change: Change
    before: str | None  # offer id in the earlier round
    after: str | None  # offer id in the new round
    why: str = ""


class RoundDiff(Out):
    """The changes from one round's result to the next."""

    kept: int
    moved: list[Move]
    added: list[Move]
    lost: list[Move]
    summary: str


def round_diff(before: Solution, after_instance: Instance, after: Solution) -> RoundDiff:
    """Compare an earlier result with a new one on the new round's input."""
    old = {a.candidate_id: a.offer_id for a in before.assignments}
    new = {a.candidate_id: a.offer_id for a in after.assignments}
    reasons = {u.candidate_id: u.detail for u in after.unmatched}
    tables = build_tables(after_instance)  # once: each reason may check a pair's rules
    kept = sum(1 for c, o in old.items() if new.get(c) == o)
    moved = [
        Move(
            candidate_id=c, change="moved", before=o, after=new[c], why=_why_moved(after_instance, tables, c, o, new[c])
        )
        for c, o in sorted(old.items())
        if c in new and new[c] != o
    ]
    earlier = {u.candidate_id: u for u in before.unmatched}
    pins = {p.candidate_id: p.offer_id for p in after_instance.policy.pins}
    added = [
        Move(candidate_id=c, change="added", before=None, after=o, why=_why_added(o, pins.get(c), earlier.get(c)))
        for c, o in sorted(new.items())
        if c not in old
    ]
    lost = []
    for c, o in sorted(old.items()):
        if c not in new:
            why = _why_gone(after_instance, tables, c, o)
            if c in reasons:
                why = f"{why}; {reasons[c]}"
            lost.append(Move(candidate_id=c, change="lost", before=o, after=None, why=why))
    summary = f"{kept} kept their place, {len(moved)} moved, {len(added)} added, {len(lost)} lost a place"
    return RoundDiff(kept=kept, moved=moved, added=added, lost=lost, summary=summary)


def _why_gone(instance: Instance, tables: Tables, candidate_id: str, offer_id: str) -> str:
    """Why the earlier pair is not in the new result: gone from the input, forbidden, ineligible, or outbid."""
    if candidate_id not in tables.candidates.index:
        return "no longer waiting in this round (placed, withdrawn or removed)"
    if offer_id not in tables.offers.index:
        return f"offer {offer_id} is no longer in the round"
    offer = instance.offers[tables.offers.index[offer_id]]
    if offer.status is not OfferStatus.PUBLISHED:
        return f"offer {offer_id} is {OfferStatus(offer.status).value}"
    if any(p.candidate_id == candidate_id and p.offer_id == offer_id for p in instance.policy.forbids):
        return f"the pair with offer {offer_id} was declined or forbidden"
    verdict = next(v for v in explain_candidate(instance, candidate_id, tables) if v.offer_id == offer_id)
    if verdict.failed_rules:
        return f"offer {offer_id} now breaks: {', '.join(verdict.failed_rules)}"
    return f"offer {offer_id} is still open to them, but the new round needed it otherwise"


def _why_moved(instance: Instance, tables: Tables, candidate_id: str, before: str, after: str) -> str:
    """Why a candidate has another offer now: pinned there, or why the earlier one is gone."""
    if any(p.candidate_id == candidate_id and p.offer_id == after for p in instance.policy.pins):
        return f"pinned to {after}"
    return _why_gone(instance, tables, candidate_id, before)


def _why_added(offer_id: str, pinned_to: str | None, earlier: Unmatched | None) -> str:
    """Why a candidate has a place now and had none before: a pin, or what left them out earlier."""
    if pinned_to == offer_id:
        return f"pinned to {offer_id}"
    if earlier is None:
        return f"placed at {offer_id}; not in the earlier round"
    return f"placed at {offer_id}; before: {earlier.reason}: {earlier.detail}"
