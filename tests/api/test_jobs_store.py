"""The job rows on a real SQLite database: a run's writes are fenced by its attempt, a job is stored once, jobs of
one lock never run together, and a job that keeps losing its worker fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api.core import job_store as store
from models import Region, SolverJob
from models.db import make_engine, make_sessionmaker, transaction
from models.migrate import upgrade


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        session.add(Region(code="01", name="Test"))
    yield factory
    engine.dispose()


def _submit(sessions: sessionmaker[Session], lock: str | None = None) -> int:
    with transaction(sessions) as session:
        return store.submit(session, "what_if", 1, lock=lock).id


def test_a_run_that_was_taken_over_can_write_nothing(sessions: sessionmaker[Session]) -> None:
    job_id = _submit(sessions)
    with transaction(sessions) as session:
        assert store.claim(session, job_id, "w1", max_attempts=3) == 1
    with transaction(sessions) as session:  # its worker was lost: another run takes the job over
        assert store.claim(session, job_id, "w2", max_attempts=3) == 2
    with transaction(sessions) as session:
        assert not store.beat(session, job_id, 1, {"phase": "solving"})
        assert not store.finish(session, job_id, 1, {"from": "the lost run"})
        assert not store.fail(session, job_id, 1, {"title": "x", "detail": "y"})
        assert store.finish(session, job_id, 2, {"from": "the new run"})
    with transaction(sessions) as session:
        assert not store.finish(session, job_id, 2, {"from": "the new run, again"})  # stored once
        job = session.get_one(SolverJob, job_id)
        assert (job.status, job.result, job.attempt) == ("succeeded", {"from": "the new run"}, 2)
        assert store.claim(session, job_id, "w3", max_attempts=3) is None  # a finished job never runs again


def test_jobs_of_one_lock_never_run_together(sessions: sessionmaker[Session]) -> None:
    first, second = _submit(sessions, "round-region-1"), _submit(sessions, "round-region-1")
    free = _submit(sessions)
    with transaction(sessions) as session:
        assert store.claim_next(session, "w1", 3) == (first, 1)
        assert store.claim_next(session, "w2", 3) == (free, 1)  # the second of the lock waits
        assert store.claim_next(session, "w3", 3) is None
        assert store.finish(session, first, 1, {})
        assert store.claim_next(session, "w3", 3) == (second, 1)


def test_a_job_that_keeps_losing_its_worker_fails(sessions: sessionmaker[Session]) -> None:
    job_id = _submit(sessions)
    for attempt in (1, 2):
        with transaction(sessions) as session:
            assert store.claim(session, job_id, "w", max_attempts=2) == attempt
            assert store.hand_back(session, job_id, attempt, 2, "its process died") == (
                "queued" if attempt == 1 else "failed"
            )
    with transaction(sessions) as session:
        job = session.get_one(SolverJob, job_id)
        assert job.status == "failed" and "tried 2 time(s)" in job.error["detail"]
