"""Migrations build the schema from empty, agree with the models, and go down and up again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from models.db import make_engine
from models.migrate import downgrade, pending_changes, upgrade

POSTGRES_URL = os.environ.get("VARDMATCH_TEST_POSTGRES_URL")


def _empty(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'm.sqlite'}"
    assert POSTGRES_URL
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL


@pytest.mark.parametrize("backend", ["sqlite", *(["postgres"] if POSTGRES_URL else [])])
def test_upgrade_from_empty_matches_models_and_round_trips(backend: str, tmp_path: Path) -> None:
    url = _empty(backend, tmp_path)
    upgrade(url)
    engine = make_engine(url)
    try:
        assert pending_changes(engine) == []
        assert {"candidate", "candidate_identity", "match_round", "proposal", "audit_event"} <= set(
            inspect(engine).get_table_names()
        )
        downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(url)
        assert pending_changes(engine) == []
    finally:
        engine.dispose()
