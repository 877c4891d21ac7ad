"""Log in and out, the language switch, the coordinator's region overview and the lists of region objects."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from api.core import books, commitments, services
from api.core.errors import Forbidden, NotFound
from api.core.security import LoginLimiter, client_address, verify_password
from api.core.snapshot import KINDS, PROGRAMMES, UNITS, engine_object
from api.http.deps import Offset, SessionDep, SettingsDep, SigningDep
from api.web import i18n
from api.web.charts import money_bars
from api.web.render import WebRoute, home_path, redirect, render
from api.web.session import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Csrf,
    WebSubject,
    session_token,
    session_user,
    set_cookie,
)
from matching.input.instance import Profession
from models import Commitment, MatchRound, Region, Role, Unit, User
from models.queries import Subject, commitments_readable_by, rounds_readable_by

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 25
# Columns shown in each list (the rest is on the object's page or in the export).
LIST_COLUMNS = {
    "offers": ("id", "unit_id", "profession", "kind", "specialty", "start", "months", "slots", "status"),
    "candidates": ("id", "profession", "cefr", "county", "specialty", "available_from", "status"),
    "supervisors": ("id", "unit_id", "profession", "capacity", "available_from", "available_until"),
    "programmes": ("id", "name", "funder", "budget", "status", "spend_by"),
    "units": ("id", "name", "kind", "municipality", "ownership", "size_class"),
}
STATUS_CHOICES = {
    "offers": ("draft", "published", "withdrawn", "filled"),
    "candidates": ("waiting", "placed", "withdrawn"),
}
PROFESSIONS = tuple(p.value for p in Profession)


def is_safe_next(target: str) -> bool:
    """Only a path of this site (never another host) may follow a login."""
    return target.startswith("/") and not target.startswith("//") and "\\" not in target


def home_of(session: Session, user: User) -> str:
    """Where a user's pages start: the admin's regions, the coordinator's region, the clinic's unit."""
    region = session.get(Region, user.region_id) if user.region_id else None
    unit = session.get(Unit, user.unit_id) if user.unit_id else None
    return home_path(user.role, region.code if region else None, unit.ref if unit else None)


def page(request: Request, template: str, region: str | None = None, **context: Any) -> Response:
    """A page with the menu of the logged-in user's role, for the region it is about."""
    return render(request, template, nav_region=region, **context)


@router.get("/")
def root(request: Request, session: SessionDep, signing: SigningDep) -> Response:
    """The start: the user's own pages, or the login page."""
    user = session_user(session, request.cookies.get(SESSION_COOKIE), signing.secret())
    if user is None:
        return redirect("/login")
    return redirect(home_of(session, user))


@router.get("/login")
def login_page(request: Request, session: SessionDep, next: str = "") -> Response:
    """The login form."""
    return page(request, "login.html", next=next if is_safe_next(next) else "", failed="", username="")


