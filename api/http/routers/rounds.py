"""Matching rounds: start (idempotent), progress, cancel, re-run with pins and forbids, publish, proposals,
answers and explanations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from api.core import logs, rounds
from api.core.job_store import round_job
from api.core.round_views import region_view, round_summaries, round_view
from api.core.schemas import (
    CandidateExplanation,
    Decline,
    Page,
    ProposalRead,
    RoundExplanation,
    RoundRead,
    RoundSummary,
)
from api.core.services import count_rows, page_of, region_for
from api.http import idempotency
from api.http.deps import ClinicOrAdmin, CoordinatorOrAdmin, Offset, RowId, SessionDep, SettingsDep, SubjectDep
from api.http.errors import problem_responses
from api.jobs import job_url
from matching.input.instance import Instance
from models import MatchRound, Proposal, Region
from models.queries import proposals_readable_by, rounds_readable_by

router = APIRouter(prefix="/regions/{region}/rounds", tags=["rounds"])
ERRORS = problem_responses(400, 401, 403, 404, 409, 422)


def _start(
    request: Request,
    session: Any,
    subject: Any,
    settings: Any,
    reg: Region,
    body: rounds.RoundCreate,
    key: str | None,
    previous: int | None,
) -> JSONResponse:
    endpoint = f"{request.url.path}"
    digest = idempotency.body_hash(body.model_dump(mode="json"))
    stored = idempotency.lookup(session, subject.user_id, key, endpoint, digest, settings.idempotency_ttl_h)
    if stored is not None:
        return JSONResponse(stored.response, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})
    row = rounds.create_round(session, subject, reg, body, settings, previous, logs.request_id.get())
    job = round_job(session, row.id)
    assert job is not None
    view = jsonable_encoder({**region_view(session, row, reg), "job_id": job.id})
    assert key is not None
    idempotency.remember(session, subject.user_id, key, endpoint, digest, 202, view)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # the same key raced in from another request: answer as it did
        stored = idempotency.lookup(session, subject.user_id, key, endpoint, digest, settings.idempotency_ttl_h)
        assert stored is not None
        return JSONResponse(stored.response, status_code=stored.status_code)
    wake(request)
    return JSONResponse(view, status_code=202, headers={"Location": job_url(job.id)})


def wake(request: Request) -> None:
    """Tell the service's own job pool (SQLite) that a job is waiting, rather than let it find out at its next look."""
    workers = request.app.state.workers
    if workers is not None and hasattr(workers, "wake"):
        workers.wake.set()


def _view(session: Any, row: MatchRound, region: Region) -> dict[str, Any]:
    """The whole round (coordinators, admins) with the id of the job that solves it."""
    job = round_job(session, row.id)
    return {**region_view(session, row, region), "job_id": job.id if job else None}


