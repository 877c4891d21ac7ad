"""The job rows: submit, claim, heartbeat, finish, hand back and cancel. Every write after the claim is guarded by
the job's status and the claiming run's `attempt`, so a run that lost its worker can never write over a newer one,
and a job is stored at most once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, text, update
from sqlalchemy.orm import Session, aliased

from api.core.outcomes import fail_round
from models import MatchRound, RoundStatus
from models.base import utcnow
from models.jobs import OPEN, JobStatus, SolverJob

QUEUE = "solver"
BACKGROUND = "background"  # the reports computed after every round: long, and nobody waits for them
TASK = "vardmatch.run_job"
ROUND_PRIORITY = 10  # a round goes before what-ifs queued earlier: the region waits for it


def region_lock(region_id: int) -> str:
    """The lock shared by a region's rounds: one of them solves at a time."""
    return f"round-region-{region_id}"


def submit(
    session: Session,
    kind: str,
    region_id: int,
    *,
    round_id: int | None = None,
    params: dict[str, Any] | None = None,
    lock: str | None = None,
    priority: int = 0,
    created_by: int | None = None,
    request_id: str | None = None,
    start_delay_s: float = 0.0,
) -> SolverJob:
    """Add a queued job in the caller's transaction (on PostgreSQL it is put on procrastinate's queue in the same
    transaction, so a job is queued exactly when its row exists). `start_delay_s` is for tests: the job waits that
    long before it computes anything, wherever it runs."""
    job = SolverJob(
        kind=kind,
        region_id=region_id,
        round_id=round_id,
        status=JobStatus.QUEUED,
        params={**(params or {}), **({"start_delay_s": start_delay_s} if start_delay_s else {})},
        lock=lock,
        priority=priority,
        attempt=0,
        progress={"phase": "queued"},
        created_by=created_by,
        request_id=request_id,
    )
    session.add(job)
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        _defer(session, job)
    return job


def _defer(session: Session, job: SolverJob) -> None:
    # procrastinate's own SQL function for deferring (what App.defer calls), run on our connection so that the
    # queue entry commits or rolls back with the job row.
    session.execute(
        text(
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, :priority, :lock, NULL, "
            "CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
        ),
        {
            "queue": BACKGROUND if job.priority < 0 else QUEUE,
            "task": TASK,
            "priority": job.priority,
            "lock": job.lock,
            "args": json.dumps({"job_id": job.id}),
        },
    )


def _running(job_id: int, attempt: int) -> Any:
    return update(SolverJob).where(
        SolverJob.id == job_id, SolverJob.attempt == attempt, SolverJob.status == JobStatus.RUNNING
    )


def claim(session: Session, job_id: int, worker: str, max_attempts: int) -> int | None:
    """Start a run of the job (a queued one, or a running one whose worker was lost); its attempt number, or None
    if the job is finished or cancelled, or has used up its attempts (it is failed then)."""
    now = utcnow()
    attempt = session.scalar(
        update(SolverJob)
        .where(SolverJob.id == job_id, SolverJob.status.in_(OPEN))
        .values(status=JobStatus.RUNNING, attempt=SolverJob.attempt + 1, heartbeat_at=now, worker=worker)
        .returning(SolverJob.attempt)
    )
    if attempt is None:
        return None
    # The time after the claim, not before it: on SQLite the claim may wait for the write lock of a job finishing
    # (and freeing its lock) meanwhile, and a start stamped before that finish would look like an overlap.
    return _started(session, job_id, attempt, max_attempts, utcnow())


def claim_next(session: Session, worker: str, max_attempts: int, *, background: bool = True) -> tuple[int, int] | None:
    """Claim the queued job to run next (highest priority, oldest first) whose lock no running job holds, and only
    a foreground job (priority >= 0) unless `background`; the check and the claim are one statement, so two pools
    never take the same job or two jobs of one lock."""
    holder = aliased(SolverJob)
    held = exists().where(holder.status == JobStatus.RUNNING, holder.lock == SolverJob.lock)
    next_id = (
        select(SolverJob.id)
        .where(SolverJob.status == JobStatus.QUEUED, (SolverJob.lock.is_(None)) | ~held)
        .where(SolverJob.priority >= (-(2**31) if background else 0))
        .order_by(SolverJob.priority.desc(), SolverJob.id)
        .limit(1)
        .scalar_subquery()
    )
    now = utcnow()
    row = session.execute(
        update(SolverJob)
        .where(SolverJob.id == next_id, SolverJob.status == JobStatus.QUEUED)
        .values(status=JobStatus.RUNNING, attempt=SolverJob.attempt + 1, heartbeat_at=now, worker=worker)
        .returning(SolverJob.id, SolverJob.attempt)
    ).first()
    if row is None:
        return None
    job_id, attempt = row
    started = _started(session, job_id, attempt, max_attempts, utcnow())  # after the claim, as in `claim`
    return (job_id, started) if started is not None else None


