"""Round pages for coordinators: start a round with its policy, watch it solve (htmx polling: objective, bound and
the gap as a growing SVG line; cancel), review the result (proposals by unit and profession with the clinics'
answers, money against budgets and caps, fairness, shadow prices, why-not), pin or forbid from the table and
re-run, read the diff, publish. A what-if, the stable comparison, a reproduction and a candidate's why-not are
queued as jobs whose pages follow them (api/web/jobs.py).

Starting, re-running and the reports call the API's own route functions with the page user's subject, so a page
does exactly what the API does (idempotency, checks, refusals) and shows nothing the API would refuse.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter, defaultdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core import round_views, rounds, services
from api.core.errors import Problem, Unprocessable, field_errors
from api.http.deps import RowId, SessionDep, SettingsDep
from api.http.routers import analysis as analysis_api
from api.http.routers import rounds as rounds_api
from api.web import i18n
from api.web.charts import Point, format_series, gap_line, money_bars, objective_lines, parse_series
from api.web.jobs import job_page_url
from api.web.pages import coordinator_only, page
from api.web.render import WebRoute, redirect, render
from api.web.session import Csrf, WebSubject, form_list, form_values
from matching.input.instance import Instance, Pair, Weights
from models import MatchRound, Proposal, Region, Unit
from models.queries import Subject, proposals_readable_by, rounds_readable_by
from models.rounds import RoundStatus

router = APIRouter(route_class=WebRoute)
WEIGHTS = ("specialty", "language", "distance", "wish", "clinic", "waiting", "start")
FLOOR_ROWS = 3
FLOOR_GROUPS = ("profession", "county", "country", "waiting_band")
WHAT_IF_FIELDS = {
    "programme": ("budget",),
    "offer": ("slots",),
    "candidate": ("max_commute_km",),
    "supervisor": ("capacity",),
}


def _region(session: Session, subject: Subject, code: str) -> Region:
    reg = services.region_for(session, subject, code)
    coordinator_only(subject)
    return reg


@router.get("/regions/{region}/rounds")
def round_list(request: Request, region: str, session: SessionDep, subject: WebSubject) -> Response:
    """The region's rounds, newest first."""
    reg = _region(session, subject, region)
    rows = list(
        session.scalars(
            rounds_readable_by(subject).where(MatchRound.region_id == reg.id).order_by(MatchRound.id.desc())
        )
    )
    return page(request, "rounds.html", region=reg.code, reg=reg, rounds=rows)


def _new_form(request: Request, session: Session, reg: Region, values: dict[str, str], errors: list[Any]) -> Response:
    defaults = {"time_limit_s": "10", "objective": "lexicographic", "seed": "0", "round_date": ""}
    defaults.update({f"w_{name}": str(v) for name, v in Weights().model_dump().items()})
    default_date = request.app.state.settings.default_round_date
    defaults["round_date"] = default_date.isoformat() if default_date else date.today().isoformat()
    response = page(
        request,
        "round_new.html",
        region=reg.code,
        reg=reg,
        values={**defaults, **values},
        weights=WEIGHTS,
        floor_rows=range(FLOOR_ROWS),
        groups=FLOOR_GROUPS,
        key=secrets.token_urlsafe(16),
        errors=errors,
        issues=[],
        max_time=request.app.state.settings.max_time_limit_s,
    )
    response.status_code = 422 if errors else 200
    return response


@router.get("/regions/{region}/rounds/new")
def new_round(request: Request, region: str, session: SessionDep, subject: WebSubject) -> Response:
    """The form to start a round: date, objective, weights, floors, time limit."""
    reg = _region(session, subject, region)
    return _new_form(request, session, reg, {}, [])


def _floors(values: dict[str, str]) -> list[dict[str, Any]]:
    floors = []
    for i in range(FLOOR_ROWS):
        group, value = values.get(f"floor_group_{i}", ""), values.get(f"floor_value_{i}", "").strip()
        count = values.get(f"floor_count_{i}", "").strip()
        if group and value and count:
            floors.append({"group": group, "value": value, "min_count": int(count) if count.isdigit() else count})
    return floors


def round_body(values: dict[str, str]) -> rounds.RoundCreate:
    """The API's RoundCreate from the form (pydantic's errors name the fields)."""
    weights = {name: values.get(f"w_{name}", "0") for name in WEIGHTS}
    body: dict[str, Any] = {
        "name": values.get("name", ""),
        "objective": values.get("objective", "lexicographic"),
        "time_limit_s": values.get("time_limit_s") or "10",
        "seed": values.get("seed") or "0",
        "waiting_priority": values.get("waiting_priority") == "on",
        "weights": {k: int(v) if v.strip().isdigit() else v for k, v in weights.items()},
        "floors": _floors(values),
    }
    if values.get("round_date"):
        body["round_date"] = values["round_date"]
    return rounds.RoundCreate.model_validate(body)


