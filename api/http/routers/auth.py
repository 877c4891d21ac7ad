"""Log in (OAuth2 password flow), who am I, API keys, users and regions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from api.core import users
from api.core.audit import audit
from api.core.errors import NotFound, TooManyRequests, Unauthorized, Unprocessable
from api.core.schemas import (
    ApiKeyCreated,
    ApiKeyRead,
    Page,
    PasswordChange,
    RegionCreate,
    RegionRead,
    Token,
    UserCreate,
    UserRead,
    UserUpdate,
)
from api.core.security import LoginLimiter, client_address, create_token, new_api_key, verify_password
from api.core.services import page_of
from api.core.settings import Settings
from api.core.signing import Signing
from api.http.deps import (
    AdminOnly,
    CurrentUser,
    Offset,
    RowId,
    SessionDep,
    SettingsDep,
    SigningDep,
    SubjectDep,
)
from api.http.errors import problem_responses
from models import ApiKey, Region, User
from models.base import utcnow
from models.queries import regions_readable_by, users_readable_by, users_writable_by

router = APIRouter(tags=["auth"])


def _client(request: Request, settings: Settings) -> str:
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies)


def _check_password(request: Request, settings: Settings, username: str, password: str, user: User | None) -> bool:
    """Whether the password is the user's, within the login limits (429 once this address has failed too often on
    this account; see LoginLimiter)."""
    limiter: LoginLimiter = request.app.state.login_limiter
    # The username as typed (bounded), so that guesses at unknown names count like those at real ones.
    account, client = username[:200], _client(request, settings)
    wait = limiter.retry_after(account, client)
    if wait:
        raise TooManyRequests(f"too many failed logins; try again in {wait} s", headers={"Retry-After": str(wait)})
    if verify_password(password, user.password_hash if user else None) and user is not None and user.active:
        return True
    limiter.failed(account, client)
    return False


def _token(user: User, signing: Signing, settings: Settings) -> dict[str, Any]:
    token = create_token(user.id, signing.secret(), settings.token_minutes, user.token_version)
    return {"access_token": token, "token_type": "bearer", "expires_in": settings.token_minutes * 60}


@router.post("/auth/token", response_model=Token, responses=problem_responses(401, 422, 429))
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    signing: SigningDep,
) -> Any:
    """Exchange a username and password for a bearer token (failed attempts are limited per account and address)."""
    user = session.scalar(select(User).where(User.username == form.username))
    if not _check_password(request, settings, form.username, form.password, user) or user is None:
        raise Unauthorized("wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    return _token(user, signing, settings)


@router.post("/me/password", response_model=Token, responses=problem_responses(401, 422, 429))
def change_password(
    body: PasswordChange,
    request: Request,
    user: CurrentUser,
    subject: SubjectDep,
    session: SessionDep,
    settings: SettingsDep,
    signing: SigningDep,
) -> Any:
    """Change your own password: every token and API key issued before stops working; the answer is a new token."""
    if not _check_password(request, settings, user.username, body.current_password, user):
        raise Unprocessable(
            "the current password is wrong",
            errors=[{"field": "current_password", "message": "wrong password", "type": "wrong_password"}],
        )
    revoked = users.set_password(session, user, body.new_password)
    audit(session, subject, "user.password", "user", user.id, user.region_id, api_keys_revoked=revoked)
    return _token(user, signing, settings)


def _user_view(session: Any, user: User) -> dict[str, Any]:
    [view] = users.user_views(session, [user])
    return view


@router.get("/me", response_model=UserRead, responses=problem_responses(401))
def me(user: CurrentUser, session: SessionDep) -> Any:
    """The logged-in user, with role and scope."""
    return _user_view(session, user)


@router.post("/me/api-keys", response_model=ApiKeyCreated, status_code=201, responses=problem_responses(401, 422))
def create_api_key(
    user: CurrentUser, subject: SubjectDep, session: SessionDep, name: Annotated[str, Query(max_length=100)] = ""
) -> Any:
    """Create an API key for scripts (send it as X-API-Key); it acts with your role and is shown only once."""
    key, prefix, key_hash = new_api_key()
    row = ApiKey(user_id=user.id, prefix=prefix, key_hash=key_hash, name=name)
    session.add(row)
    session.flush()
    audit(session, subject, "api_key.create", "api_key", row.id, user.region_id)
    return {"id": row.id, "name": name, "key": key}


def _key_view(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
    }


@router.get("/me/api-keys", response_model=list[ApiKeyRead], responses=problem_responses(401))
def list_api_keys(user: CurrentUser, session: SessionDep) -> Any:
    """Your API keys, revoked ones included, never with the key itself."""
    rows = session.scalars(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id))
    return [_key_view(row) for row in rows]


@router.delete("/me/api-keys/{key_id}", response_model=ApiKeyRead, responses=problem_responses(401, 404, 422))
def revoke_api_key(key_id: RowId, user: CurrentUser, subject: SubjectDep, session: SessionDep) -> Any:
    """Revoke one of your API keys: it stops working at once (revoking it again changes nothing)."""
    row = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user.id))
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit(session, subject, "api_key.revoke", "api_key", row.id, user.region_id)
    return _key_view(row)


@router.get("/regions", response_model=list[RegionRead], tags=["regions"], responses=problem_responses(401))
def list_regions(session: SessionDep, subject: SubjectDep) -> Any:
    """Regions you may see."""
    return [
        {"code": r.code, "name": r.name} for r in session.scalars(regions_readable_by(subject).order_by(Region.code))
    ]


@router.post(
    "/regions",
    response_model=RegionRead,
    status_code=201,
    tags=["regions"],
    responses=problem_responses(401, 403, 409, 422),
)
def create_region(body: RegionCreate, session: SessionDep, subject: AdminOnly) -> Any:
    """Create a region (admin)."""
    region = users.create_region(session, subject, body)
    return {"code": region.code, "name": region.name}


@router.get("/users", response_model=Page[UserRead], tags=["users"], responses=problem_responses(401, 422))
def list_users(
    session: SessionDep,
    subject: SubjectDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
    role: Annotated[str | None, Query(max_length=16)] = None,
) -> Any:
    """Users you may see (admins: all; others: themselves)."""
    statement = users_readable_by(subject)
    if role:
        statement = statement.where(User.role == role)
    page = page_of(session, statement, User.id, limit, offset, lambda user: user)
    return {**page, "items": users.user_views(session, page["items"])}


@router.post(
    "/users",
    response_model=UserRead,
    status_code=201,
    tags=["users"],
    responses=problem_responses(401, 403, 404, 409, 422),
)
def create_user(body: UserCreate, session: SessionDep, subject: AdminOnly) -> Any:
    """Create a user with a role and scope (admin)."""
    return _user_view(session, users.create_user(session, subject, body))


@router.get("/users/{user_id}", response_model=UserRead, tags=["users"], responses=problem_responses(401, 404))
def get_user(user_id: RowId, session: SessionDep, subject: SubjectDep) -> Any:
    """Read a user."""
    user = session.scalar(users_readable_by(subject).where(User.id == user_id))
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return _user_view(session, user)


@router.patch(
    "/users/{user_id}", response_model=UserRead, tags=["users"], responses=problem_responses(401, 403, 404, 409, 422)
)
def update_user(user_id: RowId, body: UserUpdate, session: SessionDep, subject: AdminOnly) -> Any:
    """Change a user's password, role or scope (`role`, `region`, `unit`), or deactivate (every token and API key of
    theirs stops working for good) or reactivate them (admin). A change of password, role or scope also ends every
    token, session and API key issued before it; the last active admin cannot be demoted."""
    user = session.scalar(users_writable_by(subject).where(User.id == user_id))
    if user is None:
        raise NotFound(f"user {user_id} not found")
    revoked = 0
    if body.password is not None:
        revoked = users.set_password(session, user, body.password)
    if body.changes_scope():
        revoked += users.change_scope(session, subject, user, body)
    if body.active is not None:
        revoked += users.set_active(session, subject, user, body.active)
    audit(
        session,
        subject,
        "user.update",
        "user",
        user.id,
        user.region_id,
        fields=sorted(body.model_fields_set),
        api_keys_revoked=revoked,
    )
    return _user_view(session, user)
