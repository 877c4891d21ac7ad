"""The audit log is append-only in the database itself, for everyone: triggers refuse UPDATE, DELETE and (on
PostgreSQL) TRUNCATE, whatever connection asks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from models import AuditEvent
from models.db import make_engine, make_sessionmaker, transaction
from models.migrate import upgrade
from tests.databases import BACKENDS, fresh_database


@pytest.mark.parametrize("backend", BACKENDS)
def test_audit_events_can_be_added_but_never_changed_or_removed(backend: str, tmp_path: Path) -> None:
    url = fresh_database(backend, tmp_path)
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        with transaction(sessions) as session:
            session.add(AuditEvent(actor_role="admin", action="x.create", object_type="x", object_id="1", detail={}))
        attempts = [
            update(AuditEvent).values(action="x.nothing"),
            update(AuditEvent).values(detail={"rewritten": True}),
            delete(AuditEvent),
        ]
        statements = [*attempts, *([text("TRUNCATE audit_event")] if backend == "postgres" else [])]
        for statement in statements:
            with sessions() as session, pytest.raises(DBAPIError, match="append-only"):
                session.execute(statement)
                session.commit()
        with transaction(sessions) as session:
            session.add(AuditEvent(actor_role="admin", action="x.update", object_type="x", object_id="1", detail={}))
        with sessions() as session:
            assert list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))) == ["x.create", "x.update"]
    finally:
        engine.dispose()