def _started_id(response: Response) -> int:
    return int(json.loads(bytes(response.body))["id"])


@router.post("/regions/{region}/rounds/new", dependencies=[Csrf])
def start_round(
    request: Request, region: str, session: SessionDep, subject: WebSubject, settings: SettingsDep
) -> Response:
    """Start the round through the API's own route (same idempotency, checks and solver process)."""
    reg = _region(session, subject, region)
    values = form_values(request)
    try:
        body = round_body(values)
        started = rounds_api.start_round(reg.code, body, request, session, subject, settings, values.get("key"))
    except ValidationError as exc:
        return _new_form(request, session, reg, values, field_errors(list(exc.errors())))
    except Unprocessable as exc:
        session.rollback()
        errors = exc.extra.get("errors") or [
            {"field": i["field"], "message": i["message"], "type": i["rule"]} for i in exc.extra.get("issues", [])
        ]
        return _new_form(request, session, reg, values, errors or [{"field": "", "message": exc.detail, "type": ""}])
    return redirect(f"/regions/{reg.code}/rounds/{_started_id(started)}")


def _progress_context(row: MatchRound, series: str) -> dict[str, Any]:
    progress = row.progress or {}
    points = parse_series(series)
    # Every report is a point (from the first on), with or without a gap yet: the line starts when solving does.
    if progress.get("elapsed") is not None:
        point = Point(float(progress["elapsed"]), progress.get("objective"), progress.get("bound"), progress.get("gap"))
        if not points or points[-1].elapsed != point.elapsed:
            points.append(point)
    return {
        "progress": progress,
        "series": format_series(points),
        "chart": gap_line(points, i18n.gettext("The gap between the best solution found and the bound, over time")),
        "lines": objective_lines(points, i18n.gettext("The best objective found and the bound, over time")),
    }


@router.get("/regions/{region}/rounds/{round_id}")
def round_page(request: Request, region: str, round_id: RowId, session: SessionDep, subject: WebSubject) -> Response:
    """A solving round live, or a finished round's review."""
    reg = _region(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id)
    context: dict[str, Any] = {
        "region": reg.code,
        "reg": reg,
        "round": row,
        "view": round_views.round_view(session, subject, row, reg),
    }
    if row.status in (RoundStatus.QUEUED, RoundStatus.SOLVING):
        return page(request, "round_live.html", **context, polled=False, **_progress_context(row, ""))
    if row.result is None:
        return page(request, "round_failed.html", **context)
    return page(request, "round_review.html", **context, **review(session, subject, reg, row))


@router.get("/regions/{region}/rounds/{round_id}/progress")
def round_progress(
    request: Request,
    region: str,
    round_id: RowId,
    session: SessionDep,
    subject: WebSubject,
    series: Annotated[str, Query(max_length=20_000)] = "",
) -> Response:
    """The live part of a solving round (htmx polls it); once the round is done the page reloads."""
    reg = _region(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id)
    if row.status not in (RoundStatus.QUEUED, RoundStatus.SOLVING):
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    # The status in the page's heading goes along (out of band): queued, then solving.
    context = {"reg": reg, "round": row, "polled": True, **_progress_context(row, series)}
    return render(request, "partials/progress.html", **context)


def _by_unit_and_profession(session: Session, subject: Subject, row: MatchRound) -> list[dict[str, Any]]:
    """Proposals grouped by unit, then profession, with the answers clinics gave and their decline reasons."""
    statement = proposals_readable_by(subject).where(Proposal.round_id == row.id)
    proposals: list[Proposal] = list(session.scalars(statement))
    units = {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_({p.unit_id for p in proposals})))}
    instance = Instance.model_validate_json(row.snapshot)
    profession = {c.id: c.profession.value for c in instance.candidates}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for p in sorted(proposals, key=lambda p: (units[p.unit_id].ref, profession.get(p.candidate_ref, ""), p.id)):
        key = (units[p.unit_id].ref, profession.get(p.candidate_ref, ""))
        groups[key].append({"p": p, "reason": p.decline_reason or ""})
    return [
        {"unit": unit, "unit_name": _unit_name(units, unit), "profession": prof, "rows": items}
        for (unit, prof), items in groups.items()
    ]


