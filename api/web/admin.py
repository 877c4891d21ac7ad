"""Admin pages: regions and users, a user's role and scope (the API's services, the API's refusals)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from api.core import users
from api.core.errors import Conflict, Forbidden, NotFound, Unprocessable, field_errors
from api.core.schemas import RegionCreate, UserCreate, UserUpdate
from api.http.deps import RowId, SessionDep
from api.web.forms import errors_under
from api.web.pages import page
from api.web.render import WebRoute, redirect
from api.web.session import Csrf, WebSubject
from models import Region, Unit, User
from models.queries import Subject, regions_readable_by, users_readable_by, users_writable_by

router = APIRouter(route_class=WebRoute)


def _admin(subject: Subject) -> None:
    if not subject.is_admin:
        raise Forbidden("this needs the role admin")


def _regions_page(request: Request, session: SessionDep, subject: Subject, errors: list[dict[str, str]]) -> Response:
    regions = list(session.scalars(regions_readable_by(subject).order_by(Region.code)))
    response = page(request, "admin_regions.html", regions=regions, errors=errors, issues=[])
    response.status_code = 422 if errors else 200
    return response


@router.get("/admin/regions")
def regions_page(request: Request, session: SessionDep, subject: WebSubject) -> Response:
    """Every region, and a form for a new one."""
    _admin(subject)
    return _regions_page(request, session, subject, [])


@router.post("/admin/regions", dependencies=[Csrf])
def create_region(
    request: Request,
    session: SessionDep,
    subject: WebSubject,
    code: Annotated[str, Form(max_length=8)],
    name: Annotated[str, Form(max_length=200)],
) -> Response:
    """Create a region (as POST /api/v1/regions)."""
    _admin(subject)
    try:
        body = RegionCreate(code=code, name=name)
    except ValidationError as exc:
        return _regions_page(request, session, subject, field_errors(list(exc.errors())))
    users.create_region(session, subject, body)
    return redirect("/admin/regions")


def _users_page(
    request: Request, session: SessionDep, subject: Subject, errors: list[dict[str, str]], status_code: int = 422
) -> Response:
    rows: list[User] = list(session.scalars(users_readable_by(subject).order_by(User.username)))
    regions = {r.id: r.code for r in session.scalars(select(Region))}
    units = {
        u.id: u.ref for u in session.scalars(select(Unit).where(Unit.id.in_([r.unit_id for r in rows if r.unit_id])))
    }
    response = page(request, "admin_users.html", users=rows, regions=regions, units=units, errors=errors, issues=[])
    response.status_code = status_code if errors else 200
    return response


@router.get("/admin/users")
def users_page(request: Request, session: SessionDep, subject: WebSubject) -> Response:
    """Every user with role and scope, and a form for a new one."""
    _admin(subject)
    return _users_page(request, session, subject, [])


@router.post("/admin/users", dependencies=[Csrf])
def create_user(
    request: Request,
    session: SessionDep,
    subject: WebSubject,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=16)],
    region: Annotated[str, Form(max_length=8)] = "",
    unit: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Create a user (as POST /api/v1/users)."""
    _admin(subject)
    try:
        body = UserCreate(username=username, password=password, role=role, region=region or None, unit=unit or None)
        users.create_user(session, subject, body)
    except ValidationError as exc:
        return _users_page(request, session, subject, field_errors(list(exc.errors())))
    except Unprocessable as exc:
        session.rollback()
        return _users_page(
            request,
            session,
            subject,
            exc.extra.get("errors") or [{"field": "(form)", "message": exc.detail, "type": exc.slug}],
        )
    return redirect("/admin/users")


@router.post("/admin/users/{user_id}/active", dependencies=[Csrf])
def set_active(
    request: Request,
    user_id: RowId,
    session: SessionDep,
    subject: WebSubject,
    active: Annotated[str, Form(pattern="^(yes|no)$")],
) -> Response:
    """Deactivate or reactivate a user (as PATCH /api/v1/users/{id} with `active`): a deactivated user cannot log
    in, and their sessions, tokens and API keys stop working."""
    _admin(subject)
    user = session.scalar(users_writable_by(subject).where(User.id == user_id))
    if user is None:
        raise NotFound(f"user {user_id} not found")
    try:
        users.set_active(session, subject, user, active == "yes")
    except Conflict as exc:
        session.rollback()
        return _users_page(
            request, session, subject, [{"field": "active", "message": exc.detail, "type": exc.slug}], 409
        )
    return redirect("/admin/users")


def _writable_user(session: SessionDep, subject: Subject, user_id: int) -> User:
    user = session.scalar(users_writable_by(subject).where(User.id == user_id))
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def _scope_page(
    request: Request,
    session: SessionDep,
    user: User,
    values: dict[str, str],
    errors: list[dict[str, str]],
    status_code: int = 200,
) -> Response:
    by_field = errors_under(("role", "region", "unit"), errors)
    response = page(
        request,
        "admin_user.html",
        target=user,
        values=values,
        errors=by_field.get("", []),
        field_errors=by_field,
        issues=[],
        regions=list(session.scalars(select(Region.code).order_by(Region.code))),
    )
    response.status_code = status_code
    return response


@router.get("/admin/users/{user_id}")
def user_page(request: Request, user_id: RowId, session: SessionDep, subject: WebSubject) -> Response:
    """A user's role and scope, and the form that changes them."""
    _admin(subject)
    user = _writable_user(session, subject, user_id)
    region = session.scalar(select(Region.code).where(Region.id == user.region_id)) if user.region_id else None
    unit = session.scalar(select(Unit.ref).where(Unit.id == user.unit_id)) if user.unit_id else None
    values = {"role": user.role, "region": region or "", "unit": unit or ""}
    return _scope_page(request, session, user, values, [])


@router.post("/admin/users/{user_id}", dependencies=[Csrf])
def change_scope(
    request: Request,
    user_id: RowId,
    session: SessionDep,
    subject: WebSubject,
    role: Annotated[str, Form(max_length=16)],
    region: Annotated[str, Form(max_length=8)] = "",
    unit: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Change the user's role and scope (as PATCH /api/v1/users/{id} with role, region and unit; an empty field is
    null): every session, token and API key of theirs ends; the last active admin cannot demote themselves."""
    _admin(subject)
    user = _writable_user(session, subject, user_id)
    values = {"role": role, "region": region, "unit": unit}
    try:
        body = UserUpdate(role=role, region=region.strip() or None, unit=unit.strip() or None)
        users.change_scope(session, subject, user, body)
    except ValidationError as exc:
        return _scope_page(request, session, user, values, field_errors(list(exc.errors())), 422)
    except (Unprocessable, Conflict) as exc:
        session.rollback()
        user = _writable_user(session, subject, user_id)
        errors = exc.extra.get("errors") or [{"field": "role", "message": exc.detail, "type": exc.slug}]
        return _scope_page(request, session, user, values, errors, exc.status)
    return redirect("/admin/users")
