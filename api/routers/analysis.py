"""Explaining and testing a round: fairness, shadow prices, why-not, diff against the previous round, what-if,
stable mode and reproduction. Coordinators and admins only; nothing here changes stored data."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api import rounds
from api.deps import CoordinatorOrAdmin, RowId, SessionDep, SettingsDep
from api.errors import Conflict, NotFound, Unprocessable, problem_responses
from api.schemas import DiffRead, FairnessRead, PricesRead, ReproduceRead, StableRead, WhatIfRead, WhyNotRead
from api.services import region_for
from matching.input.instance import Instance, Pair
from matching.input.validate import InvalidInstance
from matching.model.solution import Solution
from matching.reports.changes import Change, apply_changes, describe
from matching.reports.diff import round_diff
from matching.reports.fairness import group_rows
from matching.reports.prices import plain_prices, round_prices
from matching.reports.provenance import differences, versions
from matching.reports.whynot import WhyNot, summarise, why_not, why_not_all
from matching.rules.prepare import prepare
from matching.solvers.solve import solve
from matching.solvers.stable import compare
from models import MatchRound

router = APIRouter(prefix="/regions/{region}/rounds/{round_id}", tags=["analysis"])
ERRORS = problem_responses(400, 401, 403, 404, 409, 422)
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
def prices(region: str, round_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Shadow prices from the LP relaxation: the value of one more krona per programme and one more seat per unit."""
    row, instance, _ = _solved(session, subject, region, round_id)
    report = _report(row, PricesRead, prices="prices", lines="price_lines")
    if report is not None:
        return {"round_id": row.id, "prices": report["prices"], "lines": report["price_lines"]}
    prep = prepare(instance)
    tiers = round_prices(prep, time_limit=20.0)
    lines = plain_prices(tiers, prep=prep, time_limit=10.0)
    return {"round_id": row.id, "prices": [p.model_dump(mode="json") for p in tiers], "lines": lines}


