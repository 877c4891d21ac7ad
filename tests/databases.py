"""The databases integration tests run against: SQLite always, PostgreSQL when VARDMATCH_TEST_POSTGRES_URL is set
(`.ci/run` starts a server and sets it)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import make_url, text

from models.db import make_engine


def _database_of_this_worker(url: str | None) -> str | None:
    """The server's URL with a database of this pytest-xdist worker's own (made when missing): the workers run side
    by side, and each test drops and makes anew the public schema of the database it is given. Without xdist, the
    URL as it is."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    server = make_url(url)
    name = f"{server.database}_{worker}"
    engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")  # CREATE DATABASE needs it
    with engine.connect() as connection:
        if connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


POSTGRES_URL = _database_of_this_worker(os.environ.get("VARDMATCH_TEST_POSTGRES_URL"))
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
