"""Solver work as jobs, on every backend: many rounds and what-ifs at once on three workers (PostgreSQL: three
`vardmatch worker` processes; SQLite: the service's pool of three), one round per region solving at a time, a worker
killed with SIGKILL mid-job, nothing stored twice or half; reads that never write; request ids, metrics, health."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update

from api.jobs.local import child_env
from matching.generators.generate import generate
from matching.input.validate import load_instance
from models import MatchRound, Proposal, SolverJob
from models.base import utcnow
from models.db import make_engine, make_sessionmaker
from models.migrate import upgrade
from tests.databases import BACKENDS, fresh_database
from tests.service.conftest import FIXTURES, Service, seed, start_service
from tests.service.helpers import add_region, ok

REGIONS = [f"{n}" for n in range(21, 27)]
BODY = {"round_date": "2027-01-15", "time_limit_s": 2, "seed": 1}
WHAT_IF = {"changes": [{"target": "offer", "id": "O1", "set": {"slots": 2}}], "time_limit_s": 2}
TRACE = "trace-issue11-what-if"


@dataclass
class Cluster:
    """A service and the three workers that take its jobs."""

    service: Service
    backend: str
    logs: list[Path] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def rows(self, model: Any, *where: Any) -> list[Any]:
        engine = make_engine(self.service.url)
        with make_sessionmaker(engine)() as session:
            found = list(session.scalars(select(model).where(*where)))
        engine.dispose()
        return found


@pytest.fixture(scope="module", params=BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("jobs")
    url = fresh_database(request.param, tmp)
    upgrade(url)
    seed(url)
    postgres = request.param == "postgres"
    # No post-round reports here (they are jobs too, tested elsewhere): what is counted below is rounds and what-ifs.
    svc, server, thread = start_service(url, workers=0 if postgres else 3, analysis_seconds=0, shutdown_grace_s=1)
    for code in REGIONS:
        add_region(svc, code, load_instance(FIXTURES / "pin_and_forbid.json"), {f"coord{code}": None})
    cluster = Cluster(svc, request.param)
    if postgres:
        env = child_env(svc.app.state.settings)
        for index in range(3):
            log = tmp / f"worker{index}.log"
            cluster.logs.append(log)
            with log.open("wb") as out:
                cluster.workers.append(
                    subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=env, stderr=out, stdout=out)
                )
    yield cluster
    for worker in cluster.workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in cluster.workers:
        worker.wait(timeout=30)
    server.should_exit = True
    thread.join(timeout=20)
    svc.app.state.engine.dispose()


def _wait_all(svc: Service, job_ids: list[int], timeout: float) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    done: dict[int, dict[str, Any]] = {}
    with svc.client("admin") as client:
        while len(done) < len(job_ids) and time.monotonic() < deadline:
            for job_id in job_ids:
                if job_id not in done:
                    body = client.get(f"/jobs/{job_id}").json()
                    if body["status"] not in ("queued", "running"):
                        done[job_id] = body
            time.sleep(0.3)
    assert len(done) == len(job_ids), f"{len(job_ids) - len(done)} job(s) still open after {timeout} s"
    return done


def _kill_the_worker_of(cluster: Cluster, job_id: int, stop: threading.Event) -> None:
    """Once the job runs in its own process, SIGKILL the worker that runs it: PostgreSQL, its `vardmatch worker`
    process (and with it the job's process, which reads EOF on its lifeline); SQLite, the job's process (the
    pool's threads live in the service and cannot be killed alone)."""
    while not stop.is_set():
        [job] = cluster.rows(SolverJob, SolverJob.id == job_id)
        if job.status == "running" and "/" in (job.worker or ""):  # "host:worker pid/job process pid"
            claimer, process = job.worker.split("/")
            pid = int(process) if cluster.backend == "sqlite" else int(claimer.split(":")[1])
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def test_many_rounds_and_what_ifs_on_three_workers_with_one_killed(cluster: Cluster) -> None:
    svc = cluster.service
    base = {}
    for code in REGIONS:
        r = svc.call("admin", "POST", f"/regions/{code}/rounds", json=BODY, headers={"Idempotency-Key": f"base{code}"})
        base[code] = ok(r, 202)["id"]
    for code, round_id in base.items():
        assert svc.wait_round("admin", code, round_id, timeout=120)["status"] == "solved"

    # At once: two rounds per region and thirty what-ifs, the first of which takes a few seconds: its worker is
    # killed while it runs. Six seconds, since the killer's thread shares this process with the service and the 41
    # senders: with three, once, under a 5 GB benchmark beside the suite, it never saw the job running.
    with svc.solver_delay(6):
        long = svc.call("admin", "POST", f"/regions/{REGIONS[0]}/rounds/{base[REGIONS[0]]}/what-if", json=WHAT_IF)
    requests = [("POST", f"/regions/{code}/rounds", f"r{code}-{k}") for code in REGIONS for k in range(2)]
    requests += [("POST", f"/regions/{REGIONS[k % 6]}/rounds/{base[REGIONS[k % 6]]}/what-if", None) for k in range(29)]
    answers: list[httpx.Response] = [long]
    stop = threading.Event()
    killer = threading.Thread(target=_kill_the_worker_of, args=(cluster, long.json()["id"], stop))
    killer.start()

    def send(method: str, path: str, key: str | None) -> None:
        body, headers = (BODY, {"Idempotency-Key": key}) if key else (WHAT_IF, {"X-Request-ID": TRACE})
        answers.append(svc.call("admin", method, path, json=body, headers=headers))

    senders = [threading.Thread(target=send, args=request) for request in requests]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert [a.status_code for a in answers] == [202] * 42, [a.text for a in answers if a.status_code != 202]
    job_ids = [a.json()["job_id"] if "job_id" in a.json() else a.json()["id"] for a in answers]

    # Meanwhile: never two rounds of one region solving.
    most = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        solving = Counter(r.region_id for r in cluster.rows(MatchRound, MatchRound.status == "solving"))
        most = max([most, *solving.values()])
        if not cluster.rows(SolverJob, SolverJob.status.in_(("queued", "running"))):
            break
        time.sleep(0.2)
    stop.set()
    killer.join()
    assert most <= 1
    done = _wait_all(svc, job_ids, timeout=60)
    assert Counter(j["status"] for j in done.values()) == Counter({"succeeded": 42}), done

    # The killed worker's job ran again (its first run stored nothing), every other job once.
    jobs = {j.id: j for j in cluster.rows(SolverJob, SolverJob.id.in_(job_ids))}
    retried = [j.id for j in jobs.values() if j.attempt > 1]
    assert retried == [long.json()["id"]], {j.id: j.attempt for j in jobs.values()}

    # One round per region at a time, by the jobs' own times; every proposal stored once.
    rounds = [j for j in jobs.values() if j.kind == "round"]
    for code_rounds in _by_region(rounds).values():
        first, second = sorted(code_rounds, key=lambda j: j.started_at)
        assert first.finished_at <= second.started_at
    for job in rounds:
        [row] = cluster.rows(MatchRound, MatchRound.id == job.round_id)
        proposals = cluster.rows(Proposal, Proposal.round_id == row.id)
        assert row.status == "solved" and len(proposals) == row.result["placements"] > 0
        assert len({p.candidate_ref for p in proposals}) == len(proposals)

    if cluster.backend == "postgres":  # the request id reached the workers' logs, beside the job's id
        text = "".join(log.read_text() for log in cluster.logs)
        # Any what-if but the long one, which was sent without the request id (rows come back in no set order).
        what_if = next(j.id for j in jobs.values() if j.kind == "what_if" and j.id != long.json()["id"])
        assert TRACE in text and f'"job_id": {what_if}' in text
        assert jobs[what_if].request_id == TRACE


def _by_region(rounds: list[SolverJob]) -> dict[int, list[SolverJob]]:
    grouped: dict[int, list[SolverJob]] = {}
    for job in rounds:
        grouped.setdefault(job.region_id, []).append(job)
    return grouped


def test_reads_never_write(cluster: Cluster) -> None:
    """No INSERT, UPDATE or DELETE while reading rounds, jobs and reports, even of a round whose lease ran out."""
    svc = cluster.service
    code = REGIONS[0]
    [row] = cluster.rows(MatchRound, MatchRound.region_id == _region_id(cluster, code), MatchRound.status == "solved")[
        :1
    ]
    engine = make_engine(svc.url)
    with engine.begin() as connection:  # a round that looks abandoned: before, reading it failed it
        connection.execute(
            update(MatchRound).where(MatchRound.id == row.id).values(status="solving", lease_until=utcnow())
        )
    engine.dispose()
    writes: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not threading.current_thread().name.startswith("job-pool") and statement.split()[0].upper() in (
            "INSERT",
            "UPDATE",
            "DELETE",
        ):
            writes.append(statement)

    event.listen(svc.app.state.engine, "before_cursor_execute", count)
    try:
        paths = [
            f"/regions/{code}/rounds",
            f"/regions/{code}/rounds/{row.id}",
            f"/regions/{code}/rounds/{row.id}/proposals",
            f"/regions/{code}/jobs",
            f"/jobs/{cluster.rows(SolverJob, SolverJob.round_id == row.id)[0].id}",
        ]
        for path in paths:
            assert svc.call("admin", "GET", path).status_code == 200, path
        for path in ("/metrics", "/readyz", "/healthz"):
            httpx.get(svc.base_url + path, timeout=10)
    finally:
        event.remove(svc.app.state.engine, "before_cursor_execute", count)
    assert writes == []
    assert svc.call("admin", "GET", f"/regions/{code}/rounds/{row.id}").json()["status"] == "solving"


def _region_id(cluster: Cluster, code: str) -> int:
    from models import Region

    return int(cluster.rows(Region, Region.code == code)[0].id)


def test_metrics_and_health(cluster: Cluster) -> None:
    svc = cluster.service
    metrics = httpx.get(svc.base_url + "/metrics", timeout=10).text
    for name in (
        "vardmatch_http_requests_total",
        "vardmatch_job_queue_depth",
        "vardmatch_job_queue_wait_seconds",
        "vardmatch_round_solve_seconds",
        "vardmatch_round_gap",
        "vardmatch_workers",
    ):
        assert name in metrics, name
    workers = next(line for line in metrics.splitlines() if line.startswith("vardmatch_workers "))
    alive = 2 if cluster.backend == "postgres" else 3  # one of the three PostgreSQL workers was killed above
    assert float(workers.split()[1]) == alive
    ready = httpx.get(svc.base_url + "/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["workers"] == alive
    assert httpx.get(svc.base_url + "/healthz", timeout=10).json()["status"] == "ok"
    echoed = httpx.get(svc.base_url + "/healthz", headers={"X-Request-ID": "abc-123"}, timeout=10)
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(httpx.get(svc.base_url + "/healthz", headers={"X-Request-ID": "x" * 65}).headers["x-request-id"]) == 32


def test_a_long_what_if_holds_up_neither_reads_nor_a_solving_rounds_heartbeat(cluster: Cluster) -> None:
    """A what-if solving for seconds on one worker while a round of the region solves on another: reading the
    round's progress stays quick, and the round's heartbeat (its lease) never lapses."""
    svc = cluster.service
    instance = generate(200, 80, seed=3)  # money binds: CP-SAT uses its time
    add_region(svc, "30", instance, {"coord30": None})
    body = {**BODY, "time_limit_s": 1}
    base = ok(svc.call("admin", "POST", "/regions/30/rounds", json=body, headers={"Idempotency-Key": "hb0"}), 202)
    assert svc.wait_round("admin", "30", base["id"], timeout=120)["status"] == "solved"
    programme = instance.programmes[0]
    cut = {"target": "programme", "id": programme.id, "set": {"budget": programme.budget // 2}}
    long = {**WHAT_IF, "changes": [cut], "time_limit_s": 6}
    what_if = ok(svc.call("admin", "POST", f"/regions/30/rounds/{base['id']}/what-if", json=long), 202)
    solving = ok(svc.call("admin", "POST", "/regions/30/rounds", json={**body, "time_limit_s": 6},
                          headers={"Idempotency-Key": "hb1"}), 202)  # fmt: skip
    slowest, lapsed, together = 0.0, [], False
    with svc.client("admin") as client:
        while True:
            started = time.perf_counter()
            progress = client.get(f"/regions/30/rounds/{solving['id']}").json()
            slowest = max(slowest, time.perf_counter() - started)
            job = client.get(f"/jobs/{what_if['id']}").json()
            [row] = cluster.rows(MatchRound, MatchRound.id == solving["id"])
            if row.status == "solving" and row.lease_until is not None:
                lapsed += [row.lease_until] if row.lease_until < utcnow() else []
                together |= job["status"] == "running" and progress["status"] == "solving"
            if progress["status"] not in ("queued", "solving") and job["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
    assert progress["status"] == "solved" and job["status"] == "succeeded"
    assert together, "the what-if and the round never ran at the same time"
    # A read blocked behind the solve (the defect: a read took the write lock) waits for seconds of it; on the shared
    # 2-core machine, with two solves running beside it, a quick read still took 1.3 s once (CI, load 3-4).
    assert lapsed == [] and slowest < 3.0, (lapsed, slowest)


def test_sigterm_hands_a_running_job_back(cluster: Cluster) -> None:
    """A worker told to stop (SIGTERM) while a job runs longer than its grace time hands the job back: another
    worker runs it to the end (PostgreSQL: the second of the live workers; SQLite: the service's pool, restarted)."""
    from api.jobs.local import LocalPool

    svc = cluster.service
    code = REGIONS[1]
    [row] = cluster.rows(MatchRound, MatchRound.region_id == _region_id(cluster, code), MatchRound.name == "")[:1]
    with svc.solver_delay(3):
        job = ok(svc.call("admin", "POST", f"/regions/{code}/rounds/{row.id}/what-if", json=WHAT_IF), 202)
    deadline = time.monotonic() + 30
    while "/" not in (cluster.rows(SolverJob, SolverJob.id == job["id"])[0].worker or ""):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    [running] = cluster.rows(SolverJob, SolverJob.id == job["id"])
    if cluster.backend == "postgres":
        pid = int(running.worker.split("/")[0].split(":")[1])
        worker = next(w for w in cluster.workers if w.pid == pid)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0  # it stopped cleanly, after its grace time
    else:
        pool = svc.app.state.workers
        pool.stop()
        assert cluster.rows(SolverJob, SolverJob.id == job["id"])[0].status == "queued"
        svc.app.state.workers = LocalPool(pool.sessions, pool.settings, pool.size)
        svc.app.state.workers.start()
    done = svc.wait_job("admin", job)
    assert done["status"] == "succeeded" and done["attempt"] == 2, done
