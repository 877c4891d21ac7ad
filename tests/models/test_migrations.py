"""Migrations build the schema from empty, agree with the models, and go down and up again."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from api.core.snapshot import import_instance
from matching.input.validate import load_instance
from models import Candidate, MatchRound, Offer, Proposal, Region
from models.db import make_engine, make_sessionmaker, transaction
from models.migrate import downgrade, pending_changes, upgrade
from tests.databases import BACKENDS, fresh_database

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "small"


def _proposal(row: MatchRound, candidate: Candidate, offer: Offer, answer: str = "pending") -> Proposal:
    """A proposal of `row` with placeholder money and score: what the migrations under test copy or keep."""
    return Proposal(
        round_id=row.id,
        candidate_id=candidate.id,
        offer_id=offer.id,
        unit_id=offer.unit_id,
        candidate_ref=candidate.ref,
        offer_ref=offer.ref,
        supervisor_ref="S1",
        programme_ref="P1",
        start=date(2027, 3, 1),
        months=3,
        total_cost=1,
        grant=1,
        unit_share=0,
        score=1,
        breakdown={},
        answer=answer,
    )


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


@pytest.mark.parametrize("backend", BACKENDS)
def test_0007_copies_decline_reasons_from_the_audit_log_and_goes_down_again(backend: str, tmp_path: Path) -> None:
    url = fresh_database(backend, tmp_path)
    upgrade(url)
    engine = make_engine(url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            region = Region(code="01", name="Region Test")
            session.add(region)
            session.flush()
            import_instance(session, region, load_instance(FIXTURES / "one_slot_two_candidates.json"))
            offer = session.scalars(select(Offer)).first()
            assert offer is not None
            candidates = list(session.scalars(select(Candidate).order_by(Candidate.id)))
            row = MatchRound(
                region_id=region.id,
                status="published",
                round_date=date(2027, 1, 15),
                request={},
                snapshot="{}",
                input_hash="x",
            )
            session.add(row)
            session.flush()
            for candidate, answer in zip(candidates, ("declined", "accepted"), strict=False):
                session.add(_proposal(row, candidate, offer, answer=answer))
        downgrade(url, "0006_issue11_jobs")
        assert "decline_reason" not in {c["name"] for c in inspect(engine).get_columns("proposal")}
        with engine.begin() as connection:
            ids = [i for (i,) in connection.execute(text("SELECT id FROM proposal ORDER BY id"))]
            # How the web page recorded reasons before 0007; the second names a proposal that was accepted, the
            # third a reason that is no code of the list: neither is copied.
            for object_id, reason in ((ids[0], "no_supervisor"), (ids[1], "period"), (ids[0], "Anna Andersson")):
                connection.execute(
                    text(
                        "INSERT INTO audit_event (at, actor_role, action, object_type, object_id, detail) "
                        "VALUES (:at, 'clinic', 'proposal.decline_reason', 'proposal', :id, :detail)"
                    ),
                    {"at": datetime.now(UTC), "id": str(object_id), "detail": json.dumps({"reason": reason})},
                )
        upgrade(url)
        assert pending_changes(engine) == []
        with engine.connect() as connection:
            stored = dict(connection.execute(text("SELECT id, decline_reason FROM proposal")).all())
        assert stored == {ids[0]: "no_supervisor", ids[1]: None}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_0009_indexes_stored_rounds_drops_worker_pid_and_keeps_their_proposals(backend: str, tmp_path: Path) -> None:
    url = fresh_database(backend, tmp_path)
    upgrade(url)
    engine = make_engine(url)
    snapshot = {
        "offers": [{"id": "O1", "unit_id": "U1"}, {"id": "O2", "unit_id": "U2"}],
        "supervisors": [{"id": "S1", "unit_id": "U1"}],
        "policy": {"seed": 3, "pins": [{"candidate_id": "C1", "offer_id": "O1"}], "floors": [], "keep": []},
    }
    try:
        with transaction(make_sessionmaker(engine)) as session:
            region = Region(code="01", name="Region Test")
            session.add(region)
            session.flush()
            import_instance(session, region, load_instance(FIXTURES / "one_slot_two_candidates.json"))
            offer = session.scalars(select(Offer)).one()
            candidate = session.scalars(select(Candidate)).first()
            assert candidate is not None
            rows = [
                MatchRound(
                    region_id=region.id,
                    status="solved",
                    round_date=date(2027, 1, 15),
                    request={},
                    snapshot=body,
                    input_hash="x",
                    analysis=analysis,
                )
                for body, analysis in (
                    (json.dumps(snapshot), {"error": "ValueError: no"}),
                    ("not json", {"fairness": []}),
                )
            ]
            session.add_all(rows)
            session.flush()
            session.add(_proposal(rows[0], candidate, offer))
        downgrade(url, "0008_issue13_load")
        columns = {c["name"] for c in inspect(engine).get_columns("match_round")}
        assert "worker_pid" in columns and not {"unit_index", "analysis_error"} & columns
        with engine.begin() as connection:
            connection.execute(text("UPDATE match_round SET worker_pid = 4242"))
        upgrade(url)
        assert pending_changes(engine) == []
        assert "worker_pid" not in {c["name"] for c in inspect(engine).get_columns("match_round")}
        with make_sessionmaker(engine)() as session:
            indexed, unreadable = session.scalars(select(MatchRound).order_by(MatchRound.id)).all()
            assert indexed.unit_index == {
                "units": {"U1": {"offers": ["O1"], "supervisors": ["S1"]}, "U2": {"offers": ["O2"], "supervisors": []}},
                "policy": {"seed": 3},  # no pairs or floors: they name candidates
            }
            assert unreadable.unit_index is None
            assert (indexed.analysis_error, unreadable.analysis_error) == ("ValueError: no", None)
            # Dropping the column lost no proposal (a table copy on SQLite would have cascaded a delete to them).
            assert session.scalars(select(Proposal.round_id)).all() == [indexed.id]
    finally:
        engine.dispose()
