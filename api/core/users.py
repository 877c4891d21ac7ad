"""Users: creating them (one place for the admin route `POST /users` and the `vardmatch users create` command),
their passwords, deactivation, and changes of role and scope (`PATCH /users/{id}` and the admin page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.core.audit import audit
from api.core.errors import Conflict, NotFound, Unprocessable
from api.core.schemas import RegionCreate, UserCreate, UserUpdate
from api.core.security import hash_password
from models import ApiKey, Region, Role, Unit, User
from models.base import utcnow
from models.queries import Subject, regions_readable_by


def _region(session: Session, subject: Subject | None, code: str) -> Region:
    # Without a subject the caller is the operator at the command line, who may use every region.
    statement = regions_readable_by(subject) if subject else select(Region)
    region = session.scalar(statement.where(Region.code == code))
    if region is None:
        raise NotFound(f"region {code} not found")
    return region


def user_scope(session: Session, subject: Subject | None, body: UserCreate) -> tuple[int | None, int | None]:
    """The region and unit row ids a new user is scoped to; 422 when the role needs one that is missing."""
    if body.role == Role.ADMIN:
        return None, None
    if body.region is None:
        raise Unprocessable(
            "coordinators and clinic users need a region",
            errors=[{"field": "region", "message": "required for this role", "type": "required"}],
        )
    region = _region(session, subject, body.region)
    if body.role == Role.COORDINATOR:
        return region.id, None
    unit = session.scalar(select(Unit).where(Unit.region_id == region.id, Unit.ref == (body.unit or "")))
    if unit is None:
        raise Unprocessable(
            "clinic users need a unit of the region",
            errors=[{"field": "unit", "message": "unknown unit", "type": "known_id"}],
        )
    return region.id, unit.id


def user_views(session: Session, users: list[User]) -> list[dict[str, Any]]:
    """The users as the API and the command line show them (never a password hash), their regions' codes and
    units' refs read in one statement each (a list costs the same statements whatever its page size)."""
    region_ids = {u.region_id for u in users if u.region_id is not None}
    unit_ids = {u.unit_id for u in users if u.unit_id is not None}
    regions = session.execute(select(Region.id, Region.code).where(Region.id.in_(region_ids)))
    units = session.execute(select(Unit.id, Unit.ref).where(Unit.id.in_(unit_ids)))
    codes = {id_: code for id_, code in regions}
    refs = {id_: ref for id_, ref in units}
    return [
        {
            "id": user.id,
            "username": user.username,
            "role": user.role,
            "region": codes.get(user.region_id) if user.region_id is not None else None,
            "unit": refs.get(user.unit_id) if user.unit_id is not None else None,
            "active": user.active,
        }
        for user in users
    ]


def create_region(session: Session, subject: Subject, body: RegionCreate) -> Region:
    """Store a new region (409 if its code is taken); audited."""
    if session.scalar(select(Region).where(Region.code == body.code)):
        raise Conflict(f"region {body.code} exists", slug="duplicate")
    region = Region(code=body.code, name=body.name)
    session.add(region)
    session.flush()
    audit(session, subject, "region.create", "region", region.code, region.id)
    return region


def create_user(session: Session, subject: Subject | None, body: UserCreate) -> User:
    """Store a new user with a hashed password (409 if the username is taken); audited, by `system` without a
    subject."""
    if session.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise Conflict(f"user {body.username} exists", slug="duplicate")
    region_id, unit_id = user_scope(session, subject, body)
    user = User(
        username=body.username,
        password_hash=hash_password(body.password),
        role=body.role,
        region_id=region_id,
        unit_id=unit_id,
    )
    session.add(user)
    session.flush()
    audit(session, subject, "user.create", "user", user.id, region_id, role=body.role)
    return user


def set_password(session: Session, user: User, password: str) -> int:
    """A new password revokes every credential issued before it: the user's tokens (their version moves on) and API
    keys. Returns how many keys were revoked."""
    user.password_hash = hash_password(password)
    return revoke_credentials(session, user)


