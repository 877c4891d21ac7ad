"""Creating users: one place for the admin route (`POST /users`) and the `vardmatch users create` command."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.core.audit import audit
from api.core.errors import Conflict, NotFound, Unprocessable
from api.core.schemas import RegionCreate, UserCreate
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
