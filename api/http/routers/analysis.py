"""Explaining and testing a round: fairness, shadow prices, why-not, diff against the previous round, what-if,
stable mode and reproduction. Coordinators and admins only; nothing here changes stored data.

What needs the solver is a job: `POST` answers 202 with the job (`Location`: its URL), whose result is what the
report is. The stored reports (computed by the job that follows every round) are read with `GET`; a `GET` whose
report is not stored yet answers 409 `report-not-ready` and never computes anything."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api import jobs
from api.core import logs, rounds
from api.core.errors import Conflict, NotFound, Unprocessable
from api.core.schemas import DiffRead, FairnessRead, PricesRead, WhyNotRead
from api.core.services import region_for
from api.http.deps import CoordinatorOrAdmin, RowId, SessionDep, SettingsDep
from api.http.errors import problem_responses
from api.http.routers.jobs import JobRead
from api.http.routers.rounds import wake
from matching.input.instance import Instance
from matching.input.validate import InvalidInstance
from matching.model.solution import Solution
from matching.reports.changes import Change, apply_changes
from matching.reports.diff import round_diff
from matching.reports.fairness import group_rows
from matching.reports.whynot import WhyNot
from models import MatchRound
from models.queries import Subject

router = APIRouter(prefix="/regions/{region}/rounds/{round_id}", tags=["analysis"])
ERRORS = problem_responses(400, 401, 403, 404, 409, 422)
JOB_ERRORS = problem_responses(401, 403, 404, 409, 422)
Seconds = Annotated[float, Query(gt=0, le=600, description="solver time per re-solve, at most the server's maximum")]


class WhatIf(BaseModel):
    """Changes to try on a round's input; nothing is stored."""

    model_config = ConfigDict(extra="forbid")

    changes: list[Change] = Field(min_length=1, max_length=50)
    time_limit_s: float = Field(default=10.0, gt=0, description="at most the server's maximum (120 s by default)")
    keep_proposals: bool = Field(default=True, description="keep the round's proposals where possible")


def _solved(session: Any, subject: Any, region: str, round_id: int) -> tuple[MatchRound, Instance, Solution]:
    reg = region_for(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id)
    if row.result is None:
        raise Conflict(f"round {row.id} has no result ({row.status})", slug="round-state")
    return row, Instance.model_validate_json(row.snapshot), rounds.stored_solution(session, row)


def _report(row: MatchRound, model: type[BaseModel] | None = None, **parts: str) -> dict[str, Any] | None:
    """The stored analysis, unless it is missing or failed (then the routes compute what they need). With a model,
    only if the stored parts (response field -> analysis key) still read as that model's fields: a report stored by
    an older version is computed again rather than answered in a shape the API no longer declares."""
    report = row.analysis if row.analysis and "error" not in row.analysis else None
    if report is None or model is None:
        return report
    try:
        for field, key in parts.items():
            TypeAdapter(model.model_fields[field].annotation).validate_python(report[key])
    except (KeyError, ValidationError):
        return None
    return report


def _invalid(exc: InvalidInstance) -> Unprocessable:
    issues = [{k: getattr(i, k) for k in ("path", "object_id", "field", "rule", "message")} for i in exc.issues]
    return Unprocessable(f"the changes break {len(issues)} rule(s)", slug="invalid-changes", issues=issues)


def _not_ready(request: Request, row: MatchRound) -> Conflict:
    return Conflict(
        f"the report of round {row.id} is not stored yet; POST {request.url.path} computes it as a job",
        slug="report-not-ready",
    )


def _job(
    request: Request, session: Any, subject: Subject, row: MatchRound, kind: str, params: dict[str, Any]
) -> JSONResponse:
    """Queue a job on the round and answer 202 with it (Location: the job's URL)."""
    job = jobs.submit(
        session,
        kind,
        row.region_id,
        round_id=row.id,
        params=params,
        created_by=subject.user_id,
        request_id=logs.request_id.get(),
        start_delay_s=request.app.state.settings.solver_start_delay_s,
    )
    session.commit()
    wake(request)
    region = region_for(session, subject, request.path_params["region"]).code
    return JSONResponse(
        jsonable_encoder(jobs.view(job, region)), status_code=202, headers={"Location": jobs.job_url(job.id)}
    )


