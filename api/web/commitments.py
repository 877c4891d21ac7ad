"""Accepted placements (commitments): the coordinator's follow-up of each (started, completed, interrupted with its
last month, never started) and the amount paid, and a unit's own commitments page for its clinic. Reads and writes
are the API's (`GET .../commitments`, `POST .../commitments/{id}/follow-up`): the same scoping, transitions and
limits, and the money and supervisor months released go back to later rounds at once."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.core import commitments, services
from api.core.errors import Conflict, NotFound, Unprocessable, field_errors
from api.core.snapshot import CANDIDATES, UNITS
from api.http.deps import Offset, RowId, SessionDep
from api.web.forms import errors_under
from api.web.pages import coordinator_only, page
from api.web.render import WebRoute, redirect
from api.web.session import Csrf, WebSubject, form_values
from models import Candidate, Commitment, Region, Role
from models import queries as q
from models.commitments import CommitmentStatus
from models.queries import Subject

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 25
STATUSES = tuple(status.value for status in CommitmentStatus)


def _region(session: Session, subject: Subject, code: str) -> Region:
    reg = services.region_for(session, subject, code)
    coordinator_only(subject)
    return reg


def _status_filter(status: str) -> str:
    """The status asked for ('' for all); any other word is a 422 naming the field and the statuses there are (not
    echoing the word: whatever is typed into an address may be personal)."""
    if status and status not in STATUSES:
        message = f"unknown status: use one of {', '.join(STATUSES)}"
        raise Unprocessable(message, errors=[{"field": "status", "message": message, "type": "one_of"}])
    return status


@router.get("/regions/{region}/commitments")
def commitment_list(
    request: Request,
    region: str,
    session: SessionDep,
    subject: WebSubject,
    status: Annotated[str, Query(max_length=32)] = "",
    programme: Annotated[str, Query(max_length=64)] = "",
    unit: Annotated[str, Query(max_length=64)] = "",
    offset: Offset = 0,
) -> Response:
    """The region's accepted placements, oldest first, filtered by status, programme and unit."""
    reg = _region(session, subject, region)
    status = _status_filter(status)
    statement = q.commitments_readable_by(subject).where(Commitment.region_id == reg.id)
    for column, value in (
        (Commitment.status, status),
        (Commitment.programme_ref, programme),
        (Commitment.unit_ref, unit),
    ):
        if value:
            statement = statement.where(column == value)
    found = services.page_of(session, statement, Commitment.id, PAGE_SIZE, offset, commitments.view)
    kept = {k: v for k, v in {"status": status, "programme": programme, "unit": unit}.items() if v}

    def link(to: int) -> str:
        return f"?{urlencode({**kept, 'offset': to})}"

    total = found["total"]
    return page(
        request,
        "commitments.html",
        region=reg.code,
        reg=reg,
        items=found["items"],
        total=total,
        offset=offset,
        size=PAGE_SIZE,
        query={"status": status, "programme": programme, "unit": unit},
        statuses=STATUSES,
        prev_link=link(max(0, offset - PAGE_SIZE)) if offset > 0 else "",
        next_link=link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else "",
    )


def _commitment(session: Session, subject: Subject, reg: Region, commitment_id: int) -> Commitment:
    row = session.scalar(
        q.commitments_readable_by(subject).where(Commitment.id == commitment_id, Commitment.region_id == reg.id)
    )
    if row is None:
        raise NotFound(f"commitment {commitment_id} not found in region {reg.code}")
    return row


def _follow_up_page(
    request: Request,
    reg: Region,
    row: Commitment,
    values: dict[str, str],
    errors: list[dict[str, Any]],
    status_code: int = 200,
) -> Response:
    by_field = errors_under(FIELDS, errors)
    response = page(
        request,
        "commitment.html",
        region=reg.code,
        reg=reg,
        c=commitments.view(row),
        next_statuses=commitments.NEXT[row.status],
        values=values,
        field_errors=by_field,
        errors=errors,
        issues=[],
        any_errors=bool(errors),
    )
    response.status_code = status_code
    return response


FIELDS = ("status", "last_month", "paid", "note", "return_to_pool")


@router.get("/regions/{region}/commitments/{commitment_id}")
def commitment_page(
    request: Request, region: str, commitment_id: RowId, session: SessionDep, subject: WebSubject
) -> Response:
    """One accepted placement: what it was granted, what it still holds, and the follow-up form."""
    reg = _region(session, subject, region)
    row = _commitment(session, subject, reg, commitment_id)
    values = {
        "status": "",
        "last_month": row.last_month.isoformat() if row.last_month else "",
        "paid": "" if row.paid is None else str(row.paid),
        "note": row.note,
        "return_to_pool": "on",
    }
    return _follow_up_page(request, reg, row, values, [])


