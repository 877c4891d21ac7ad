"""Pages of the solver jobs a coordinator starts on a round (what-if, stable comparison, reproduction, a candidate's
why-not): the form queues the job through the API's own route and the browser goes to the job's page, which shows
its status and progress, refreshed by htmx polling (no script of ours), and its result once it has ended. Nothing
waits for a solve inside a request.

The page reads the job through the same interface as `GET /api/v1/jobs/{id}` (`api.jobs.find` and `view`, with
the page user's subject), so it shows exactly what the API would, and only for the region and round it names.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api import jobs
from api.core import rounds, services
from api.core.errors import NotFound
from api.http.deps import RowId, SessionDep
from api.web.pages import coordinator_only, page
from api.web.render import WebRoute, redirect, render
from api.web.session import Csrf, WebSubject
from models import MatchRound, Region
from models.queries import Subject

router = APIRouter(route_class=WebRoute)
OPEN = ("queued", "running")
# The kinds a page starts, and the template of each one's result.
RESULT_TEMPLATES = {
    "what_if": "partials/job_what_if.html",
    "stable": "partials/job_stable.html",
    "reproduce": "partials/job_reproduce.html",
    "why_not_candidate": "partials/job_why_not.html",
}


def job_page_url(region: str, round_id: int, queued: Response) -> str:
    """The page of the job an API route queued (it answered 202 with the job)."""
    job_id = int(json.loads(bytes(queued.body))["id"])
    return f"/regions/{region}/rounds/{round_id}/jobs/{job_id}"


def _job(session: Session, subject: Subject, reg: Region, round_id: int, job_id: int) -> tuple[MatchRound, Any]:
    """The round and the job's API view, if the subject may read both and the job is this round's (else 404, as
    for a job id the subject may not see)."""
    row = rounds.get_round(session, subject, reg, round_id)
    job, region_code = jobs.find(session, subject, job_id)
    if region_code != reg.code or job.round_id != row.id or job.kind not in RESULT_TEMPLATES:
        raise NotFound(f"job {job_id} not found")
    return row, jobs.view(job, region_code)


@router.get("/regions/{region}/rounds/{round_id}/jobs/{job_id}")
def job_page(
    request: Request, region: str, round_id: RowId, job_id: RowId, session: SessionDep, subject: WebSubject
) -> Response:
    """The job while it runs (polled), and its result once it has ended."""
    reg = services.region_for(session, subject, region)
    coordinator_only(subject)
    row, job = _job(session, subject, reg, round_id, job_id)
    return page(
        request,
        "job.html",
        region=reg.code,
        reg=reg,
        round=row,
        job=job,
        open=job["status"] in OPEN,
        result_template=RESULT_TEMPLATES[job["kind"]],
        r=job["result"] or {},
    )


@router.get("/regions/{region}/rounds/{round_id}/jobs/{job_id}/status")
def job_status(
    request: Request, region: str, round_id: RowId, job_id: RowId, session: SessionDep, subject: WebSubject
) -> Response:
    """The live part of the job's page (htmx polls it); once the job has ended the page reloads with the result."""
    reg = services.region_for(session, subject, region)
    coordinator_only(subject)
    row, job = _job(session, subject, reg, round_id, job_id)
    if job["status"] not in OPEN:
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    return render(request, "partials/job_status.html", reg=reg, round=row, job=job)


@router.post("/regions/{region}/rounds/{round_id}/jobs/{job_id}/cancel", dependencies=[Csrf])
def cancel_job(region: str, round_id: RowId, job_id: RowId, session: SessionDep, subject: WebSubject) -> Response:
    """Stop the job (as POST /api/v1/jobs/{id}/cancel); nothing it computed is kept."""
    reg = services.region_for(session, subject, region)
    coordinator_only(subject)
    _job(session, subject, reg, round_id, job_id)
    found, _ = jobs.find(session, subject, job_id)
    jobs.cancel(session, subject, found)
    return redirect(f"/regions/{reg.code}/rounds/{round_id}/jobs/{job_id}")
