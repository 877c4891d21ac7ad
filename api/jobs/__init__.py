"""Solver work as jobs: the small interface that a route, a page and a command all use.

- `submit(session, kind, region_id, ...)` queues a job in the caller's transaction (`api.core.job_store.submit`);
- `find(session, subject, job_id)` the job if the subject may read it (404 otherwise);
- `view(job, region_code)` its status, progress and, once succeeded, its result, as JSON;
- `cancel(session, subject, job)` stops it (409 if it had already ended).

Where jobs run: on PostgreSQL, procrastinate's queue and `vardmatch worker` processes (api/jobs/worker.py); on
SQLite, a pool of threads in the service (api/jobs/local.py). Either way each job runs in a child process of its
own (api/jobs/child.py) and what it computes is in api/jobs/kinds.py.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.core import job_store as store
from api.core.audit import audit
from api.core.errors import Conflict, NotFound
from api.core.job_store import submit
from models import Region
from models.jobs import SolverJob, jobs_readable_by
from models.queries import Subject

API_PREFIX = "/api/v1"
__all__ = ["cancel", "find", "job_url", "submit", "view", "wait"]


def job_url(job_id: int) -> str:
    """Where a job's status, progress and result are read."""
    return f"{API_PREFIX}/jobs/{job_id}"


def find(session: Session, subject: Subject, job_id: int) -> tuple[SolverJob, str]:
    """The job and its region's code, if the subject may read it; 404 otherwise."""
    row = session.execute(
        jobs_readable_by(subject)
        .add_columns(Region.code)
        .join(Region, Region.id == SolverJob.region_id)
        .where(SolverJob.id == job_id)
    ).first()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return row[0], row[1]


def view(job: SolverJob, region_code: str) -> dict[str, Any]:
    """The API form of a job."""
    waited = (job.started_at - job.created_at).total_seconds() if job.started_at else None
    ran = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "region": region_code,
        "round_id": job.round_id,
        "progress": job.progress,
        "result": job.result,
        "error": job.error,
        "attempt": job.attempt,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "queue_wait_s": waited,
        "run_s": ran,
        "url": job_url(job.id),
        "round_url": f"{API_PREFIX}/regions/{region_code}/rounds/{job.round_id}" if job.round_id else None,
    }


def cancel(session: Session, subject: Subject, job: SolverJob) -> None:
    """Cancel a queued or running job (a round job cancels its round); 409 if it had already ended."""
    if not store.cancel(session, job):
        raise Conflict(f"job {job.id} is {job.status}; only a queued or running job can be cancelled", slug="job-state")
    audit(session, subject, "job.cancel", "job", job.id, job.region_id, kind=job.kind)


def wait(sessions: sessionmaker[Session], job_id: int, timeout_s: float) -> SolverJob | None:
    """The job once it has ended, or None if it is still open after timeout_s (reads only; for a page that shows a
    short job's result on the answer to the form that queued it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sessions() as session:
            job = session.get(SolverJob, job_id)
            if job is None or job.status not in ("queued", "running"):
                return job
        time.sleep(0.2)
    return None