def follow_up_body(values: dict[str, str]) -> commitments.FollowUp:
    """The API's FollowUp from the form (pydantic's errors name the fields)."""
    body: dict[str, Any] = {"return_to_pool": values.get("return_to_pool") == "on", "note": values.get("note", "")}
    if values.get("status"):
        body["status"] = values["status"]
    if values.get("last_month", "").strip():
        month = values["last_month"].strip()
        # A month input gives YYYY-MM; the API takes any day of the month.
        body["last_month"] = f"{month}-01" if len(month) == 7 else month
    paid = values.get("paid", "").replace(" ", "").replace("\u00a0", "").strip()
    if paid:
        body["paid"] = int(paid) if paid.isdigit() else paid
    return commitments.FollowUp.model_validate(body)


@router.post("/regions/{region}/commitments/{commitment_id}", dependencies=[Csrf])
def record_follow_up(
    request: Request, region: str, commitment_id: RowId, session: SessionDep, subject: WebSubject
) -> Response:
    """Record the follow-up through the API's service; a refusal is shown next to the field it is about."""
    reg = _region(session, subject, region)
    row = _commitment(session, subject, reg, commitment_id)
    values = form_values(request)
    try:
        commitments.follow_up(session, subject, reg, row.id, follow_up_body(values))
    except ValidationError as exc:
        return _follow_up_page(request, reg, row, values, field_errors(list(exc.errors())), 422)
    except (Unprocessable, Conflict) as exc:
        session.rollback()
        row = _commitment(session, subject, reg, commitment_id)
        errors = exc.extra.get("errors") or [{"field": "", "message": exc.detail, "type": exc.slug}]
        return _follow_up_page(request, reg, row, values, errors, exc.status)
    return redirect(f"/regions/{reg.code}/commitments/{row.id}")


def _supervision_needs(session: Session, subject: Subject, reg: Region, rows: list[Commitment]) -> dict[int, Any]:
    """What supervision needs to know of each commitment's candidate, as the API shows candidates to this subject
    (a clinic: the reduced view, never identity); read in one statement."""
    ids = {row.candidate_id for row in rows}
    readable = q.candidates_readable_by(subject).where(Candidate.id.in_(ids), Candidate.region_id == reg.id)
    return {c.id: services.read_view(CANDIDATES, subject, reg, c) for c in session.scalars(readable)}


@router.get("/regions/{region}/units/{ref}/commitments")
def unit_commitments(
    request: Request,
    region: str,
    ref: str,
    session: SessionDep,
    subject: WebSubject,
    status: Annotated[str, Query(max_length=32)] = "",
    offset: Offset = 0,
) -> Response:
    """The unit's accepted placements with their follow-up (started, completed, interrupted with the last month,
    never started), months, supervisor and grant, and what supervision needs of each candidate: never who they are;
    narrowed to one status by a plain GET form. The API's scoped read (`GET .../commitments?unit=...&status=...`): a
    clinic user sees only its own unit (others are 404), and the filter only narrows that read."""
    reg = services.region_for(session, subject, region)
    unit = services.get_object(session, UNITS, subject, reg, ref)
    status = _status_filter(status)
    statement = q.commitments_readable_by(subject).where(Commitment.region_id == reg.id, Commitment.unit_id == unit.id)
    if status:
        statement = statement.where(Commitment.status == status)
    found = services.page_of(session, statement, Commitment.id, PAGE_SIZE, offset, lambda row: row)
    rows: list[Commitment] = found["items"]
    needs = _supervision_needs(session, subject, reg, rows)
    total = found["total"]

    def link(to: int) -> str:
        return f"?{urlencode({**({'status': status} if status else {}), 'offset': to})}"

    return page(
        request,
        "unit_commitments.html",
        region=reg.code,
        reg=reg,
        unit=unit,
        items=[{"c": commitments.view_for(subject)(row), "candidate": needs.get(row.candidate_id)} for row in rows],
        total=total,
        offset=offset,
        size=PAGE_SIZE,
        may_follow_up=subject.role is not Role.CLINIC,
        status=status,
        statuses=STATUSES,
        prev_link=link(max(0, offset - PAGE_SIZE)) if offset > 0 else "",
        next_link=link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else "",
    )
