"""The audit trail, readable: admins see every event, coordinators their region's; filter, page and export.

The log is append-only in the database (triggers refuse UPDATE and DELETE for everyone) and holds no identity
values: who did what, when, to which object, and for which purpose.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import Select, select

from api.core import tabular
from api.core.errors import Unprocessable
from api.core.services import count_rows, region_for
from api.http.deps import CoordinatorOrAdmin, Offset, SessionDep
from api.http.errors import problem_responses
from models import AuditEvent, Region, User
from models.queries import Subject, audit_readable_by

router = APIRouter(prefix="/audit", tags=["audit"])
ERRORS = problem_responses(401, 403, 404, 422)
EXPORT_LIMIT = 100_000
Text = Annotated[str | None, Query(max_length=100)]


def _moment(day: date | None, end: bool) -> datetime | None:
    return None if day is None else datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


def events(
    session: Any,
    subject: Subject,
    region: str | None,
    actor: str | None,
    action: str | None,
    object_type: str | None,
    object_id: str | None,
    since: date | None,
    until: date | None,
) -> Select[Any]:
    """The events the subject may read, filtered; `action` ending in `*` matches a prefix (`identity.*`)."""
    statement = audit_readable_by(subject)
    if region is not None:
        statement = statement.where(AuditEvent.region_id == region_for(session, subject, region).id)
    if actor is not None:
        if actor == "system":
            statement = statement.where(AuditEvent.actor_id.is_(None))
        else:
            statement = statement.where(AuditEvent.actor_id.in_(select(User.id).where(User.username == actor)))
    if action is not None:
        prefix = action.endswith("*")
        statement = statement.where(
            AuditEvent.action.startswith(action[:-1], autoescape=True) if prefix else AuditEvent.action == action
        )
    if object_type is not None:
        statement = statement.where(AuditEvent.object_type == object_type)
    if object_id is not None:
        statement = statement.where(AuditEvent.object_id == object_id)
    start, end = _moment(since, False), _moment(until, True)
    if start and end and end < start:
        raise Unprocessable(
            "until is before since", errors=[{"field": "until", "message": "before since", "type": "period_order"}]
        )
    if start is not None:
        statement = statement.where(AuditEvent.at >= start)
    if end is not None:
        statement = statement.where(AuditEvent.at <= end)
    return statement


def _rows(session: Any, statement: Select[Any], limit: int, offset: int) -> list[dict[str, Any]]:
    page = (
        statement.add_columns(User.username, Region.code)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .outerjoin(Region, Region.id == AuditEvent.region_id)
        .order_by(AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        {
            "id": event.id,
            "at": event.at,
            "actor": username or "system",
            "actor_role": event.actor_role,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "region": code,
            "purpose": (event.detail or {}).get("purpose") or (event.detail or {}).get("reason"),
            "detail": event.detail,
        }
        for event, username, code in session.execute(page)
    ]


@router.get("", responses=ERRORS)
def list_events(
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    region: Text = None,
    actor: Annotated[str | None, Query(max_length=100, description="username, or `system`")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="e.g. identity.read, or identity.* for a prefix")
    ] = None,
    object_type: Text = None,
    object_id: Text = None,
    since: Annotated[date | None, Query(description="from this day (UTC)")] = None,
    until: Annotated[date | None, Query(description="up to and including this day (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> Any:
    """Audit events you may read, newest first: who, what, when, which object, which purpose."""
    statement = events(session, subject, region, actor, action, object_type, object_id, since, until)
    total = count_rows(session, statement)
    return {"items": _rows(session, statement, limit, offset), "total": total, "limit": limit, "offset": offset}


@router.get("/export", response_class=Response, responses={200: tabular.DOWNLOAD_RESPONSE, **ERRORS})
def export_events(
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    region: Text = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Text = None,
    object_id: Text = None,
    since: date | None = None,
    until: date | None = None,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",
) -> Response:
    """The same events as CSV or XLSX (at most 100,000, newest first)."""
    statement = events(session, subject, region, actor, action, object_type, object_id, since, until)
    rows = [tabular.flatten(row) for row in _rows(session, statement, EXPORT_LIMIT, 0)]
    return tabular.download({"audit": rows}, "audit", format)
