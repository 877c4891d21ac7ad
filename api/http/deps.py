"""Dependencies shared by the routers: settings, the per-request unit of work and the authenticated subject."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.errors import Forbidden, Unauthorized
from api.core.security import MAX_ID, api_key_prefix, hash_api_key, read_token, same_hash
from api.core.settings import Settings
from api.core.signing import Signing
from models import ApiKey, Role, User
from models.queries import Subject

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_signing(request: Request) -> Signing:
    """Where the app's token secret comes from."""
    signing: Signing = request.app.state.signing
    return signing


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on any error."""
    with request.app.state.sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SettingsDep = Annotated[Settings, Depends(get_settings)]
SigningDep = Annotated[Signing, Depends(get_signing)]
# A row id in a path: bounded, so that a huge number is a 422 rather than a database overflow.
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}


def _user_from_key(session: Session, key: str) -> User | None:
    prefix = api_key_prefix(key)
    if prefix is None:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)))
    if row is None or not same_hash(row.key_hash, hash_api_key(key)):
        return None
    return session.get(User, row.user_id)


def _user_from_token(session: Session, token: str, secret: str) -> User | None:
    found = read_token(token, secret)
    if found is None:
        return None
    user_id, version = found
    user = session.get(User, user_id)
    # A password change bumps the user's version: tokens issued before it no longer count.
    return user if user is not None and user.token_version == version else None


def current_user(
    session: SessionDep,
    signing: SigningDep,
    token: Annotated[str | None, Depends(oauth2)],
    key: Annotated[str | None, Depends(api_key_header)],
) -> User:
    """The user behind the bearer token or the X-API-Key header."""
    user = None
    if token:
        user = _user_from_token(session, token, signing.secret())
    elif key:
        user = _user_from_key(session, key)
    if user is None or not user.active:
        raise Unauthorized("missing, invalid or expired credentials", headers=_UNAUTHENTICATED)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def current_subject(user: CurrentUser) -> Subject:
    """The access subject of the current user."""
    return Subject(user_id=user.id, role=Role(user.role), region_id=user.region_id, unit_id=user.unit_id)


SubjectDep = Annotated[Subject, Depends(current_subject)]


def require(*roles: Role) -> Any:
    """A dependency that lets only the given roles through (403 otherwise)."""

    def check(subject: SubjectDep) -> Subject:
        if subject.role not in roles:
            raise Forbidden(f"this needs the role {' or '.join(r.value for r in roles)}")
        return subject

    return Depends(check)


CoordinatorOrAdmin = Annotated[Subject, require(Role.ADMIN, Role.COORDINATOR)]
ClinicOrAdmin = Annotated[Subject, require(Role.ADMIN, Role.CLINIC)]
AdminOnly = Annotated[Subject, require(Role.ADMIN)]