def _unit_name(units: dict[int, Unit], ref: str) -> str:
    return next((u.name for u in units.values() if u.ref == ref), "")


def _money(instance: Instance, explanation: dict[str, Any]) -> dict[str, Any]:
    """Rows for the money charts: per programme (budget, committed before, granted now) and per unit (cap)."""
    committed: dict[str, int] = defaultdict(int)
    for c in instance.commitments:
        committed[c.programme_id] += c.grant
    programme_rows = [
        (p["programme_id"], p["budget"], committed[p["programme_id"]], p["granted"]) for p in explanation["programmes"]
    ]
    unit_rows = [
        (f"{p['programme_id']} {u['unit_id']}", u["cap"] or 0, 0, u["granted"])
        for p in explanation["programmes"]
        for u in p["units"]
    ]
    return {
        "programme_rows": programme_rows,
        "unit_rows": unit_rows,
        "programme_chart": money_bars(programme_rows, i18n.gettext("Money per programme against its budget"), "prog"),
        "unit_chart": money_bars(unit_rows[:30], i18n.gettext("Money per unit against the programme's cap"), "unit"),
    }


def review(session: Session, subject: Subject, reg: Region, row: MatchRound) -> dict[str, Any]:
    """Everything the review page shows, from the API's own explanation and the stored reports."""
    instance = Instance.model_validate_json(row.snapshot)
    explanation = rounds.round_explanation(session, row)
    stored = row.analysis if row.analysis and "error" not in row.analysis else None
    groups = _by_unit_and_profession(session, subject, row)
    answers = Counter(item["p"].answer for group in groups for item in group["rows"])
    return {
        "groups": groups,
        "answers": answers,
        "explanation": explanation,
        **_money(instance, explanation),
        "analysis": stored,
        "unmatched": rounds.stored_solution(session, row).unmatched,
        "what_if_fields": WHAT_IF_FIELDS,
        "offers": sorted(o.id for o in instance.offers),
        "programmes": sorted(p.id for p in instance.programmes),
    }


@router.post("/regions/{region}/rounds/{round_id}/cancel", dependencies=[Csrf])
def cancel_round(request: Request, region: str, round_id: RowId, session: SessionDep, subject: WebSubject) -> Response:
    """Cancel a solving round (the API's route: its solver is stopped)."""
    reg = _region(session, subject, region)
    rounds_api.cancel_round(reg.code, round_id, request, session, subject)
    return redirect(f"/regions/{reg.code}/rounds/{round_id}")


@router.post("/regions/{region}/rounds/{round_id}/publish", dependencies=[Csrf])
def publish_round(region: str, round_id: RowId, session: SessionDep, subject: WebSubject) -> Response:
    """Verify and publish the round: its proposals go to the clinics."""
    reg = _region(session, subject, region)
    rounds_api.publish_round(reg.code, round_id, session, subject)
    return redirect(f"/regions/{reg.code}/rounds/{round_id}")


def _pairs(values: list[str]) -> list[Pair]:
    pairs = []
    for value in values:
        candidate, _, offer = value.partition("|")
        if candidate and offer:
            pairs.append(Pair(candidate_id=candidate, offer_id=offer))
    return pairs


@router.post("/regions/{region}/rounds/{round_id}/rerun", dependencies=[Csrf])
def rerun_round(
    request: Request, region: str, round_id: RowId, session: SessionDep, subject: WebSubject, settings: SettingsDep
) -> Response:
    """Re-run with the pins and forbids ticked in the table (the API's re-run: minimal disruption)."""
    reg = _region(session, subject, region)
    body = rounds.Rerun(pins=_pairs(form_list(request, "pin")), forbids=_pairs(form_list(request, "forbid")))
    key = form_values(request).get("key") or secrets.token_urlsafe(16)
    started = rounds_api.rerun_round(reg.code, round_id, body, request, session, subject, settings, key)
    return redirect(f"/regions/{reg.code}/rounds/{_started_id(started)}")


@router.get("/regions/{region}/rounds/{round_id}/candidates/{ref}")
def candidate_page(
    request: Request,
    region: str,
    round_id: RowId,
    ref: str,
    session: SessionDep,
    subject: WebSubject,
) -> Response:
    """One candidate of the round: the match with its score breakdown, or why not and the smallest change (from
    the round's stored reports; else a button computes it as a job)."""
    reg = _region(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id)
    explained = rounds.candidate_explanation(session, row, ref)
    why = None
    if explained["match"] is None and row.result is not None:
        why = stored_why_not(request, reg.code, round_id, ref, session, subject)
    return page(
        request,
        "round_candidate.html",
        region=reg.code,
        reg=reg,
        round=row,
        ref=ref,
        e=explained,
        why=why,
        key=secrets.token_urlsafe(12),
        weights=Instance.model_validate_json(row.snapshot).policy.weights.model_dump(),
    )


