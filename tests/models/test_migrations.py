"""Migrations build the schema from empty, agree with the models, and go down and up again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from models.db import make_engine
from models.migrate import downgrade, pending_changes, upgrade
from tests.databases import BACKENDS, fresh_database


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_empty_matches_models_and_round_trips(backend: str, tmp_path: Path) -> None:
    url = fresh_database(backend, tmp_path)
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