@router.get("/fairness", response_model=FairnessRead, responses=ERRORS)
def fairness(region: str, round_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Match rate and mean score by profession, county, country of training and waiting band; each floor's price."""
    row, instance, solution = _solved(session, subject, region, round_id)
    report = _report(row, FairnessRead, groups="fairness", floor_prices="floor_prices") or {}
    return {
        "round_id": row.id,
        "groups": report.get("fairness") or [g.model_dump(mode="json") for g in group_rows(instance, solution)],
        "floor_prices": report.get("floor_prices", []),
        "floor_prices_ready": bool(report) or not instance.policy.floors,
    }


@router.get("/prices", response_model=PricesRead, responses=ERRORS)
def prices(region: str, round_id: RowId, request: Request, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Shadow prices from the LP relaxation: the value of one more krona per programme and one more seat per unit
    (stored with the round's reports; 409 `report-not-ready` until then)."""
    row, _, _ = _solved(session, subject, region, round_id)
    report = _report(row, PricesRead, prices="prices", lines="price_lines")
    if report is None:
        raise _not_ready(request, row)
    return {"round_id": row.id, "prices": report["prices"], "lines": report["price_lines"]}


@router.post("/prices", status_code=202, response_model=JobRead, responses=JOB_ERRORS)
def prices_job(region: str, round_id: RowId, request: Request, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Compute the shadow prices now, as a job (its result has the GET's form)."""
    row, _, _ = _solved(session, subject, region, round_id)
    return _job(request, session, subject, row, "prices", {})


@router.get("/why-not", response_model=WhyNotRead, responses=ERRORS)
def why_not_summary(
    region: str, round_id: RowId, request: Request, session: SessionDep, subject: CoordinatorOrAdmin
) -> Any:
    """Why each unmatched candidate was left out, summarised per cause, with the most common smallest changes
    (stored with the round's reports; 409 `report-not-ready` until then)."""
    row, _, _ = _solved(session, subject, region, round_id)
    report = _report(row, WhyNotRead, summary="why_not_summary", candidates="why_not")
    if report is None:
        raise _not_ready(request, row)
    return {"round_id": row.id, "summary": report["why_not_summary"], "candidates": report["why_not"]}


@router.post("/why-not", status_code=202, response_model=JobRead, responses=JOB_ERRORS)
def why_not_job(
    region: str, round_id: RowId, request: Request, session: SessionDep, subject: CoordinatorOrAdmin
) -> Any:
    """Compute why-not for every unmatched candidate now, with a short budget, as a job."""
    row, _, _ = _solved(session, subject, region, round_id)
    return _job(request, session, subject, row, "why_not", {"seconds": 10.0})


def _unmatched(row: MatchRound, instance: Instance, solution: Solution, ref: str) -> None:
    if ref not in {c.id for c in instance.candidates}:
        raise NotFound(f"candidate {ref} is not in round {row.id}")
    if any(a.candidate_id == ref for a in solution.assignments):
        raise Conflict(f"candidate {ref} is matched in round {row.id}", slug="candidate-matched")


@router.get("/candidates/{ref}/why-not", response_model=WhyNot, responses=ERRORS)
def candidate_why_not(
    region: str, round_id: RowId, ref: str, request: Request, session: SessionDep, subject: CoordinatorOrAdmin
) -> Any:
    """Why this candidate was not matched and the smallest change that would have placed them (stored with the
    round's reports; 409 `report-not-ready` until then)."""
    row, instance, solution = _solved(session, subject, region, round_id)
    _unmatched(row, instance, solution, ref)
    report = _report(row, WhyNotRead, candidates="why_not") or {}
    stored = next((w for w in report.get("why_not", []) if w["candidate_id"] == ref), None)
    if stored is None or not stored.get("computed"):
        raise _not_ready(request, row)
    return stored


@router.post("/candidates/{ref}/why-not", status_code=202, response_model=JobRead, responses=JOB_ERRORS)
def candidate_why_not_job(
    region: str,
    round_id: RowId,
    ref: str,
    request: Request,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    settings: SettingsDep,
    seconds: Seconds = 10.0,
) -> Any:
    """Search now, as a job, for the smallest change that would have placed this candidate (re-solved)."""
    row, instance, solution = _solved(session, subject, region, round_id)
    _unmatched(row, instance, solution, ref)
    budget = rounds.solver_seconds(seconds, settings, "seconds")
    return _job(request, session, subject, row, "why_not_candidate", {"candidate": ref, "seconds": budget})


@router.get("/diff", response_model=DiffRead, responses=ERRORS)
def diff(region: str, round_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Against the round this one re-ran: who kept their place, moved, was added or lost a place, and why."""
    row, instance, solution = _solved(session, subject, region, round_id)
    if row.previous_round_id is None:
        raise Conflict(f"round {row.id} is not a re-run of another round", slug="no-previous-round")
    _, _, before = _solved(session, subject, region, row.previous_round_id)
    changes = round_diff(before, instance, solution).model_dump(mode="json")
    return {"round_id": row.id, "previous_round_id": row.previous_round_id, **changes}


@router.post("/what-if", status_code=202, response_model=JobRead, responses=JOB_ERRORS)
def what_if(
    region: str,
    round_id: RowId,
    body: WhatIf,
    request: Request,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    settings: SettingsDep,
) -> Any:
    """Re-solve the round with changed inputs (budgets, caps, seats, slots, offers, candidates), as a job: its result
    says how many more or fewer are placed, and who. The round's proposals are kept where possible, so the diff
    shows what the change causes, not a reshuffle. Changes that break a rule are refused now (422)."""
    row, instance, _ = _solved(session, subject, region, round_id)
    try:
        apply_changes(instance, body.changes)
    except InvalidInstance as exc:
        raise _invalid(exc) from None
    params = body.model_dump(mode="json")
    params["time_limit_s"] = rounds.solver_seconds(body.time_limit_s, settings)
    return _job(request, session, subject, row, "what_if", params)


@router.post("/stable", status_code=202, response_model=JobRead, responses=JOB_ERRORS)
def stable(
    region: str,
    round_id: RowId,
    request: Request,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    settings: SettingsDep,
    seconds: Seconds = 10.0,
) -> Any:
    """Deferred acceptance, the optimiser and the optimiser without blocking pairs on this round, side by side (a
    job)."""
    row, _, _ = _solved(session, subject, region, round_id)
    return _job(
        request, session, subject, row, "stable", {"seconds": rounds.solver_seconds(seconds, settings, "seconds")}
    )


@router.post("/reproduce", status_code=202, response_model=JobRead, responses=JOB_ERRORS)
def reproduce(region: str, round_id: RowId, request: Request, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Solve the stored snapshot again (same policy, seed and deterministic mode) and compare with the stored result
    (a job)."""
    row, _, _ = _solved(session, subject, region, round_id)
    return _job(request, session, subject, row, "reproduce", {})
