"""Rounds under stress: idempotency keys, two rounds of one region at once, a job's process killed mid-solve."""

from __future__ import annotations

import os
import signal
import threading
import time

from sqlalchemy import func, select

from models import MatchRound, Proposal, SolverJob
from models.db import make_engine, make_sessionmaker
from tests.service.conftest import Service

BODY = {"round_date": "2027-01-15", "time_limit_s": 5}


def _post(service: Service, key: str | None, body: dict, user: str = "coord01"):
    headers = {"Idempotency-Key": key} if key else {}
    return service.call(user, "POST", "/regions/01/rounds", json=body, headers=headers)


def _count(service: Service, model, *where) -> int:
    engine = make_engine(service.url)
    with make_sessionmaker(engine)() as session:
        n = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    engine.dispose()
    return n


def _job(service: Service, job_id: int) -> SolverJob:
    engine = make_engine(service.url)
    with make_sessionmaker(engine)() as session:
        job = session.get_one(SolverJob, job_id)
    engine.dispose()
    return job


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


def test_two_rounds_of_one_region_queue_and_solve_one_at_a_time(service: Service) -> None:
    results = []
    with service.solver_delay(1):
        threads = [
            threading.Thread(target=lambda k=k: results.append(_post(service, f"race-{k}", BODY))) for k in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status_code for r in results) == [202, 202], [r.text for r in results]
        # Another region is not held up by region 01's queue.
        other = service.call("coord02", "POST", "/regions/02/rounds", json=BODY, headers={"Idempotency-Key": "r2"})
        assert other.status_code == 202
        ids = [r.json()["id"] for r in results]
        seen_both_solving = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = [service.call("coord01", "GET", f"/regions/01/rounds/{i}").json()["status"] for i in ids]
            # The two reads are two requests: the first round can finish and the second start between them. A
            # round never goes back to solving, so the first still solving after the second was read solving
            # means both were solving at that moment.
            again = service.call("coord01", "GET", f"/regions/01/rounds/{ids[0]}").json()["status"]
            seen_both_solving |= statuses == ["solving", "solving"] and again == "solving"
            if all(s not in ("queued", "solving") for s in statuses):
                break
            time.sleep(0.1)
        assert statuses == ["solved", "solved"] and not seen_both_solving
        assert service.wait_round("coord02", "02", other.json()["id"])["status"] == "solved"
    first, second = sorted((_job(service, r.json()["job_id"]) for r in results), key=lambda j: j.started_at)
    assert first.finished_at is not None and second.started_at is not None
    assert first.finished_at <= second.started_at  # the database's lock kept them apart


def test_killed_job_process_is_retried_and_stores_nothing_half(service: Service) -> None:
    good = _post(service, "kill-0", BODY).json()
    assert service.wait_round("coord01", "01", good["id"])["status"] == "solved"
    before = _count(service, Proposal)
    with service.solver_delay(30):
        created = _post(service, "kill-1", BODY).json()
        deadline = time.monotonic() + 30
        job = _job(service, created["job_id"])
        while "/" not in (job.worker or "") and time.monotonic() < deadline:
            time.sleep(0.1)
            job = _job(service, created["job_id"])
        assert job.worker and "/" in job.worker, "the job's process never started"
        os.kill(int(job.worker.rsplit("/", 1)[1]), signal.SIGKILL)  # worker: "host:pid/pid of the job's process"
        while _job(service, created["job_id"]).attempt < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        retried = service.call("coord01", "GET", f"/jobs/{created['job_id']}").json()
        assert retried["attempt"] == 2 and retried["status"] in ("queued", "running"), retried
        assert _count(service, Proposal, Proposal.round_id == created["id"]) == 0
        assert service.call("coord01", "POST", f"/regions/01/rounds/{created['id']}/cancel").status_code == 200
    assert _count(service, Proposal) == before
    # The region is free again.
    again = _post(service, "kill-2", BODY)
    assert again.status_code == 202
    assert service.wait_round("coord01", "01", again.json()["id"])["status"] == "solved"
