"""`python -m api.jobs.child JOB_ID ATTEMPT`: run one claimed job in a process of its own.

The solver is CPU-bound and may hold the interpreter for long stretches; in its own process it never delays the
queue worker's heartbeat or the web server, and a worker can stop it (cancel, shutdown) without stopping itself.
A heartbeat thread records progress; it ends the process when the job is no longer this run's (cancelled, or
handed to another run) or when the worker that started it has died.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from api.core import job_store as store
from api.core import logs
from api.core.settings import Settings
from api.jobs.kinds import KINDS, JobError, Run, start_round
from models import MatchRound, RoundStatus
from models.base import utcnow
from models.db import make_engine, make_sessionmaker, transaction
from models.jobs import JobStatus, SolverJob

log = logging.getLogger("vardmatch.job")


class Heartbeat(threading.Thread):
    """Writes the job's heartbeat and progress (and its round's lease) about once a second."""

    def __init__(
        self, sessions: sessionmaker[Session], job: SolverJob, attempt: int, settings: Settings, lifeline: Any
    ) -> None:
        super().__init__(daemon=True)
        self.sessions, self.job, self.attempt, self.settings = sessions, job, attempt, settings
        self.lifeline = lifeline
        # Who runs it: the worker that claimed it, then this process (`host:pid/pid`).
        self.name = f"{job.worker or socket.gethostname()}/{os.getpid()}"
        self.progress: dict[str, Any] = {"phase": "starting"}
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def report(self, values: dict[str, Any]) -> None:
        """Progress from the solver callback: the phase, placements and score found, and the tier being decided
        with its objective, bound and gap (in per cent too); a report without figures keeps the last ones."""
        keys = ("strategy", "placements", "score", "tier", "objective", "bound", "gap", "gap_percent")
        with self.lock:
            figures = {k: values[k] for k in keys if k in values}
            kept = {k: v for k, v in self.progress.items() if k in keys}
            self.progress = {"phase": "solving", "step": str(values.get("phase", "")), **kept, **figures}

    def beat(self) -> bool:
        """Write heartbeat and progress; False when the job is no longer this run's."""
        with self.lock:
            progress = {**self.progress, "elapsed": round(time.monotonic() - self.started, 2)}
        with transaction(self.sessions) as session:
            alive = store.beat(session, self.job.id, self.attempt, progress, self.name)
            if alive and self.job.kind == "round":
                session.execute(
                    update(MatchRound)
                    .where(MatchRound.id == self.job.round_id, MatchRound.status == RoundStatus.SOLVING)
                    .values(lease_until=utcnow() + timedelta(seconds=self.settings.lease_s), progress=progress)
                )
            return alive

    def run(self) -> None:
        while not self.stop.wait(min(1.0, self.settings.lease_s / 3)):
            if self.lifeline is not None and self.lifeline.poll():
                os._exit(3)  # our worker died (EOF): the queue gives the job to another run, which must not meet us
            try:
                alive = self.beat()
            except Exception:  # the database may come back; the lease tells others if it does not
                log.exception("heartbeat failed")
                continue
            if not alive:
                os._exit(0)  # cancelled or taken over: nothing of ours may be written


def run(job_id: int, attempt: int, settings: Settings, lifeline: Any = None) -> int:
    """Run the job if it is still this run's; 0 when it ended (succeeded, cancelled, taken over), 1 when failed."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        job = session.get(SolverJob, job_id)
        if job is None or job.status != JobStatus.RUNNING or job.attempt != attempt:
            return 0
        session.expunge(job)
    logs.request_id.set(job.request_id)
    logs.job_id.set(job.id)
    heartbeat = Heartbeat(sessions, job, attempt, settings, lifeline)
    this_run = Run(sessions, job, attempt, settings, heartbeat.report)
    log.info("job started", extra={"kind": job.kind, "attempt": attempt, "round_id": job.round_id})
    try:
        if job.kind == "round" and not start_round(this_run):
            return 0
        if not heartbeat.beat():
            return 0
        heartbeat.start()
        time.sleep(float(job.params.get("start_delay_s", 0.0)))
        KINDS[job.kind](this_run)
        log.info("job finished", extra={"kind": job.kind, "attempt": attempt})
        return 0
    except JobError as exc:
        error = exc.body
    except Exception as exc:  # the job must end failed, whatever went wrong
        error = {"title": "job failed", "detail": f"{type(exc).__name__}: {exc}"[:2000]}
    finally:
        heartbeat.stop.set()
    log.warning("job failed", extra={"kind": job.kind, "attempt": attempt, "error": error.get("title")})
    with transaction(sessions) as session:
        store.fail(session, job_id, attempt, error)
    engine.dispose()
    return 1


def entry(job_id: int, attempt: int, settings: dict[str, Any], lifeline: Any = None) -> None:
    """A job's process, forked from the preloaded fork server (see local.start_child)."""
    chosen = Settings.model_validate(settings)
    logs.configure(fmt=chosen.log_format)
    # Solving is batch work: on the same cores as the service, requests come first. Deterministic solves count
    # deterministic time, so a lower priority changes how long they take, never what they find.
    os.nice(chosen.solver_nice)
    sys.exit(run(job_id, attempt, chosen, lifeline))


def main() -> None:
    """`python -m api.jobs.child JOB_ID ATTEMPT`, settings from the environment (for running one job by hand)."""
    entry(int(sys.argv[1]), int(sys.argv[2]), Settings().model_dump())


if __name__ == "__main__":
    main()
