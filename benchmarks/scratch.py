"""A throwaway database for a benchmark run: a fresh SQLite file, or a new database on a PostgreSQL server, dropped
after (the jobs and load benchmarks both measure on one)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from models.db import normalise_url


@contextmanager
def scratch_database(url: str | None, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database: SQLite for None or a sqlite URL, else one on `url`'s PostgreSQL server."""
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix=f"vardmatch-{prefix}-") as folder:
            yield f"sqlite:///{Path(folder) / f'{prefix}.sqlite'}"
        return
    name = f"vardmatch_{prefix}_{uuid.uuid4().hex[:12]}"
    server = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()
