"""`vardmatch users create|list|set-scope`: the first admin of a real install (and any other user), the users and
their scopes, and changes of a user's role and scope from the command line (the same application services as the
admin routes, audited with `system` as the actor)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from api.core.errors import Problem

users_app = typer.Typer(help="Manage users directly in the database (the first admin of a new install).")
DEFAULT_DATABASE = "sqlite:///./vardmatch.sqlite"


def _read_password() -> str:
    """Asked twice on a terminal; otherwise the first line of standard input (for scripts)."""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _fail_invalid(exc: ValidationError) -> NoReturn:
    """Pydantic's refusal of the options, each with its field and rule (never the input: it may be a password)."""
    _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} [rule: {e['type']}]" for e in exc.errors()))


def _fail_problem(exc: Problem) -> NoReturn:
    """The service's refusal as the API would give it: each field with its message and rule, after the detail when
    the detail says more than the fields."""
    errors = exc.extra.get("errors", [])
    fields = "; ".join(f"{e['field']}: {e['message']} [rule: {e['type']}]" for e in errors)
    if not fields:
        _fail(f"{exc.detail} [rule: {exc.slug}]")
    _fail(fields if exc.detail in {e["message"] for e in errors} else f"{exc.detail} ({fields})")


def _database(database_url: str | None) -> str:
    return database_url or os.environ.get("VARDMATCH_DATABASE_URL") or DEFAULT_DATABASE


@contextlib.contextmanager
def _session(database_url: str | None) -> Iterator[Session]:
    """One transaction on the database (migrated to the newest schema first); a refusal by the service ends the
    command with its fields and rules."""
    from api.core.errors import Problem
    from models.db import make_engine, make_sessionmaker, transaction
    from models.migrate import upgrade

    url = _database(database_url)
    upgrade(url)
    engine = make_engine(url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            yield session
    except Problem as exc:
        _fail_problem(exc)
    finally:
        engine.dispose()


DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="Default: VARDMATCH_DATABASE_URL or ./vardmatch.sqlite.")
]


@users_app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Login name (letters, digits, _ . @ -).")],
    role: Annotated[str, typer.Option("--role", help="admin, coordinator or clinic.")] = "admin",
    region: Annotated[str | None, typer.Option("--region", help="Region code (coordinators, clinic users).")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Unit id in the region (clinic users).")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create a user in the service's database (migrated to the newest schema first); the password is asked for
    on a terminal or read from the first line of standard input."""
    from api.core.schemas import UserCreate
    from api.core.users import create_user

    password = _read_password()
    try:
        body = UserCreate(username=username, password=password, role=role, region=region, unit=unit)
    except ValidationError as exc:
        _fail_invalid(exc)
    with _session(database_url) as session:
        user_id = create_user(session, None, body).id
    scope = f" of region {region}" if region else ""
    scope += f", unit {unit}" if unit and role == "clinic" else ""
    typer.echo(f"created {role} {username}{scope} (user id {user_id})")


@users_app.command("list")
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of a table.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Every user with their role, region, unit and whether they are active (never a password or its hash)."""
    from sqlalchemy import select

    from api.core.users import user_views
    from models import User

    with _session(database_url) as session:
        views = user_views(session, list(session.scalars(select(User).order_by(User.username))))
    if as_json:
        typer.echo(json.dumps(views, indent=2))
        return
    columns = ("username", "role", "region", "unit", "active")
    rows = [[str(v[c]) if v[c] is not None else "-" for c in columns] for v in views]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    for line in [list(columns), *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


@users_app.command("set-scope")
def set_scope(
    username: Annotated[str, typer.Argument(help="The user to change.")],
    role: Annotated[str | None, typer.Option("--role", help="admin, coordinator or clinic.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Region code (coordinators, clinic users).")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Unit id in the region (clinic users).")] = None,
    no_region: Annotated[bool, typer.Option("--no-region", help="Clear the region.")] = False,
    no_unit: Annotated[bool, typer.Option("--no-unit", help="Clear the unit.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Change a user's role and scope as `PATCH /api/v1/users/{id}` does (the same checks and messages): what is
    given replaces that part of the scope, the rest is kept where the new role allows it. A change ends every
    session, token and API key of the user; the last active admin cannot be demoted. Audited as `user.scope` with
    `system` as the actor."""
    from sqlalchemy import select

    from api.core.schemas import UserUpdate
    from api.core.users import change_scope, user_views
    from models import User

    changes: dict[str, str | None] = {}
    for name, value, clear in (("region", region, no_region), ("unit", unit, no_unit)):
        if value is not None and clear:
            _fail(f"{name}: give --{name} or --no-{name}, not both [rule: one_of]")
        if value is not None or clear:
            changes[name] = value
    if role is not None:
        changes["role"] = role
    if not changes:
        _fail("nothing to change: give --role, --region, --unit, --no-region or --no-unit [rule: required]")
    try:
        # Only the fields named are set: an unnamed one is kept, a cleared one is null (as in the PATCH body).
        body = UserUpdate.model_validate(changes)
    except ValidationError as exc:
        _fail_invalid(exc)
    with _session(database_url) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            _fail(f"user {username} not found [rule: known_id]")
        [before] = user_views(session, [user])
        revoked = change_scope(session, None, user, body)
        [after] = user_views(session, [user])
    if before == after:
        typer.echo(f"{username} is already {_describe(after)}; nothing changed")
        return
    typer.echo(
        f"{username}: {_describe(before)} -> {_describe(after)}; every session and token of theirs ended"
        f" and {revoked} API key(s) revoked: they log in again with the new rights"
    )


def _describe(view: dict[str, object]) -> str:
    """A user's role and scope in words, e.g. `clinic of region 01, unit U001`."""
    text = str(view["role"])
    text += f" of region {view['region']}" if view["region"] else ""
    text += f", unit {view['unit']}" if view["unit"] else ""
    return text
