"""The engine keeps the connections a burst of requests opened: the next burst reuses them instead of opening new ones
(a new PostgreSQL backend, or a new SQLite connection set up with its pragmas, for every request past the fifth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from models.db import make_engine
from tests.databases import BACKENDS, fresh_database

BURST = 20  # requests in flight at once: the load test's 20 readers


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_burst_of_requests_opens_no_new_connection(backend: str, tmp_path: Path) -> None:
    engine = make_engine(fresh_database(backend, tmp_path))
    opened: list[Any] = []
    event.listen(engine, "connect", lambda connection, _record: opened.append(connection))
    try:
        for _ in range(2):
            burst = [engine.connect() for _ in range(BURST)]
            for connection in burst:
                connection.close()
        assert len(opened) == BURST
    finally:
        engine.dispose()
