"""The databases integration tests run against: SQLite always, PostgreSQL when VARDMATCH_TEST_POSTGRES_URL is set
(`.ci/run` starts a server and sets it)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from models.db import make_engine

POSTGRES_URL = os.environ.get("VARDMATCH_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


def fresh_database(backend: str, tmp: Path) -> str:
    """An empty database URL for the backend (PostgreSQL: its public schema dropped and made anew)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'test.sqlite'}"
    assert POSTGRES_URL
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL
