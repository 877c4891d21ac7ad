"""`vardmatch users create`: the first admin of a real install (and any other user) from the command line."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

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


@users_app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Login name (letters, digits, _ . @ -).")],
    role: Annotated[str, typer.Option("--role", help="admin, coordinator or clinic.")] = "admin",
    region: Annotated[str | None, typer.Option("--region", help="Region code (coordinators, clinic users).")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Unit id in the region (clinic users).")] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: VARDMATCH_DATABASE_URL or ./vardmatch.sqlite.")
    ] = None,
) -> None:
    """Create a user in the service's database (migrated to the newest schema first); the password is asked for
    on a terminal or read from the first line of standard input."""
    from api.core.errors import Problem
    from api.core.schemas import UserCreate
    from api.core.users import create_user
    from models.db import make_engine, make_sessionmaker, transaction
    from models.migrate import upgrade

    password = _read_password()
    try:
        body = UserCreate(username=username, password=password, role=role, region=region, unit=unit)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(fields)
    url = database_url or os.environ.get("VARDMATCH_DATABASE_URL") or DEFAULT_DATABASE
    upgrade(url)
    engine = make_engine(url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            user = create_user(session, None, body)
            user_id = user.id
    except Problem as exc:
        details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.extra.get("errors", []))
        _fail(exc.detail + (f" ({details})" if details else ""))
    finally:
        engine.dispose()
    scope = f" of region {region}" if region else ""
    scope += f", unit {unit}" if unit and role == "clinic" else ""
    typer.echo(f"created {role} {username}{scope} (user id {user_id})")
