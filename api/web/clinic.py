"""A unit's page (a clinic's home): the proposals for the unit with what supervision needs to know (never who the
candidate is), accept or decline with a reason; the unit's offers and supervisors (publish, withdraw; their forms are in
api/web/objects.py). Every read and write is the API's service call with the page user's subject."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core import rounds, services
from api.core.errors import Forbidden, Unprocessable
from api.core.snapshot import CANDIDATES, OFFERS, SUPERVISORS, UNITS, Kind
from api.http.deps import RowId, SessionDep
from api.web.pages import page
from api.web.render import WebRoute, redirect
from api.web.session import Csrf, WebSubject
from models import Candidate, MatchRound, Proposal, Region, Role, Unit
from models.queries import Subject, candidates_readable_by, proposals_readable_by
from models.rounds import RoundStatus

router = APIRouter(route_class=WebRoute)
EDITABLE = {"offers": OFFERS, "supervisors": SUPERVISORS}


def unit_proposals(session: Session, subject: Subject, region: Region, unit: Unit) -> list[dict[str, Any]]:
    """The published proposals for the unit, each with the candidate as the API shows them to this subject."""
    statement = (
        proposals_readable_by(subject)
        .where(Proposal.unit_id == unit.id, MatchRound.region_id == region.id)
        .where(MatchRound.status == RoundStatus.PUBLISHED)
        .order_by(Proposal.id)
    )
    proposals: list[Proposal] = list(session.scalars(statement))
    ids = [p.candidate_id for p in proposals]
    candidates: list[Candidate] = list(session.scalars(candidates_readable_by(subject).where(Candidate.id.in_(ids))))
    visible = {c.id: services.read_view(CANDIDATES, subject, region, c) for c in candidates}
    return [{"proposal": p, "candidate": visible.get(p.candidate_id)} for p in proposals]


def _objects(session: Session, kind: Kind, subject: Subject, region: Region, unit: Unit) -> list[dict[str, Any]]:
    table: Any = kind.table
    rows = session.scalars(services.scoped(kind, subject, region).where(table.unit_id == unit.id).order_by(table.ref))
    return [services.read_view(kind, subject, region, r) for r in rows]


@router.get("/regions/{region}/units/{ref}")
def unit_page(request: Request, region: str, ref: str, session: SessionDep, subject: WebSubject) -> Response:
    """The unit's proposals, offers and supervisors (a clinic sees only its own unit: others are 404, as in the API)."""
    reg = services.region_for(session, subject, region)
    unit = services.get_object(session, UNITS, subject, reg, ref)
    return page(
        request,
        "unit.html",
        region=reg.code,
        reg=reg,
        unit=unit,
        proposals=unit_proposals(session, subject, reg, unit),
        offers=_objects(session, OFFERS, subject, reg, unit),
        supervisors=_objects(session, SUPERVISORS, subject, reg, unit),
        reasons=rounds.DECLINE_REASONS,
        may_edit=subject.role is not Role.CLINIC or subject.unit_id == unit.id,
        may_edit_unit=subject.role is not Role.CLINIC,
    )


def _unit_ref_of(session: Session, proposal_unit: int) -> str:
    unit = session.get(Unit, proposal_unit)
    return unit.ref if unit else ""


@router.post("/regions/{region}/rounds/{round_id}/proposals/{proposal_id}/answer", dependencies=[Csrf])
def answer_proposal(
    region: str,
    round_id: RowId,
    proposal_id: RowId,
    session: SessionDep,
    subject: WebSubject,
    decision: Annotated[str, Form(pattern="^(accept|decline)$")],
    reason: Annotated[str, Form(max_length=32)] = "",
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Accept or decline a proposal (the API's answer, with its refusals); a decline needs a reason from the list."""
    reg = services.region_for(session, subject, region)
    if subject.role is Role.COORDINATOR:
        raise Forbidden("this needs the role admin or clinic")
    row = rounds.get_round(session, subject, reg, round_id)
    accept = decision == "accept"
    if not accept and reason not in rounds.DECLINE_REASONS:
        raise Unprocessable(
            "1 invalid field(s)", errors=[{"field": "reason", "message": "choose a reason", "type": "reason"}]
        )
    proposal = rounds.answer(session, subject, row, proposal_id, accept, None if accept else reason)
    target = back if back.startswith(f"/regions/{reg.code}/") else f"/regions/{reg.code}/units/"
    if target.endswith("/units/"):
        target += _unit_ref_of(session, proposal.unit_id)
    return redirect(target + "#proposals")


@router.post("/regions/{region}/offers/{ref}/status", dependencies=[Csrf])
def offer_status(
    region: str,
    ref: str,
    session: SessionDep,
    subject: WebSubject,
    status: Annotated[str, Form(pattern="^(published|withdrawn)$")],
) -> Response:
    """Publish or withdraw an offer (the API's service)."""
    reg = services.region_for(session, subject, region)
    row = services.get_object(session, OFFERS, subject, reg, ref, write=True)
    services.set_offer_status(session, subject, reg, row, status)
    unit_ref = session.scalar(select(Unit.ref).where(Unit.id == row.unit_id))
    return redirect(f"/regions/{reg.code}/units/{unit_ref}#offers")