@router.post("/login", dependencies=[Csrf])
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    signing: SigningDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the password (limited per account and client address like the API's token endpoint) and start a
    session."""
    limiter: LoginLimiter = request.app.state.login_limiter
    peer = request.client.host if request.client else None
    account = username[:200]
    client = client_address(peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies)
    wait = limiter.retry_after(account, client)
    user = None if wait else session.scalar(select(User).where(User.username == username))
    ok = not wait and verify_password(password, user.password_hash if user else None) and user is not None
    if not ok or user is None or not user.active:
        if not wait:
            limiter.failed(account, client)
        i18n.current_locale.set(i18n.pick_locale(request.cookies.get(LANG_COOKIE)))
        message = (
            i18n.gettext("Too many failed logins; try again in {seconds} s.").format(seconds=wait)
            if wait
            else i18n.gettext("Wrong username or password.")
        )
        status = 429 if wait else 401
        return render(
            request,
            "login.html",
            status_code=status,
            next=next,
            failed=message,
            username=username,
        )
    response = redirect(next if next and is_safe_next(next) else home_of(session, user))
    set_cookie(
        response,
        settings,
        SESSION_COOKIE,
        session_token(user, signing.secret(), settings.token_minutes),
        settings.token_minutes * 60,
    )
    return response


@router.post("/logout", dependencies=[Csrf])
def logout(settings: SettingsDep) -> Response:
    """End the session."""
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.post("/lang", dependencies=[Csrf])
def choose_language(
    settings: SettingsDep, lang: Annotated[str, Form(max_length=5)], next: Annotated[str, Form(max_length=2000)] = "/"
) -> Response:
    """Switch the page language (Swedish or English) and come back to the same page."""
    response = redirect(next if is_safe_next(next) else "/")
    set_cookie(response, settings, LANG_COOKIE, i18n.pick_locale(lang), 365 * 24 * 3600)
    return response


def region_books(session: Session, subject: Subject, region: Region, as_of: date) -> dict[str, Any]:
    """The region's books (budget, committed, left per programme) from the programmes the subject may read."""
    progs = [engine_object(PROGRAMMES, r) for r in session.scalars(services.scoped(PROGRAMMES, subject, region))]
    units = [engine_object(UNITS, r) for r in session.scalars(services.scoped(UNITS, subject, region))]
    entries = []
    for row in commitments.region_commitments(session, region.id):
        held, months = commitments.held(row)
        entries.append(
            books.Entry(row.programme_ref, row.earmark_ref, row.unit_ref, row.start, row.grant, held, months, row.paid)
        )
    return books.region_books(progs, units, entries, as_of)


def _status_counts(session: Session, kind_name: str, subject: Subject, region: Region) -> dict[str, int]:
    kind = KINDS[kind_name]
    table: Any = kind.table
    statement = (
        services.scoped(kind, subject, region).with_only_columns(table.status, func.count()).group_by(table.status)
    )
    return {status: n for status, n in session.execute(statement)}


def coordinator_only(subject: Subject) -> None:
    """Region pages are the coordinators' (and admins'); a clinic gets the API's refusal for programmes."""
    if subject.role is Role.CLINIC:
        raise Forbidden("this needs the role admin or coordinator")


@router.get("/regions/{region}")
def overview(request: Request, region: str, session: SessionDep, subject: WebSubject) -> Response:
    """The region at a glance: offers, candidates, supervisors, programmes, money and rounds."""
    reg = services.region_for(session, subject, region)
    if subject.role is Role.CLINIC:
        return redirect(home_of(session, request.state.user))
    counts = {name: services.count_rows(session, services.scoped(kind, subject, reg)) for name, kind in KINDS.items()}
    as_of = request.app.state.settings.default_round_date or date.today()
    ledger = region_books(session, subject, reg, as_of)
    rounds = list(
        session.scalars(
            rounds_readable_by(subject).where(MatchRound.region_id == reg.id).order_by(MatchRound.id.desc()).limit(10)
        )
    )
    held = commitments_readable_by(subject).where(Commitment.region_id == reg.id)
    chart = money_bars(
        [(p["programme_id"], p["budget"], p["committed"], 0) for p in ledger["programmes"]],
        i18n.gettext("Money per programme: budget and committed"),
    )
    return page(
        request,
        "overview.html",
        region=reg.code,
        reg=reg,
        counts=counts,
        offers=_status_counts(session, "offers", subject, reg),
        candidates=_status_counts(session, "candidates", subject, reg),
        ledger=ledger,
        rounds=rounds,
        chart=chart,
        commitment_count=services.count_rows(session, held),
    )


def _search(statement: Any, table: Any, text: str) -> Any:
    """Refs and names containing the text, and free text in the stored object (specialty, municipality, ...)."""
    like = f"%{text.lower()}%"
    conditions = [func.lower(table.ref).like(like)]
    if hasattr(table, "name"):
        conditions.append(func.lower(table.name).like(like))
    return statement.where(or_(*conditions))


@router.get("/regions/{region}/{kind_name}")
def object_list(
    request: Request,
    region: str,
    kind_name: str,
    session: SessionDep,
    subject: WebSubject,
    q: Annotated[str, Query(max_length=100)] = "",
    status: Annotated[str, Query(max_length=32)] = "",
    profession: Annotated[str, Query(max_length=32)] = "",
    unit: Annotated[str, Query(max_length=64)] = "",
    offset: Offset = 0,
) -> Response:
    """A list of one kind of region object with search, filters and paging (the API's scoping)."""
    kind = KINDS.get(kind_name)
    if kind is None or kind_name == "rounds":
        raise NotFound(f"no page {kind_name}")
    reg = services.region_for(session, subject, region)
    coordinator_only(subject)
    table: Any = kind.table
    statement = services.scoped(kind, subject, reg)
    if q:
        statement = _search(statement, table, q)
    if status and kind_name in STATUS_CHOICES:
        statement = statement.where(table.status == status)
    if profession and hasattr(table, "profession"):
        statement = statement.where(table.profession == profession)
    if unit and kind.per_unit:
        statement = statement.join(Unit, Unit.id == table.unit_id).where(Unit.ref == unit)
    total = services.count_rows(session, statement)
    rows = session.scalars(statement.order_by(table.ref).limit(PAGE_SIZE).offset(offset))
    items = [services.read_view(kind, subject, reg, row) for row in rows]
    query = {"q": q, "status": status, "profession": profession, "unit": unit}
    kept = {k: v for k, v in query.items() if v}

    def page_link(to: int) -> str:
        return f"?{urlencode({**kept, 'offset': to})}"

    return page(
        request,
        "list.html",
        region=reg.code,
        reg=reg,
        kind=kind_name,
        columns=LIST_COLUMNS[kind_name],
        items=items,
        total=total,
        offset=offset,
        size=PAGE_SIZE,
        query=query,
        statuses=STATUS_CHOICES.get(kind_name, ()),
        professions=PROFESSIONS if hasattr(table, "profession") else (),
        per_unit=kind.per_unit,
        prev_link=page_link(max(0, offset - PAGE_SIZE)) if offset > 0 else "",
        next_link=page_link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else "",
    )
