"""`vardmatch worker` (or `python -m api.jobs.worker`): a procrastinate worker for the solver queue on PostgreSQL.

Start any number, on any machine that reaches the database. Each takes jobs from the `solver` queue (procrastinate
fetches them with `FOR UPDATE SKIP LOCKED`, and jobs that share a lock, a region's rounds, never run at once) and
runs each in a child process. Every worker also watches the others: the jobs of a worker whose heartbeat stopped
(killed, machine gone) are put back on the queue, and their next run takes over the job's row by its attempt
number, so the lost run can never store anything. SIGTERM lets running jobs finish (within VARDMATCH_SHUTDOWN_GRACE_S)
and hands back the rest; a second SIGTERM stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import procrastinate
from procrastinate.job_context import JobContext
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from api.core import job_store as store
from api.core import logs
from api.core.settings import Settings
from api.jobs import scheduled
from api.jobs.local import start_child, warm_up
from models.db import make_engine, make_sessionmaker, normalise_url, transaction

log = logging.getLogger("vardmatch.worker")


class HandedBack(Exception):
    """The run ended without finishing its job, which is queued again."""


def libpq_url(url: str) -> str:
    """The database URL as libpq (and procrastinate) read it: no SQLAlchemy driver name."""
    parsed = make_url(normalise_url(url))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(settings: Settings, sessions: sessionmaker[Session]) -> procrastinate.App:
    """The procrastinate app with its tasks: run a job by its id, and the periodic tick that queues retention."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=libpq_url(settings.database_url)))
    name = f"{socket.gethostname()}:{os.getpid()}"

    def claim(job_id: int) -> int | None:
        with transaction(sessions) as session:
            return store.claim(session, job_id, name, settings.job_max_attempts)

    def hand_back(job_id: int, attempt: int, why: str) -> str:
        with transaction(sessions) as session:
            return store.hand_back(session, job_id, attempt, settings.job_max_attempts, why)

    # procrastinate retries a run that raised (a hand-back), up to more times than our own attempts allow: the
    # attempt number on the job's row decides when to give up.
    retry = procrastinate.RetryStrategy(max_attempts=settings.job_max_attempts + 1, wait=0)

    @app.task(name=store.TASK, queue=store.QUEUE, pass_context=True, retry=retry)
    async def run_job(context: JobContext, job_id: int) -> None:
        attempt = await asyncio.to_thread(claim, job_id)
        if attempt is None:
            return
        process = await asyncio.to_thread(start_child, settings, job_id, attempt)
        try:
            code = await asyncio.to_thread(process.wait)
        except asyncio.CancelledError:  # the worker shuts down and the grace time is over
            process.terminate()
            await asyncio.to_thread(process.wait)
            await asyncio.to_thread(hand_back, job_id, attempt, "its worker stopped")
            raise
        if await asyncio.to_thread(hand_back, job_id, attempt, f"its process ended with exit code {code}") == "queued":
            raise HandedBack(f"job {job_id} queued again after attempt {attempt}")

    if settings.retention_cron:
        # Procrastinate defers the tick once per scheduled time, whichever worker's deferrer is first; the queueing
        # lock refuses a second tick while one is queued. The tick only queues the day's retention jobs.
        @app.periodic(cron=settings.retention_cron, periodic_id=scheduled.RETENTION)
        @app.task(name=scheduled.TICK_TASK, queue=store.BACKGROUND, queueing_lock=scheduled.RETENTION)
        async def retention_tick(timestamp: int) -> None:
            await asyncio.to_thread(scheduled.tick, sessions, timestamp)

    return app


async def requeue_stalled(app: procrastinate.App, settings: Settings) -> None:
    """Forever: put back on the queue the jobs of workers whose heartbeat stopped."""
    while True:
        await asyncio.sleep(settings.worker_heartbeat_s)
        try:
            lost = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=settings.worker_stalled_s)
            for job in lost:
                try:
                    await app.job_manager.retry_job(job)
                    log.warning("job of a lost worker queued again", extra={"queue_job": job.id})
                except Exception:  # another worker was first
                    continue
            await app.job_manager.prune_stalled_workers(settings.worker_stalled_s)
        except Exception:
            log.exception("looking for stalled jobs failed")


async def serve_queue(settings: Settings, concurrency: int, queues: list[str]) -> None:
    """Run the worker until SIGTERM or SIGINT."""
    engine = make_engine(settings.database_url)
    app = make_app(settings, make_sessionmaker(engine))
    async with app.open_async():
        await asyncio.to_thread(warm_up)
        watcher = asyncio.create_task(requeue_stalled(app, settings))
        try:
            await app.run_worker_async(
                queues=queues,
                concurrency=concurrency,
                name="vardmatch",
                update_heartbeat_interval=settings.worker_heartbeat_s,
                stalled_worker_timeout=settings.worker_stalled_s,
                shutdown_graceful_timeout=settings.shutdown_grace_s,
                fetch_job_polling_interval=2.0,
                abort_job_polling_interval=2.0,
            )
        finally:
            watcher.cancel()
    engine.dispose()


def run_worker(settings: Settings, concurrency: int = 1, queues: list[str] | None = None) -> None:
    """`vardmatch worker`: refuse SQLite (serve runs its jobs itself), then serve the queues (default: both, the
    solver's and the background reports')."""
    if not normalise_url(settings.database_url).startswith("postgresql"):
        raise SystemExit("vardmatch worker needs PostgreSQL (VARDMATCH_DATABASE_URL); with SQLite, serve runs jobs")
    logs.configure(fmt=settings.log_format)
    queues = queues or [store.QUEUE, store.BACKGROUND]
    log.info("worker starting", extra={"concurrency": concurrency, "queues": queues})
    asyncio.run(serve_queue(settings, concurrency, queues))


def main() -> None:
    """`python -m api.jobs.worker`: a worker with `vardmatch worker`'s defaults, settings from the environment."""
    run_worker(Settings())


if __name__ == "__main__":
    main()