def revoke_credentials(session: Session, user: User) -> int:
    """End every token and session issued to the user (their version moves on) and revoke their API keys; returns
    how many keys were revoked."""
    user.token_version += 1
    revoked = session.execute(
        update(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return int(revoked.rowcount)  # type: ignore[attr-defined]


def set_active(session: Session, subject: Subject, user: User, active: bool) -> int:
    """Deactivate or reactivate a user (admin). A deactivated user cannot log in, and every token, web session and
    API key issued before stops working for good: reactivation does not bring them back (the user logs in again
    and makes new keys). An admin cannot deactivate themselves (nobody might be left to undo it). Returns how many
    API keys were revoked."""
    if not active and user.id == subject.user_id:
        raise Conflict("you cannot deactivate yourself; ask another admin", slug="self-deactivation")
    if user.active == active:
        return 0
    user.active = active
    revoked = 0 if active else revoke_credentials(session, user)
    action = "user.reactivate" if active else "user.deactivate"
    audit(session, subject, action, "user", user.id, user.region_id, api_keys_revoked=revoked)
    return revoked


@dataclass(frozen=True, slots=True)
class Scope:
    """A role with the region and unit rows it is scoped to."""

    role: str
    region_id: int | None
    unit_id: int | None


def _invalid(field: str, message: str, rule: str) -> Unprocessable:
    return Unprocessable(message, errors=[{"field": field, "message": message, "type": rule}])


def _region_id(session: Session, code: str) -> int:
    region_id = session.scalar(select(Region.id).where(Region.code == code))
    if region_id is None:
        raise _invalid("region", f"region {code} not found", "known_id")
    return region_id


def _unit_id(session: Session, user: User, body: UserUpdate, role: str, region_id: int | None) -> int | None:
    """The unit the body asks for (a ref of the target region), or the user's present unit when it names none."""
    if "unit" in body.model_fields_set and body.unit is not None:
        if role != Role.CLINIC:
            raise _invalid("unit", f"the role {role} has no unit", "not_allowed")
        unit_id = session.scalar(select(Unit.id).where(Unit.region_id == region_id, Unit.ref == body.unit))
        if unit_id is None:
            code = session.scalar(select(Region.code).where(Region.id == region_id))
            raise _invalid("unit", f"unit {body.unit} is not a unit of region {code}", "unit_in_region")
        return unit_id
    if role != Role.CLINIC:
        return None
    # A clinic user's unit is kept unless the body clears it; it must then lie in the (perhaps new) region.
    kept = user.unit_id if user.role == Role.CLINIC and "unit" not in body.model_fields_set else None
    if kept is None:
        raise _invalid("unit", "clinic users need a unit", "required")
    if session.scalar(select(Unit.region_id).where(Unit.id == kept)) != region_id:
        raise _invalid("unit", "the user's unit is not a unit of the new region: name a unit of it", "unit_in_region")
    return kept


def requested_scope(session: Session, user: User, body: UserUpdate) -> Scope:
    """The role and scope the body asks for, checked: admins have no region or unit, coordinators a region and no
    unit, clinic users a region and a unit of that region (422 naming the field and the rule otherwise). What the
    body names (null clears) replaces that part of the present scope; the rest is kept where the role allows it (a
    clinic user made coordinator keeps the region and loses the unit)."""
    role = body.role if body.role is not None else user.role
    if role == Role.ADMIN:
        for name in ("region", "unit"):
            if getattr(body, name) is not None:
                raise _invalid(name, f"admins have no {name}", "not_allowed")
        return Scope(role, None, None)
    region_id = user.region_id
    if "region" in body.model_fields_set:
        region_id = _region_id(session, body.region) if body.region is not None else None
    if region_id is None:
        raise _invalid("region", f"the role {role} needs a region", "required")
    return Scope(role, region_id, _unit_id(session, user, body, role, region_id))


def _codes(session: Session, scope: Scope) -> dict[str, str | None]:
    region = session.scalar(select(Region.code).where(Region.id == scope.region_id)) if scope.region_id else None
    unit = session.scalar(select(Unit.ref).where(Unit.id == scope.unit_id)) if scope.unit_id else None
    return {"role": scope.role, "region": region, "unit": unit}


def change_scope(session: Session, subject: Subject | None, user: User, body: UserUpdate) -> int:
    """Give the user the role and scope the body asks for (see `requested_scope`). A real change ends every token,
    web session and API key issued before it, so that nothing keeps the old rights; the last active admin cannot be
    demoted (409), so that someone can always manage users. Audited as `user.scope` (by `system` without a subject:
    the operator at the command line). Returns how many API keys were revoked (0 when nothing changed)."""
    scope = requested_scope(session, user, body)
    before = Scope(user.role, user.region_id, user.unit_id)
    if scope == before:
        return 0
    if user.role == Role.ADMIN and scope.role != Role.ADMIN and user.active:
        # Locked (on PostgreSQL) so that two admins demoting each other at once cannot both pass the count.
        others = session.scalars(
            select(User.id).where(User.role == Role.ADMIN, User.active.is_(True), User.id != user.id).with_for_update()
        ).all()
        if not others:
            raise Conflict("the last active admin cannot be demoted; make another admin first", slug="last-admin")
    old = _codes(session, before)
    user.role, user.region_id, user.unit_id = scope.role, scope.region_id, scope.unit_id
    revoked = revoke_credentials(session, user)
    audit(
        session,
        subject,
        "user.scope",
        "user",
        user.id,
        scope.region_id if scope.region_id is not None else before.region_id,
        before=old,
        after=_codes(session, scope),
        api_keys_revoked=revoked,
    )
    return revoked
