"""Solver jobs: every piece of solver work (a round, a what-if, a report computed on demand) is one row here.

The row is what the API reads (status, progress, result); the queue that runs it is procrastinate on PostgreSQL
or the service's local pool on SQLite. `attempt` is a fencing token: each run claims the row by raising it, and
every later write of that run is guarded by it, so a run that lost its worker can never store over a newer one.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Select, String, Text, false, select
from sqlalchemy.orm import Mapped, mapped_column

from models.auth import Role
from models.base import Base, utcnow
from models.queries import Subject


class JobStatus(enum.StrEnum):
    """queued -> running -> succeeded | failed | cancelled (a run that loses its worker goes back to queued)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN = (JobStatus.QUEUED, JobStatus.RUNNING)


class SolverJob(Base):
    """One piece of solver work, its progress and its result."""

    __tablename__ = "solver_job"
    # One round job per round: a round is solved by exactly one job, however often that job is retried.
    __table_args__ = (
        Index(
            "uq_solver_job_round",
            "round_id",
            unique=True,
            sqlite_where="kind = 'round'",
            postgresql_where="kind = 'round'",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("match_round.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=JobStatus.QUEUED)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Jobs with the same lock never run at the same time (one solving round per region).
    lock: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(default=0)
    attempt: Mapped[int] = mapped_column(default=0)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # For /metrics: how long the solver ran and the gap it reached (round jobs).
    solve_seconds: Mapped[float | None]
    gap: Mapped[float | None]
    note: Mapped[str | None] = mapped_column(Text)


def jobs_readable_by(subject: Subject) -> Select[tuple[SolverJob]]:
    """Jobs the subject may read: admins all, coordinators their region's, clinics none."""
    statement = select(SolverJob)
    if subject.is_admin:
        return statement
    if subject.role is Role.COORDINATOR and subject.region_id is not None:
        return statement.where(SolverJob.region_id == subject.region_id)
    return statement.where(false())