def stored_why_not(request: Request, region: str, round_id: int, ref: str, session: Session, subject: Subject) -> Any:
    """The candidate's why-not as the round's reports stored it, or None until they hold it (the page then offers to
    compute it as a job)."""
    try:
        return analysis_api.candidate_why_not(region, round_id, ref, request, session, subject)
    except Problem as exc:
        if exc.slug != "report-not-ready":
            raise
    return None


@router.post("/regions/{region}/rounds/{round_id}/candidates/{ref}/why-not", dependencies=[Csrf])
def why_not_job(
    request: Request,
    region: str,
    round_id: RowId,
    ref: str,
    session: SessionDep,
    subject: WebSubject,
    settings: SettingsDep,
) -> Response:
    """Search for the smallest change that places the candidate, as a job (the API's route); the browser follows
    it on the job's page."""
    reg = _region(session, subject, region)
    queued = analysis_api.candidate_why_not_job(reg.code, round_id, ref, request, session, subject, settings, 5.0)
    return redirect(job_page_url(reg.code, round_id, queued))


@router.get("/regions/{region}/rounds/{round_id}/diff")
def diff_page(request: Request, region: str, round_id: RowId, session: SessionDep, subject: WebSubject) -> Response:
    """Against the round this one re-ran: who kept their place, moved, was added or lost a place, and why."""
    reg = _region(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id)
    changes = analysis_api.diff(reg.code, round_id, session, subject)
    return page(request, "round_diff.html", region=reg.code, reg=reg, round=row, d=changes)


@router.post("/regions/{region}/rounds/{round_id}/what-if", dependencies=[Csrf])
def what_if(
    request: Request,
    region: str,
    round_id: RowId,
    session: SessionDep,
    subject: WebSubject,
    settings: SettingsDep,
    target: Annotated[str, Form(pattern="^(programme|offer|candidate|supervisor)$")],
    target_id: Annotated[str, Form(min_length=1, max_length=64)],
    value: Annotated[str, Form(min_length=1, max_length=20)],
    time_limit_s: Annotated[float, Form(gt=0)] = 5.0,
) -> Response:
    """Re-solve the round with one changed figure (nothing stored) and show before and after."""
    reg = _region(session, subject, region)
    rounds.get_round(session, subject, reg, round_id)
    field = WHAT_IF_FIELDS[target][0]
    try:
        number = int(value.replace(" ", "").replace("\u00a0", ""))
    except ValueError:
        raise Unprocessable(
            "1 invalid field(s)", errors=[{"field": "value", "message": "a whole number", "type": "int_type"}]
        ) from None
    body = analysis_api.WhatIf.model_validate(
        {"changes": [{"target": target, "id": target_id, "set": {field: number}}], "time_limit_s": time_limit_s}
    )
    try:
        queued = analysis_api.what_if(reg.code, round_id, body, request, session, subject, settings)
    except Problem as exc:
        exc.extra.setdefault("errors", [])
        raise
    return redirect(job_page_url(reg.code, round_id, queued))


@router.post("/regions/{region}/rounds/{round_id}/stable", dependencies=[Csrf])
def stable_job(
    request: Request,
    region: str,
    round_id: RowId,
    session: SessionDep,
    subject: WebSubject,
    settings: SettingsDep,
    seconds: Annotated[float, Form(gt=0, le=600)] = 5.0,
) -> Response:
    """Deferred acceptance, the optimiser and the optimiser without blocking pairs on this round, as a job."""
    reg = _region(session, subject, region)
    queued = analysis_api.stable(reg.code, round_id, request, session, subject, settings, seconds)
    return redirect(job_page_url(reg.code, round_id, queued))


@router.post("/regions/{region}/rounds/{round_id}/reproduce", dependencies=[Csrf])
def reproduce_job(request: Request, region: str, round_id: RowId, session: SessionDep, subject: WebSubject) -> Response:
    """Solve the stored snapshot again and compare, as a job."""
    reg = _region(session, subject, region)
    queued = analysis_api.reproduce(reg.code, round_id, request, session, subject)
    return redirect(job_page_url(reg.code, round_id, queued))
