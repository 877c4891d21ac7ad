"""Who is looking at a page: a signed session cookie, a CSRF token for every form, and the access subject.

The session cookie is a short JWT (HttpOnly, SameSite=Strict, Secure outside development) naming the user; the
page then acts with exactly the `Subject` the API would build for that user, so every read goes through the same
scoped queries. CSRF: a random token in its own HttpOnly cookie must come back in the form field `csrf` of every
POST (double submit); SameSite=Strict already keeps other sites' requests from carrying the cookies.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.security import ALGORITHM, MAX_ID, same_hash
from api.core.settings import Environment, Settings
from api.http.deps import SessionDep, SigningDep
from models import Region, Role, Unit, User
from models.base import utcnow
from models.queries import Subject

SESSION_COOKIE = "vm_session"
CSRF_COOKIE = "vm_csrf"
LANG_COOKIE = "vm_lang"
CSRF_FIELD = "csrf"


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Exception):
    """A form came back without the token of this browser."""


def secure_cookies(settings: Settings) -> bool:
    """Cookies are Secure everywhere but in development (where the demo is served over plain http)."""
    return settings.environment is not Environment.DEVELOPMENT


def set_cookie(response: Response, settings: Settings, name: str, value: str, max_age: int | None = None) -> None:
    """Set one of our cookies with the flags every one of them carries."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(settings),
        path="/",
    )


def session_token(user: User, secret: str, minutes: int) -> str:
    """A signed session naming the user and their token version (a password change ends it), valid as long as an
    API token."""
    now = utcnow()
    claims = {"sub": str(user.id), "ver": user.token_version, "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode({**claims, "typ": "web"}, secret, algorithm=ALGORITHM)


def session_user(session: Session, token: str | None, secret: str) -> User | None:
    """The active user of a valid, unexpired web session whose token version is still theirs, else None (an API
    token is not a session)."""
    if not token:
        return None
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "ver"]})
        user_id, version = int(claims["sub"]), claims["ver"]
    except (jwt.PyJWTError, ValueError):
        return None
    if claims.get("typ") != "web" or not 0 < user_id <= MAX_ID or type(version) is not int:
        return None
    user = session.get(User, user_id)
    return user if user is not None and user.active and user.token_version == version else None


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (a new one is made, and set on the response, when it has none)."""
    token: str | None = getattr(request.state, "csrf", None) or request.cookies.get(CSRF_COOKIE)
    if not token or len(token) < 20:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    request.state.csrf = token
    return token


def keep_csrf(request: Request, response: Response, settings: Settings) -> None:
    """Set the CSRF cookie on the response if this request made the token."""
    new = getattr(request.state, "new_csrf", None)
    if new:
        set_cookie(response, settings, CSRF_COOKIE, new)


async def check_csrf(request: Request) -> None:
    """Refuse a POST whose form token is missing or is not this browser's."""
    cookie = request.cookies.get(CSRF_COOKIE)
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not cookie or not isinstance(sent, str) or not same_hash(cookie, sent):
        raise CsrfRefused()
    request.state.form = {k: v for k, v in form.items() if isinstance(v, str)}
    request.state.form_data = form
    request.state.form_lists = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}


def form_list(request: Request, name: str) -> list[str]:
    """Every value of a repeated field (ticked boxes) of the form that passed the CSRF check."""
    lists: dict[str, list[str]] = getattr(request.state, "form_lists", {})
    return lists.get(name, [])


def form_values(request: Request) -> dict[str, str]:
    """The text fields of the form that passed the CSRF check."""
    values: dict[str, str] = getattr(request.state, "form", {})
    return values


def web_user(request: Request, session: SessionDep, signing: SigningDep) -> User:
    """The logged-in user of the page, or a redirect to the login page."""
    user = session_user(session, request.cookies.get(SESSION_COOKIE), signing.secret())
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    request.state.user = user
    # The menu needs the user's region code and unit id; read them now, while the session is at hand.
    request.state.region_code = session.scalar(select(Region.code).where(Region.id == user.region_id))
    request.state.unit_ref = session.scalar(select(Unit.ref).where(Unit.id == user.unit_id))
    return user


WebUser = Annotated[User, Depends(web_user)]


def web_subject(user: WebUser) -> Subject:
    """The same access subject the API builds for this user."""
    return Subject(user_id=user.id, role=Role(user.role), region_id=user.region_id, unit_id=user.unit_id)


WebSubject = Annotated[Subject, Depends(web_subject)]
Csrf = Depends(check_csrf)
