"""A page of a region's candidates or offers is read in id order without sorting, and its count from the index of the
region's live rows alone, never the table row by row, however many rows the region holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Select, func, insert, select, text
from sqlalchemy.engine import Connection

from api.core import services
from api.core.snapshot import CANDIDATES, OFFERS, Kind
from models import Candidate, Offer, Region, Role, Unit
from models.db import make_engine
from models.migrate import upgrade
from models.queries import Subject
from tests.databases import BACKENDS, fresh_database

COORDINATOR = Subject(user_id=1, role=Role.COORDINATOR, region_id=1)
REGIONS, ROWS = 4, 1_000  # rows of each kind per region
ARCHIVED = datetime(2026, 12, 1, tzinfo=UTC)


def _fill(engine: Engine) -> None:
    """Regions of many candidates and offers (a few archived), and the planner's statistics of them."""
    owned = {"data": {}, "version": 1}
    with engine.begin() as connection:
        connection.execute(insert(Region), [{"id": r, "code": f"{r:02d}", "name": "R"} for r in range(1, REGIONS + 1)])
        connection.execute(
            insert(Unit), [{"id": r, "region_id": r, "ref": "U", **owned} for r in range(1, REGIONS + 1)]
        )
        for table, extra in (
            (Candidate, {"profession": "nurse"}),
            (Offer, {"status": "published", "profession": "nurse"}),
        ):
            rows = [
                {"region_id": r, "ref": f"X{i}", "archived_at": ARCHIVED if i % 10 == 0 else None, **owned, **extra}
                | ({"unit_id": r} if table is Offer else {})
                for i in range(ROWS)
                for r in range(1, REGIONS + 1)
            ]
            connection.execute(insert(table), rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))


def _statements(kind: Kind) -> tuple[Select[Any], Select[Any]]:
    """The page and the count a coordinator's list of the kind runs (as services.page_of builds them)."""
    table: Any = kind.table
    listed = services.scoped(kind, COORDINATOR, Region(id=1, code="01"))
    page = listed.order_by(table.id).limit(50).offset(100)
    return page, select(func.count()).select_from(listed.subquery())


def _plan(connection: Connection, statement: Select[Any]) -> str:
    compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
    if connection.dialect.name == "sqlite":
        return " | ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    return " | ".join(str(row[0]) for row in connection.execute(text(f"EXPLAIN {compiled}")))


@pytest.mark.parametrize("kind", [CANDIDATES, OFFERS], ids=lambda k: k.name)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_page_is_read_in_order_and_its_count_from_the_live_rows_index(
    backend: str, kind: Kind, tmp_path: Path
) -> None:
    url = fresh_database(backend, tmp_path)
    upgrade(url)
    engine = make_engine(url)
    _fill(engine)
    index = f"ix_{kind.table.__tablename__}_live"
    try:
        with engine.connect() as connection:
            if backend == "postgres":
                # A table this small may be cheaper to read whole; the question is whether the index answers alone.
                connection.execute(text("SET enable_seqscan = off"))
            page, count = (_plan(connection, s) for s in _statements(kind))
    finally:
        engine.dispose()
    assert "TEMP B-TREE" not in page and "Sort" not in page, page
    if backend == "sqlite":
        assert f"COVERING INDEX {index}" in count, count
    else:
        assert f"Index Only Scan using {index}" in count, count
