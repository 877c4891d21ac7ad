"""Engines and sessions: SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# Connections kept open for reuse: as many as the service has requests in flight at once (20 readers and more). With
# SQLAlchemy's default of 5, every connection past the fifth was closed on its return and opened anew by the next
# request (a PostgreSQL backend started, or a SQLite file opened and set up, each time), most often exactly when the
# machine was busiest. Connections are opened only as needed: a process keeps no more than it once used at once.
POOL = {"pool_size": 30, "max_overflow": 10}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    # Deleted and overwritten rows (an erased identity) are zeroed in the file, not left in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets foreign keys, WAL and a busy timeout (the solver process writes too).

    Statement parameters are kept out of error messages: a failed INSERT of an identity must not put the
    personnummer into a log or a traceback."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # An in-memory database has one connection per thread (SingletonThreadPool): no pool to size.
        pool = POOL if make_url(url).database not in (None, "", ":memory:") else {}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 15}, hide_parameters=True, **pool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, **POOL)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
