"""Personal data through its life: delete what was entered by mistake, withdraw, erase on request, access requests
(GDPR art. 15) and the region's retention periods."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.core import privacy, removal, services
from api.core.access_request import access_request, render_html
from api.core.audit import audit
from api.core.errors import NotFound
from api.core.snapshot import KINDS, Kind
from api.http.deps import CoordinatorOrAdmin, SessionDep, SubjectDep
from api.http.errors import problem_responses
from models import Candidate, Region, RetentionPolicy
from models.queries import Subject, candidates_writable_by

router = APIRouter(tags=["privacy"])
ERRORS = problem_responses(401, 403, 404, 409, 422)
# Pages with personal data are never cached on the way.
PRIVATE = {"Cache-Control": "no-store"}


class Removed(BaseModel):
    """What a delete did: `deleted` (gone) or `archived` (kept for the rounds and commitments that name it)."""

    id: str
    kind: str
    outcome: Literal["deleted", "archived"]
    reasons: list[str] = Field(description="why it was archived rather than deleted")
    still_named_by: list[str] = Field(description="live objects that name it; new rounds leave those references out")


class ErasureRequest(BaseModel):
    """Why a candidate's identity is erased (audited; their own name and number are removed from it)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class ErasureRead(BaseModel):
    """What an erasure changed (counts and field names, never values)."""

    candidate_id: str
    erased_at: datetime
    identity_removed: bool
    fields_cleared: list[str]
    commitment_notes_cleared: int
    rounds_redacted: int
    stored_responses_redacted: int


class RetentionRead(BaseModel):
    """A region's retention periods, in months."""

    model_config = ConfigDict(extra="forbid")

    placed_months: int = Field(ge=0, le=600, description="after a placement ended")
    withdrawn_months: int = Field(ge=0, le=600, description="after the candidate withdrew or was archived")
    inactive_months: int = Field(ge=0, le=600, description="after the last activity of a waiting candidate")


def _candidate(session: Any, subject: Subject, region: Region, ref: str) -> Candidate:
    """A candidate of the region the subject may change, archived or not (404 otherwise)."""
    row = session.scalar(candidates_writable_by(subject).where(Candidate.region_id == region.id, Candidate.ref == ref))
    if row is None:
        raise NotFound(f"candidate {ref} not found in region {region.code}")
    return row


def _delete_route(kind: Kind) -> None:
    singular = kind.name[:-1]

    def delete(region: str, ref: str, session: SessionDep, subject: SubjectDep) -> Any:
        reg = services.region_for(session, subject, region)
        row = services.get_object(session, kind, subject, reg, ref, write=True)
        return removal.remove(session, kind, subject, reg, row)

    delete.__doc__ = (
        f"Delete a {singular} entered by mistake; one that a stored round or a commitment names is archived instead "
        "(the answer says which)."
    )
    router.add_api_route(
        f"/regions/{{region}}/{kind.name}/{{ref}}",
        delete,
        methods=["DELETE"],
        response_model=Removed,
        responses=ERRORS,
        operation_id=f"delete_{singular}",
        tags=[kind.name],
    )


for _kind in KINDS.values():
    _delete_route(_kind)


@router.post("/regions/{region}/candidates/{ref}/erase", response_model=ErasureRead, responses=ERRORS)
def erase_candidate(
    region: str, ref: str, body: ErasureRequest, session: SessionDep, subject: CoordinatorOrAdmin
) -> Any:
    """Erase a candidate's identity and identifying free text on request; the ref and the rounds stay consistent."""
    reg = services.region_for(session, subject, region)
    return asdict(privacy.erase(session, subject, reg, _candidate(session, subject, reg, ref), body.reason))


@router.post("/regions/{region}/candidates/{ref}/withdraw", responses=ERRORS)
def withdraw_candidate(region: str, ref: str, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """The candidate left the queue: no later round considers them; retention counts from now."""
    reg = services.region_for(session, subject, region)
    row = privacy.withdraw(session, subject, reg, _candidate(session, subject, reg, ref))
    return {"id": row.ref, "status": row.status, "withdrawn_at": row.withdrawn_at}


@router.get("/regions/{region}/candidates/{ref}/access-request", responses=ERRORS)
def candidate_access_request(
    region: str,
    ref: str,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    format: Annotated[Literal["json", "html"], Query(description="json, or a readable html page")] = "json",
    lang: Annotated[Literal["sv", "en"], Query()] = "sv",
) -> Any:
    """Everything held about one candidate (GDPR art. 15), identity in full; audited as a read of identity."""
    reg = services.region_for(session, subject, region)
    row = _candidate(session, subject, reg, ref)
    doc = access_request(session, reg, row)
    audit(session, subject, "identity.read", "candidate", row.ref, reg.id, revealed=True, purpose="access request")
    if format == "html":
        return HTMLResponse(render_html(doc, lang), headers=PRIVATE)
    return JSONResponse(doc, headers=PRIVATE)


@router.get("/regions/{region}/retention", response_model=RetentionRead, responses=ERRORS)
def get_retention(region: str, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """How long the region keeps identities of candidates who were placed, withdrew or went inactive."""
    reg = services.region_for(session, subject, region)
    return privacy.policy_of(session, reg.id)


@router.put("/regions/{region}/retention", response_model=RetentionRead, responses=ERRORS)
def set_retention(region: str, body: RetentionRead, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Set the region's retention periods; `vardmatch retention` anonymises what is past them."""
    reg = services.region_for(session, subject, region)
    row = session.get(RetentionPolicy, reg.id) or RetentionPolicy(region_id=reg.id)
    for name, value in body.model_dump().items():
        setattr(row, name, value)
    row.updated_by = subject.user_id
    session.add(row)
    session.flush()
    audit(session, subject, "retention.update", "region", reg.code, reg.id, **body.model_dump())
    return privacy.policy_of(session, reg.id)


@router.get("/regions/{region}/retention/preview", responses=ERRORS)
def preview_retention(
    region: str,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    on: Annotated[date | None, Query(description="the day to judge on (default: today)")] = None,
) -> Any:
    """What retention would anonymise on that day, and why each other candidate is kept (changes nothing)."""
    reg = services.region_for(session, subject, region)
    found = privacy.verdicts(session, reg, on or date.today())
    return {
        "region": reg.code,
        "on": on or date.today(),
        "policy": privacy.policy_of(session, reg.id),
        "due": [{"candidate_id": v.candidate_id, "why": v.note} for v in found if v.due],
        "kept": [{"candidate_id": v.candidate_id, "why": v.note} for v in found if not v.due],
    }
