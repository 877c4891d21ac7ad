"""Deleting what was entered by mistake.

An object that no stored round, proposal, commitment or user names is destroyed (a candidate with its identity).
One that is named is archived instead: it stays for the rounds that name it, so every stored round still reproduces,
but it leaves lists, edits and every new round (an archived offer is also withdrawn). The answer says which happened
and why. A unit that still has supervisors or offers, and a unit or programme that commitments still hold money on,
cannot be removed (409): their money and seats must keep counting.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.core.audit import audit
from api.core.commitments import lock_region, snapshot_commitments
from api.core.errors import Conflict
from api.core.snapshot import CANDIDATES, OFFERS, PROGRAMMES, SUPERVISORS, UNITS, Kind
from models import (
    Candidate,
    CandidateIdentity,
    Commitment,
    MatchRound,
    Offer,
    Proposal,
    Region,
    Supervisor,
    User,
)
from models.base import utcnow
from models.queries import Subject


def rounds_naming(session: Session, kind: Kind, region_id: int, ref: str) -> list[int]:
    """Ids of the region's stored rounds whose snapshot holds the object."""
    needle = json.dumps({"id": ref}, separators=(",", ":"))[1:-1]  # "id":"REF" as the snapshot writes it
    rows = session.execute(
        select(MatchRound.id, MatchRound.snapshot)
        .where(MatchRound.region_id == region_id, MatchRound.snapshot.contains(needle, autoescape=True))
        .order_by(MatchRound.id)
    )
    return [rid for rid, text in rows if any(o.get("id") == ref for o in json.loads(text).get(kind.name, []))]


def _foreign_keys(session: Session, kind: Kind, row: Any) -> list[str]:
    """Rows that point at this one by foreign key (they would break if it were destroyed)."""
    found = []
    columns = {
        CANDIDATES: (
            (Proposal, Proposal.candidate_id, "proposals"),
            (Commitment, Commitment.candidate_id, "commitments"),
        ),
        OFFERS: ((Proposal, Proposal.offer_id, "proposals"), (Commitment, Commitment.offer_id, "commitments")),
        UNITS: (
            (Proposal, Proposal.unit_id, "proposals"),
            (Commitment, Commitment.unit_id, "commitments"),
            (User, User.unit_id, "clinic users"),
            (Supervisor, Supervisor.unit_id, "archived supervisors"),
            (Offer, Offer.unit_id, "archived offers"),
        ),
    }.get(kind, ())
    for table, column, what in columns:
        if session.scalar(select(table.id).where(column == row.id).limit(1)) is not None:  # type: ignore[attr-defined]
            found.append(what)
    by_ref = {SUPERVISORS: Commitment.supervisor_ref, PROGRAMMES: Commitment.programme_ref}.get(kind)
    if by_ref is not None:
        named = select(Commitment.id).where(Commitment.region_id == row.region_id, by_ref == row.ref).limit(1)
        if session.scalar(named) is not None:
            found.append("commitments")
    return found


def keep_reasons(session: Session, kind: Kind, row: Any) -> list[str]:
    """Why the object must be kept (archived) rather than destroyed; empty if nothing names it."""
    reasons = []
    rounds = rounds_naming(session, kind, row.region_id, row.ref)
    if rounds:
        reasons.append(f"named by stored round(s) {', '.join(map(str, rounds[:20]))}")
    reasons += [f"named by {what}" for what in _foreign_keys(session, kind, row)]
    return reasons


def _refuse_blocked(session: Session, kind: Kind, row: Any) -> None:
    """409 for a unit that still has live supervisors or offers, and for a unit or programme that commitments
    still hold money or seats on."""
    if kind is UNITS:
        live = [
            f"{name} {ref}"
            for table, name in ((Supervisor, "supervisor"), (Offer, "offer"))
            for ref in session.scalars(
                select(table.ref).where(table.unit_id == row.id, table.archived_at.is_(None)).order_by(table.id)
            )
        ]
        if live:
            raise Conflict(
                f"unit {row.ref} still has {len(live)} supervisor(s) or offer(s): delete them first ({live[0]}, ...)",
                slug="has-dependents",
                dependents=live,
            )
    field = {UNITS: "unit_id", PROGRAMMES: "programme_id"}.get(kind)
    if field is None:
        return
    holding = [c.id for c in snapshot_commitments(session, row.region_id) if getattr(c, field) == row.ref]
    if holding:
        raise Conflict(
            f"{kind.name[:-1]} {row.ref} is held by {len(holding)} commitment(s) ({holding[0]}, ...): their money "
            "counts in every later round; record their follow-up, or close a programme instead",
            slug="held-by-commitments",
            commitments=holding,
        )


def named_by(session: Session, kind: Kind, row: Any) -> list[str]:
    """Live objects that still name this one (new rounds leave those references out)."""
    fields = {SUPERVISORS: ((Offer, "supervisor_ids"),), OFFERS: ((Candidate, "wishes"),)}.get(kind, ())
    fields += {UNITS: ((Candidate, "wishes"),), CANDIDATES: ((Offer, "clinic_ranking"),)}.get(kind, ())
    found = []
    for table, field in fields:
        rows = session.scalars(
            select(table).where(table.region_id == row.region_id, table.archived_at.is_(None)).order_by(table.id)
        )
        found += [
            f"{table.__tablename__} {other.ref} ({field})" for other in rows if row.ref in other.data.get(field, [])
        ]
    return found


def remove(session: Session, kind: Kind, subject: Subject, region: Region, row: Any) -> dict[str, Any]:
    """Destroy the object, or archive it if anything stored names it; audited either way."""
    lock_region(session, region.id)
    _refuse_blocked(session, kind, row)
    reasons = keep_reasons(session, kind, row)
    referrers = named_by(session, kind, row)
    singular, ref = kind.name[:-1], row.ref
    if reasons:
        row.archived_at = utcnow()
        row.version += 1
        if kind is OFFERS:
            row.status = "withdrawn"
            row.data = {**row.data, "status": "withdrawn"}
        outcome = "archived"
    else:
        if kind is CANDIDATES:
            session.execute(delete(CandidateIdentity).where(CandidateIdentity.candidate_id == row.id))
        session.delete(row)
        outcome = "deleted"
    session.flush()
    audit(session, subject, f"{singular}.{outcome[:-1]}", singular, ref, region.id, reasons=reasons)
    return {"id": ref, "kind": singular, "outcome": outcome, "reasons": reasons, "still_named_by": referrers}


def refuse_archived(session: Session, proposal: Proposal) -> None:
    """409 `archived` when a proposal's candidate or offer was archived after its round was solved."""
    for table, row_id, what in ((Candidate, proposal.candidate_id, "candidate"), (Offer, proposal.offer_id, "offer")):
        if session.scalar(select(table.archived_at).where(table.id == row_id)) is not None:
            raise Conflict(f"the proposal's {what} was deleted (archived) since; decline it", slug="archived")
