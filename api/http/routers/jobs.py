"""Jobs: read a job's status, progress and result; cancel it; list a region's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api import jobs
from api.core.schemas import Page
from api.core.services import page_of, region_for
from api.http.deps import CoordinatorOrAdmin, Offset, RowId, SessionDep
from api.http.errors import problem_responses
from models.jobs import SolverJob, jobs_readable_by

router = APIRouter(tags=["jobs"])
ERRORS = problem_responses(401, 403, 404, 409, 422)


class JobRead(BaseModel):
    """A piece of solver work: its state, progress and, once succeeded, its result."""

    id: int
    kind: str = Field(description="round, analysis, what_if, stable, reproduce, prices, why_not, why_not_candidate")
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    region: str
    round_id: int | None
    progress: dict[str, Any] = Field(description="phase, and while solving: objective, bound, gap, elapsed")
    result: dict[str, Any] | None = Field(description="once succeeded: what the route that queued it describes")
    error: dict[str, Any] | None = Field(description="once failed: {title, detail, issues?}")
    attempt: int = Field(description="runs so far (more than 1: a run lost its worker and the job ran again)")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queue_wait_s: float | None
    run_s: float | None
    url: str
    round_url: str | None


@router.get("/jobs/{job_id}", response_model=JobRead, responses=ERRORS)
def get_job(job_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """A job: status (queued, running, succeeded, failed, cancelled), progress, and its result once succeeded."""
    job, region = jobs.find(session, subject, job_id)
    return jobs.view(job, region)


@router.post("/jobs/{job_id}/cancel", response_model=JobRead, responses=ERRORS)
def cancel_job(job_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Cancel a queued or running job; nothing it computed is kept (a round job cancels its round)."""
    job, region = jobs.find(session, subject, job_id)
    jobs.cancel(session, subject, job)
    session.flush()
    session.refresh(job)
    return jobs.view(job, region)


@router.get("/regions/{region}/jobs", response_model=Page[JobRead], responses=ERRORS)
def list_jobs(
    region: str,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
    status: Annotated[str | None, Query(pattern="^(queued|running|succeeded|failed|cancelled)$")] = None,
) -> Any:
    """The region's jobs, newest first."""
    reg = region_for(session, subject, region)
    statement = jobs_readable_by(subject).where(SolverJob.region_id == reg.id)
    if status:
        statement = statement.where(SolverJob.status == status)
    return page_of(session, statement, SolverJob.id.desc(), limit, offset, lambda row: jobs.view(row, reg.code))
