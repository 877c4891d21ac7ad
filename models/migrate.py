"""Alembic without alembic.ini: the migrations ship inside the package and run from code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from models.base import Base
from models.db import normalise_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Take the database at `url` down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def ours(name: str | None, type_: str, _parent: Any) -> bool:
    """Whether a database object is ours to compare (procrastinate's queue tables belong to procrastinate)."""
    return not (type_ == "table" and (name or "").startswith("procrastinate"))


def pending_changes(engine: Engine) -> list[Any]:
    """Differences between the ORM models and the migrated database (empty when they agree)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": ours})
        return list(compare_metadata(context, Base.metadata))
