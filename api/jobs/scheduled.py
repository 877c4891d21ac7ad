"""Work that runs on a schedule: retention (api/core/privacy.py), daily at VARDMATCH_RETENTION_CRON.

A tick of the schedule only queues work: one `retention` job per region, judged as of the tick's day, unless that
region's job for the day is already queued, running or done (so a second tick of the same day queues nothing). The
jobs are ordinary jobs (`GET /api/v1/jobs/{id}`, the region's job list, /metrics) that share one lock, so two
retention runs never overlap; each anonymises and records its success in one transaction (api/jobs/kinds.py).

Who ticks: on PostgreSQL, a procrastinate periodic task (api/jobs/worker.py), which procrastinate defers once per
scheduled time however many workers run, and whose queueing lock keeps a second tick from being queued meanwhile; on
SQLite, a `Schedule` thread of the pool that `serve` starts (api/jobs/local.py).
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime

from croniter import croniter
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from api.core import job_store as store
from models import Region
from models.db import transaction
from models.jobs import JobStatus, SolverJob

log = logging.getLogger("vardmatch.jobs")

RETENTION = "retention"  # the jobs' kind, and the lock they share
TICK_TASK = "vardmatch.retention"  # the procrastinate periodic task
PRIORITY = -1  # a background job: it never holds up a round or a what-if


def day_of(timestamp: float) -> date:
    """The (local) day of a scheduled time: retention judges as of that day, as `vardmatch retention` judges today."""
    return datetime.fromtimestamp(timestamp).date()


def schedule_retention(session: Session, day: date) -> list[SolverJob]:
    """Queue a retention job for `day` in every region that has none queued, running or done for that day."""
    if session.get_bind().dialect.name == "postgresql":
        # Two ticks at once (two services, a tick and a manual one) wait for each other here, so the second sees
        # the first one's jobs.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(TICK_TASK.encode())})
    taken = set(
        session.scalars(
            select(SolverJob.region_id).where(
                SolverJob.kind == RETENTION,
                SolverJob.status.in_((JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED)),
                SolverJob.params["day"].as_string() == day.isoformat(),
            )
        )
    )
    regions = session.scalars(select(Region).where(Region.id.not_in(taken)).order_by(Region.code))
    return [
        store.submit(session, RETENTION, region.id, params={"day": day.isoformat()}, lock=RETENTION, priority=PRIORITY)
        for region in regions
    ]


def tick(sessions: sessionmaker[Session], timestamp: float) -> list[int]:
    """One tick of the schedule (what the periodic task and the SQLite schedule run): the ids of the jobs queued."""
    with transaction(sessions) as session:
        queued = [job.id for job in schedule_retention(session, day_of(timestamp))]
    log.info("retention scheduled", extra={"day": day_of(timestamp).isoformat(), "jobs": len(queued)})
    return queued


def next_time(cron: str, after: datetime) -> datetime:
    """The first scheduled time after `after`; the cron expression is in UTC, as procrastinate reads it."""
    found: datetime = croniter(cron, after).get_next(datetime)
    return found


class Schedule(threading.Thread):
    """On SQLite: ticks at every scheduled time while the service runs, and wakes its pool to run the jobs."""

    def __init__(self, sessions: sessionmaker[Session], cron: str, wake: Callable[[], None]) -> None:
        super().__init__(name="job-schedule", daemon=True)
        self.sessions, self.cron, self.wake = sessions, cron, wake
        self.stopping = threading.Event()

    def fire(self, timestamp: float) -> list[int]:
        """Tick as the schedule does at `timestamp` (also how a test triggers it without waiting for the time)."""
        queued = tick(self.sessions, timestamp)
        self.wake()
        return queued

    def run(self) -> None:
        due = next_time(self.cron, datetime.now(UTC))
        while not self.stopping.wait(min(60.0, max(0.0, (due - datetime.now(UTC)).total_seconds()))):
            if datetime.now(UTC) < due:
                continue  # woken early to look at the clock again (it may have been changed)
            try:
                self.fire(due.timestamp())
            except Exception:  # the database may come back by the next time
                log.exception("scheduled retention failed")
            due = next_time(self.cron, datetime.now(UTC))
