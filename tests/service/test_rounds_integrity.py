"""Rounds under stress: idempotency keys, two rounds at once, a solver killed mid-solve."""

from __future__ import annotations

import os
import signal
import threading
import time

from sqlalchemy import func, select

from models import MatchRound, Proposal
from models.db import make_engine, make_sessionmaker
from tests.service.conftest import Service

BODY = {"round_date": "2027-01-15", "time_limit_s": 5}


def _slow(service: Service, seconds: float) -> None:
    service.app.state.runner.settings = service.app.state.settings.model_copy(update={"solver_start_delay_s": seconds})


def _fast(service: Service) -> None:
    service.app.state.runner.settings = service.app.state.settings


def _post(service: Service, key: str | None, body: dict, user: str = "coord01"):
    headers = {"Idempotency-Key": key} if key else {}
    return service.call(user, "POST", "/regions/01/rounds", json=body, headers=headers)


def _count(service: Service, model, *where) -> int:
    engine = make_engine(service.url)
    with make_sessionmaker(engine)() as session:
        n = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    engine.dispose()
    return n


def test_idempotency_key(service: Service) -> None:
    missing = _post(service, None, BODY)
    assert missing.status_code == 400
    assert missing.headers["content-type"] == "application/problem+json"
    first = _post(service, "idem-1", BODY)
    assert first.status_code == 202
    again = _post(service, "idem-1", BODY)
    assert again.status_code == 202 and again.json() == first.json()
    other = _post(service, "idem-1", {**BODY, "seed": 3})
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    service.wait_round("coord01", "01", first.json()["id"])
    assert _count(service, MatchRound, MatchRound.input_hash == first.json()["input_hash"]) >= 1
    # The same key from another user is that user's own key.
    assert _post(service, "idem-1", BODY, user="admin").status_code == 202
    service.wait_round("admin", "01", _post(service, "idem-1", BODY, user="admin").json()["id"])


def test_two_rounds_for_one_region_cannot_solve_at_once(service: Service) -> None:
    _slow(service, 30)
    results = []
    try:
        threads = [
            threading.Thread(target=lambda k=k: results.append(_post(service, f"race-{k}", BODY))) for k in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        _fast(service)
    codes = sorted(r.status_code for r in results)
    assert codes == [202, 409], [r.text for r in results]
    conflict = next(r for r in results if r.status_code == 409)
    assert conflict.json()["type"].endswith("round-already-solving")
    assert _count(service, MatchRound, MatchRound.status == "solving") == 1
    # Another region is not blocked.
    other = service.call("coord02", "POST", "/regions/02/rounds", json=BODY, headers={"Idempotency-Key": "r2"})
    assert other.status_code == 202
    assert service.wait_round("coord02", "02", other.json()["id"])["status"] == "solved"
    winner = next(r for r in results if r.status_code == 202).json()["id"]
    assert service.call("coord01", "POST", f"/regions/01/rounds/{winner}/cancel").status_code == 200


def test_killed_solver_leaves_round_failed_and_no_results(service: Service) -> None:
    good = _post(service, "kill-0", BODY).json()
    assert service.wait_round("coord01", "01", good["id"])["status"] == "solved"
    before = _count(service, Proposal)
    _slow(service, 30)
    try:
        created = _post(service, "kill-1", BODY).json()
    finally:
        _fast(service)
    deadline = time.monotonic() + 20
    pid = None
    while pid is None and time.monotonic() < deadline:
        engine = make_engine(service.url)
        with make_sessionmaker(engine)() as session:
            row = session.get(MatchRound, created["id"])
            pid = row.worker_pid if row and row.progress.get("phase") == "starting" else None
        engine.dispose()
        time.sleep(0.1)
    assert pid, "the solver process never started"
    os.kill(pid, signal.SIGKILL)
    failed = service.wait_round("coord01", "01", created["id"], timeout=30)
    assert failed["status"] == "failed" and failed["failure"]
    assert _count(service, Proposal, Proposal.round_id == created["id"]) == 0
    assert _count(service, Proposal) == before
    # The region is free again.
    again = _post(service, "kill-2", BODY)
    assert again.status_code == 202
    assert service.wait_round("coord01", "01", again.json()["id"])["status"] == "solved"


def test_stale_lease_is_failed_when_read(service: Service) -> None:
    """A solving round whose server died (no watcher, no heartbeat) is failed on the next read."""
    from datetime import timedelta

    from models.base import utcnow

    engine = make_engine(service.url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        template = session.scalars(select(MatchRound).where(MatchRound.region_id.is_not(None))).first()
        assert template is not None
        row = MatchRound(
            region_id=template.region_id,
            active_region_id=template.region_id,
            status="solving",
            round_date=template.round_date,
            request=template.request,
            snapshot=template.snapshot,
            input_hash=template.input_hash,
            progress={},
            lease_until=utcnow() - timedelta(seconds=5),
        )
        session.add(row)
        session.commit()
        round_id = row.id
    engine.dispose()
    region = "01" if template.region_id == 1 else "02"
    body = service.call("admin", "GET", f"/regions/{region}/rounds/{round_id}").json()
    assert body["status"] == "failed" and "heartbeat" in body["failure"]