@router.post("", status_code=202, response_model=RoundRead, responses=ERRORS)
def start_round(
    region: str,
    body: rounds.RoundCreate,
    request: Request,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Start a round: snapshot the region's inputs and queue the job that solves them (needs Idempotency-Key).

    The answer is the round (`queued`) and, in `Location`, its job's URL. A region's rounds solve one at a time, in
    the order they were started."""
    reg = region_for(session, subject, region)
    return _start(request, session, subject, settings, reg, body, idempotency_key, None)


@router.get("", response_model=Page[RoundSummary], responses=ERRORS)
def list_rounds(
    region: str,
    session: SessionDep,
    subject: SubjectDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> Any:
    """Rounds of the region you may see, newest first, as summaries (the full round is at `.../rounds/{id}`)."""
    reg = region_for(session, subject, region)
    statement = rounds_readable_by(subject).where(MatchRound.region_id == reg.id)
    if status:
        statement = statement.where(MatchRound.status == status)
    rows = session.scalars(statement.order_by(MatchRound.id.desc()).limit(limit).offset(offset))
    items = round_summaries(session, subject, rows, reg)
    return {"items": items, "total": count_rows(session, statement), "limit": limit, "offset": offset}


@router.get("/{round_id}", response_model=RoundRead, responses=ERRORS)
def get_round(region: str, round_id: RowId, session: SessionDep, subject: SubjectDep) -> Any:
    """A round with its status, progress (objective, bound, gap, elapsed) and result summary; a clinic user sees only
    what concerns its own unit."""
    reg = region_for(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id)
    view = round_view(session, subject, row, reg)
    return _view(session, row, reg) if view["view"] == "region" else view


@router.get("/{round_id}/snapshot", response_model=Instance, responses=ERRORS)
def get_snapshot(region: str, round_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """The round's frozen engine input (an Instance; opaque ids only)."""
    reg = region_for(session, subject, region)
    return Instance.model_validate_json(rounds.get_round(session, subject, reg, round_id).snapshot)


@router.post("/{round_id}/cancel", response_model=RoundRead, responses=ERRORS)
def cancel_round(
    region: str, round_id: RowId, request: Request, session: SessionDep, subject: CoordinatorOrAdmin
) -> Any:
    """Cancel a queued or solving round (and its job); nothing it computed is kept."""
    reg = region_for(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id, write=True)
    rounds.cancel(session, subject, row)
    session.flush()
    session.refresh(row)
    return _view(session, row, reg)


@router.post("/{round_id}/rerun", status_code=202, response_model=RoundRead, responses=ERRORS)
def rerun_round(
    region: str,
    round_id: RowId,
    body: rounds.Rerun,
    request: Request,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Start a new round from this one's policy with pins and forbids added (declines are forbidden anyway).

    With minimal_disruption (the default) the new round keeps as many of this round's proposals as it can: only
    those that must change (declined, withdrawn offer, budget cut, new pins or forbids) change. The new round's
    `/diff` lists who kept their place, moved, was added or lost a place, and why.
    """
    reg = region_for(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id, write=True)
    earlier = rounds.RoundCreate.model_validate(row.request)
    unpin = {(p.candidate_id, p.offer_id) for p in body.unpin}
    pins = {p.candidate_id: p for p in earlier.pins if (p.candidate_id, p.offer_id) not in unpin}
    pins.update({p.candidate_id: p for p in body.pins})
    forbids = {(p.candidate_id, p.offer_id): p for p in [*earlier.forbids, *body.forbids]}
    for cid, pin in list(pins.items()):
        if (cid, pin.offer_id) in forbids:
            del pins[cid]
    keep = rounds.standing_proposals(session, row) if body.minimal_disruption else []
    new = earlier.model_copy(
        update={
            "pins": list(pins.values()),
            "forbids": list(forbids.values()),
            "keep": [p for p in keep if (p.candidate_id, p.offer_id) not in forbids],
            "time_limit_s": body.time_limit_s or earlier.time_limit_s,
            "round_date": row.round_date,
        }
    )
    return _start(request, session, subject, settings, reg, new, idempotency_key, row.id)


@router.post("/{round_id}/publish", response_model=RoundRead, responses=ERRORS)
def publish_round(region: str, round_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Verify and publish a solved round: its proposals go to the clinics (the previous published round closes)."""
    reg = region_for(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id, write=True)
    rounds.publish(session, subject, row)
    session.flush()
    session.refresh(row)
    return _view(session, row, reg)


@router.get("/{round_id}/proposals", response_model=Page[ProposalRead], responses=ERRORS)
def list_proposals(
    region: str,
    round_id: RowId,
    session: SessionDep,
    subject: SubjectDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Offset = 0,
    answer: Annotated[str | None, Query(pattern="^(pending|accepted|declined)$")] = None,
) -> Any:
    """Proposals of the round: clinics see only their own unit's, and only once published."""
    reg = region_for(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id)
    statement = proposals_readable_by(subject).where(Proposal.round_id == row.id)
    if answer:
        statement = statement.where(Proposal.answer == answer)
    return page_of(session, statement, Proposal.id, limit, offset, ProposalRead.model_validate)


def _answer(
    region: str, round_id: int, proposal_id: int, session: Any, subject: Any, accept: bool, reason: str | None = None
) -> Any:
    reg = region_for(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id)
    return ProposalRead.model_validate(rounds.answer(session, subject, row, proposal_id, accept, reason))


@router.post("/{round_id}/proposals/{proposal_id}/accept", response_model=ProposalRead, responses=ERRORS)
def accept_proposal(
    region: str, round_id: RowId, proposal_id: RowId, session: SessionDep, subject: ClinicOrAdmin
) -> Any:
    """Accept a proposal for your unit: the candidate is placed and the offer loses a slot."""
    return _answer(region, round_id, proposal_id, session, subject, True)


@router.post("/{round_id}/proposals/{proposal_id}/decline", response_model=ProposalRead, responses=ERRORS)
def decline_proposal(
    region: str,
    round_id: RowId,
    proposal_id: RowId,
    session: SessionDep,
    subject: ClinicOrAdmin,
    body: Annotated[Decline | None, Body()] = None,
) -> Any:
    """Decline a proposal for your unit, optionally with a reason (`{"reason": "no_supervisor"}`: a code, shown to
    the coordinator); the pair is forbidden in later rounds."""
    return _answer(region, round_id, proposal_id, session, subject, False, body.reason if body else None)


@router.get("/{round_id}/explanation", response_model=RoundExplanation, responses=ERRORS)
def explain_round(region: str, round_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Money per programme and unit against budgets and caps, matches per profession, reasons for the unmatched."""
    reg = region_for(session, subject, region)
    return rounds.round_explanation(session, rounds.get_round(session, subject, reg, round_id))


@router.get("/{round_id}/candidates/{ref}/explanation", response_model=CandidateExplanation, responses=ERRORS)
def explain_candidate(region: str, round_id: RowId, ref: str, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """For one candidate: eligible offers, excluded offers with the rules, the match's score or why unmatched."""
    reg = region_for(session, subject, region)
    return rounds.candidate_explanation(session, rounds.get_round(session, subject, reg, round_id), ref)
