"""Throughput of the job queue: M what-ifs submitted at once to 1, 2 and 4 workers; jobs per minute, queue wait and
run time. PostgreSQL: `vardmatch worker` processes (procrastinate); SQLite: the service's pool of N. Each run gets
a fresh database (PostgreSQL: a new database on the server, dropped after), a generated region with one solved round
and workers that are stopped at the end; everything stops by itself."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, select, text

from benchmarks.scratch import scratch_database


@dataclass
class JobsSettings:
    """One run's shape."""

    database_url: str | None = None  # None: SQLite; postgresql://...: databases made (and dropped) on that server
    workers: tuple[int, ...] = (1, 2, 4)
    jobs: int = 24
    candidates: int = 120
    offers: int = 50
    time_limit_s: float = 1.0
    seed: int = 3
    timeout_s: float = 600.0


def _prepare(url: str, settings: JobsSettings) -> tuple[int, int]:
    """Migrate, add a generated region and solve its round in this process; (region id, round id)."""
    from api.core.outcomes import store_result
    from api.core.rounds import RoundCreate, create_round
    from api.core.settings import Settings
    from api.core.snapshot import import_instance
    from matching.generators.generate import generate
    from matching.input.instance import Instance
    from matching.solvers.solve import solve
    from models import MatchRound, Region, Role, RoundStatus
    from models.db import make_engine, make_sessionmaker, transaction
    from models.migrate import upgrade
    from models.queries import Subject

    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    instance = generate(settings.candidates, settings.offers, seed=settings.seed)
    service = Settings(database_url=url)
    with transaction(sessions) as session:
        region = Region(code="99", name="Benchmark")
        session.add(region)
        session.flush()
        import_instance(session, region, instance)
        body = RoundCreate(round_date=instance.round_date, time_limit_s=settings.time_limit_s)
        system = Subject(user_id=None, role=Role.ADMIN)  # type: ignore[arg-type]
        row = create_round(session, system, region, body, service, None)
        region_id, round_id = region.id, row.id
        # The round is solved here, not by a worker: the timed jobs are the what-ifs alone.
        session.execute(text("DELETE FROM solver_job"))
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("DELETE FROM procrastinate_jobs"))
        session.execute(
            MatchRound.__table__.update()
            .where(MatchRound.id == round_id)
            .values(status=RoundStatus.SOLVING, active_region_id=region_id)
        )
    snapshot = Instance.model_validate_json(sessions().get_one(MatchRound, round_id).snapshot)
    with transaction(sessions) as session:
        store_result(session, round_id, solve(snapshot))
    engine.dispose()
    return region_id, round_id


def _submit(url: str, region_id: int, round_id: int, settings: JobsSettings) -> list[int]:
    from api.core import job_store as store
    from models import MatchRound
    from models.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(url)
    ids = []
    with transaction(make_sessionmaker(engine)) as session:
        snapshot = session.scalar(select(MatchRound.snapshot).where(MatchRound.id == round_id))
        assert snapshot is not None
        from matching.input.instance import Instance

        programme = Instance.model_validate_json(snapshot).programmes[0]
        for k in range(settings.jobs):
            change = {"target": "programme", "id": programme.id, "set": {"budget": programme.budget * (50 + k) // 100}}
            params = {"changes": [change], "time_limit_s": settings.time_limit_s, "keep_proposals": True}
            ids.append(store.submit(session, "what_if", region_id, round_id=round_id, params=params).id)
    engine.dispose()
    return ids


def _wait(url: str, ids: list[int], timeout_s: float) -> list[Any]:
    from models.db import make_engine, make_sessionmaker
    from models.jobs import SolverJob

    engine = make_engine(url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            with make_sessionmaker(engine)() as session:
                rows = list(session.scalars(select(SolverJob).where(SolverJob.id.in_(ids))))
            if all(r.status not in ("queued", "running") for r in rows):
                return rows
            time.sleep(0.2)
        raise RuntimeError(f"jobs still open after {timeout_s} s")
    finally:
        engine.dispose()


@contextmanager
def _workers(url: str, count: int) -> Iterator[None]:
    """count workers: `vardmatch worker` processes (PostgreSQL) or a pool in this process (SQLite)."""
    from api.core.settings import Settings

    settings = Settings(database_url=url, analysis_seconds=0, workers=count)
    if url.startswith("sqlite"):
        from api.jobs.local import LocalPool, warm_up
        from models.db import make_engine, make_sessionmaker

        warm_up()  # as a worker process does before it registers: the fork server is up before the clock starts
        engine = make_engine(url)
        pool = LocalPool(make_sessionmaker(engine), settings, count)
        pool.start()
        try:
            yield
        finally:
            pool.stop()
            engine.dispose()
        return
    from api.jobs.local import child_env

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker"],
            env=child_env(settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        _await_registered(url, count)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def _await_registered(url: str, count: int) -> None:
    from models.db import normalise_url

    engine = create_engine(normalise_url(url))
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                if (connection.scalar(text("SELECT count(*) FROM procrastinate_workers")) or 0) >= count:
                    return
            time.sleep(0.2)
        raise RuntimeError("the workers did not start")
    finally:
        engine.dispose()


def run_jobs(settings: JobsSettings) -> list[dict[str, Any]]:
    """One row per worker count: jobs per minute, queue wait (median, p90, max) and run time (median)."""
    rows = []
    backend = "sqlite" if settings.database_url is None or settings.database_url.startswith("sqlite") else "postgresql"
    for count in settings.workers:
        with scratch_database(settings.database_url, "jobs") as url:
            region_id, round_id = _prepare(url, settings)
            with _workers(url, count):
                started = time.monotonic()
                ids = _submit(url, region_id, round_id, settings)
                done = _wait(url, ids, settings.timeout_s)
                elapsed = time.monotonic() - started
        waits = sorted((r.started_at - r.created_at).total_seconds() for r in done if r.started_at)
        runs = [(r.finished_at - r.started_at).total_seconds() for r in done if r.finished_at and r.started_at]
        rows.append(
            {
                "backend": backend,
                "workers": count,
                "jobs": len(done),
                "failed": sum(r.status != "succeeded" for r in done),
                "seconds": round(elapsed, 1),
                "jobs_per_minute": round(len(done) / elapsed * 60, 1),
                "wait_median_s": round(statistics.median(waits), 2),
                "wait_p90_s": round(waits[min(len(waits) - 1, int(0.9 * len(waits)))], 2),
                "wait_max_s": round(waits[-1], 2),
                "run_median_s": round(statistics.median(runs), 2),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table, throughput against one worker of the same backend."""
    lines = [
        "| backend | workers | jobs | failed | seconds | jobs/min | vs 1 worker | wait p50 s | wait p90 s | wait max s "
        "| run p50 s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = {r["backend"]: r["jobs_per_minute"] for r in rows if r["workers"] == 1}
    for r in rows:
        ratio = f"{r['jobs_per_minute'] / base[r['backend']]:.2f}x" if base.get(r["backend"]) else "—"
        lines.append(
            f"| {r['backend']} | {r['workers']} | {r['jobs']} | {r['failed']} | {r['seconds']} | "
            f"{r['jobs_per_minute']} | {ratio} | {r['wait_median_s']} | {r['wait_p90_s']} | {r['wait_max_s']} | "
            f"{r['run_median_s']} |"
        )
    return "\n".join(lines)