@router.get("/why-not", response_model=WhyNotRead, responses=ERRORS)
def why_not_summary(region: str, round_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Why each unmatched candidate was left out, summarised per cause, with the most common smallest changes."""
    row, instance, solution = _solved(session, subject, region, round_id)
    report = _report(row, WhyNotRead, summary="why_not_summary", candidates="why_not")
    if report is not None:
        return {"round_id": row.id, "summary": report["why_not_summary"], "candidates": report["why_not"]}
    # Not analysed yet (or the solver process was stopped first): a short budget now; the stored one is fuller.
    found = why_not_all(instance, solution, seconds_total=10.0, per_candidate=2.0)
    candidates = [w.model_dump(mode="json") for w in found]
    return {"round_id": row.id, "summary": summarise(found).model_dump(mode="json"), "candidates": candidates}


@router.get("/candidates/{ref}/why-not", response_model=WhyNot, responses=ERRORS)
def candidate_why_not(
    region: str,
    round_id: RowId,
    ref: str,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    settings: SettingsDep,
    seconds: Seconds = 10.0,
) -> Any:
    """Why this candidate was not matched and the smallest change that would have placed them (re-solved)."""
    row, instance, solution = _solved(session, subject, region, round_id)
    if ref not in {c.id for c in instance.candidates}:
        raise NotFound(f"candidate {ref} is not in round {row.id}")
    if any(a.candidate_id == ref for a in solution.assignments):
        raise Conflict(f"candidate {ref} is matched in round {row.id}", slug="candidate-matched")
    report = _report(row, WhyNotRead, candidates="why_not") or {}
    stored = next((w for w in report.get("why_not", []) if w["candidate_id"] == ref), None)
    if stored is not None and stored.get("computed"):
        return stored
    budget = rounds.solver_seconds(seconds, settings, "seconds")
    return why_not(instance, solution, ref, seconds=budget).model_dump(mode="json")


@router.get("/diff", response_model=DiffRead, responses=ERRORS)
def diff(region: str, round_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Against the round this one re-ran: who kept their place, moved, was added or lost a place, and why."""
    row, instance, solution = _solved(session, subject, region, round_id)
    if row.previous_round_id is None:
        raise Conflict(f"round {row.id} is not a re-run of another round", slug="no-previous-round")
    _, _, before = _solved(session, subject, region, row.previous_round_id)
    changes = round_diff(before, instance, solution).model_dump(mode="json")
    return {"round_id": row.id, "previous_round_id": row.previous_round_id, **changes}


@router.post("/what-if", response_model=WhatIfRead, responses=ERRORS)
def what_if(
    region: str, round_id: RowId, body: WhatIf, session: SessionDep, subject: CoordinatorOrAdmin, settings: SettingsDep
) -> Any:
    """Re-solve the round with changed inputs (budgets, caps, seats, slots, offers, candidates) and report how many
    more or fewer are placed, and who. The round's proposals are kept where possible, so the diff shows what the
    change causes, not a reshuffle."""
    row, instance, solution = _solved(session, subject, region, round_id)
    try:
        changed = apply_changes(instance, body.changes)
    except InvalidInstance as exc:
        raise _invalid(exc) from None
    keep = [Pair(candidate_id=a.candidate_id, offer_id=a.offer_id) for a in solution.assignments]
    limit = rounds.solver_seconds(body.time_limit_s, settings)
    changed = changed.with_policy(keep=tuple(keep) if body.keep_proposals else (), time_limit_s=limit)
    try:
        after = solve(changed)
    except InvalidInstance as exc:
        raise _invalid(exc) from None
    return {
        "round_id": row.id,
        "changes": [describe(c, instance) for c in body.changes],
        "status": after.status,
        "placements_before": solution.placements,
        "placements_after": after.placements,
        "placements_change": after.placements - solution.placements,
        "diff": round_diff(solution, changed, after).model_dump(mode="json"),
        "money": [m.model_dump(mode="json") for m in after.money],
    }


@router.get("/stable", response_model=StableRead, responses=ERRORS)
def stable(
    region: str,
    round_id: RowId,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    settings: SettingsDep,
    seconds: Seconds = 10.0,
) -> Any:
    """Deferred acceptance, the optimiser and the optimiser without blocking pairs on this round, side by side."""
    row, instance, _ = _solved(session, subject, region, round_id)
    try:
        result = compare(instance, time_limit_s=rounds.solver_seconds(seconds, settings, "seconds"))
    except InvalidInstance as exc:
        raise _invalid(exc) from None
    return {"round_id": row.id, **result.model_dump(mode="json")}


@router.get("/reproduce", response_model=ReproduceRead, responses=ERRORS)
def reproduce(region: str, round_id: RowId, session: SessionDep, subject: CoordinatorOrAdmin) -> Any:
    """Solve the stored snapshot again (same policy, seed and deterministic mode) and compare with the stored result."""
    row, instance, stored = _solved(session, subject, region, round_id)
    again = solve(instance)
    then, now = (row.provenance or {}).get("versions", {}), versions()
    mismatches = assignment_differences(stored, again)
    return {
        "round_id": row.id,
        "identical": not mismatches and again.placements == stored.placements and again.score == stored.score,
        "deterministic": instance.policy.deterministic,
        "differences": mismatches[:20],
        "stored": {"placements": stored.placements, "score": stored.score, "objective": stored.objective},
        "again": {"placements": again.placements, "score": again.score, "objective": again.objective},
        "versions_then": then,
        "versions_now": now,
        "version_differences": differences(then, now) if then else {},
    }


def assignment_differences(stored: Solution, again: Solution) -> list[str]:
    """Candidates whose offer, supervisor, programme or grant differ between two results."""

    def key(solution: Solution) -> dict[str, tuple[str, str, str, int]]:
        return {a.candidate_id: (a.offer_id, a.supervisor_id, a.programme_id, a.grant) for a in solution.assignments}

    first, second = key(stored), key(again)
    return [
        f"{cid}: stored {first.get(cid)}, re-solved {second.get(cid)}"
        for cid in sorted(set(first) | set(second))
        if first.get(cid) != second.get(cid)
    ]