def _started(session: Session, job_id: int, attempt: int, max_attempts: int, now: datetime) -> int | None:
    if attempt > max_attempts:
        give_up(session, job_id, attempt, f"its worker was lost {attempt - 1} time(s); not tried again")
        return None
    session.execute(
        update(SolverJob).where(SolverJob.id == job_id, SolverJob.started_at.is_(None)).values(started_at=now)
    )
    return attempt


def beat(session: Session, job_id: int, attempt: int, progress: dict[str, Any], worker: str | None = None) -> bool:
    """Record that the run is alive, with its progress (and which process runs it); False when the job is no
    longer this run's (cancelled, or handed to another run)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow(), "progress": progress}
    if worker is not None:
        values["worker"] = worker
    done = session.execute(_running(job_id, attempt).values(**values))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def finish(
    session: Session,
    job_id: int,
    attempt: int,
    result: dict[str, Any],
    *,
    solve_seconds: float | None = None,
    gap: float | None = None,
) -> bool:
    """Mark the run succeeded with its result, in the caller's transaction (which also stores whatever the job
    produced); False if the job is no longer this run's: the caller must then roll back."""
    done = session.execute(
        _running(job_id, attempt).values(
            status=JobStatus.SUCCEEDED,
            result=result,
            finished_at=utcnow(),
            progress={"phase": "done"},
            solve_seconds=solve_seconds,
            gap=gap,
        )
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def fail(session: Session, job_id: int, attempt: int, error: dict[str, Any]) -> bool:
    """Mark the run failed with a problem-like error ({title, detail, ...}); its round fails with it."""
    done = session.execute(
        _running(job_id, attempt).values(
            status=JobStatus.FAILED, error=error, finished_at=utcnow(), progress={"phase": "failed"}
        )
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    round_id = session.scalar(select(SolverJob.round_id).where(SolverJob.id == job_id, SolverJob.kind == "round"))
    if round_id is not None:
        fail_round(session, round_id, str(error.get("detail", "the job failed")))
    return True


def give_up(session: Session, job_id: int, attempt: int, why: str) -> bool:
    """Fail a job whose runs keep losing their worker."""
    return fail(session, job_id, attempt, {"title": "worker lost", "detail": why})


def hand_back(session: Session, job_id: int, attempt: int, max_attempts: int, why: str) -> str:
    """After a run ended without finishing its job (its process died, or its worker shuts down): queue the job
    again, or fail it once it has had max_attempts runs. Returns 'queued', 'failed' or 'done' (nothing to do)."""
    if attempt >= max_attempts:
        return "failed" if give_up(session, job_id, attempt, f"{why}; tried {attempt} time(s)") else "done"
    done = session.execute(
        _running(job_id, attempt).values(status=JobStatus.QUEUED, progress={"phase": "queued", "note": why})
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return "done"
    round_id = session.scalar(select(SolverJob.round_id).where(SolverJob.id == job_id, SolverJob.kind == "round"))
    if round_id is not None:
        # Back in the queue: it no longer holds its region, so the region's next round may go first.
        session.execute(
            update(MatchRound)
            .where(MatchRound.id == round_id, MatchRound.status == RoundStatus.SOLVING)
            .values(status=RoundStatus.QUEUED, active_region_id=None, progress={"phase": "queued", "note": why})
        )
    return "queued"


def stalled(session: Session, older_than_s: float) -> list[tuple[int, int]]:
    """(job id, attempt) of running jobs whose heartbeat is older than the given seconds."""
    before = utcnow() - timedelta(seconds=older_than_s)
    rows = session.execute(
        select(SolverJob.id, SolverJob.attempt).where(
            SolverJob.status == JobStatus.RUNNING, and_(SolverJob.heartbeat_at < before)
        )
    )
    return [(job_id, attempt) for job_id, attempt in rows]


def cancel(session: Session, job: SolverJob) -> bool:
    """Cancel a queued or running job (a running one stops at its next heartbeat; nothing it computed is kept);
    a round job cancels its round. False if the job had already ended."""
    done = session.execute(
        update(SolverJob)
        .where(SolverJob.id == job.id, SolverJob.status.in_(OPEN))
        .values(status=JobStatus.CANCELLED, finished_at=utcnow(), progress={"phase": "cancelled"})
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    if job.kind == "round" and job.round_id is not None:
        session.execute(
            update(MatchRound)
            .where(MatchRound.id == job.round_id, MatchRound.status.in_((RoundStatus.QUEUED, RoundStatus.SOLVING)))
            .values(status=RoundStatus.CANCELLED, active_region_id=None, finished_at=utcnow())
        )
    return True


def round_job(session: Session, round_id: int) -> SolverJob | None:
    """The job that solves a round."""
    return session.scalar(select(SolverJob).where(SolverJob.round_id == round_id, SolverJob.kind == "round"))


def round_job_ids(session: Session, round_ids: list[int]) -> dict[int, int]:
    """Round id -> the id of the job that solves it."""
    rows = session.execute(
        select(SolverJob.round_id, SolverJob.id).where(SolverJob.round_id.in_(round_ids), SolverJob.kind == "round")
    )
    return {round_id: job_id for round_id, job_id in rows if round_id is not None}
