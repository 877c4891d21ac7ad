"""What each kind of job computes. These run in the job's own process (api/jobs/child.py), read the round from the
database and end in one transaction that stores the outcome and marks the job succeeded, or nothing at all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker, undefer

from api.core import job_store as store
from api.core.audit import audit
from api.core.outcomes import analysis_of, store_analysis, store_result
from api.core.privacy import run_retention
from api.core.schemas import PricesRead, ReproduceRead, StableRead, WhatIfRead, WhyNotRead
from api.core.settings import Settings
from matching.input.instance import Instance, Pair
from matching.input.validate import InvalidInstance
from matching.model.solution import Solution
from matching.reports.changes import Change, apply_changes, describe
from matching.reports.diff import round_diff
from models import MatchRound, Region, RoundStatus
from models.base import utcnow
from models.db import transaction
from models.jobs import SolverJob


class JobError(Exception):
    """A job that cannot give a result, with a problem-like body (title, detail and perhaps issues)."""

    def __init__(self, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.body = {"title": title, "detail": detail, **extra}


@dataclass
class Run:
    """One run of a job: its row (as claimed), its attempt and how to report progress."""

    sessions: sessionmaker[Session]
    job: SolverJob
    attempt: int
    settings: Settings
    report: Callable[[dict[str, Any]], None]

    def done(self, result: dict[str, Any], also: Callable[[Session], bool] | None = None, **figures: Any) -> bool:
        """Store `also` (if any) and the result in one transaction; nothing if the job is no longer this run's."""
        with transaction(self.sessions) as session:
            # The job's row first, then the round's: the order of every writer (heartbeat, cancel, hand-back), so
            # that two of them never wait for each other.
            if store.finish(session, self.job.id, self.attempt, result, **figures) and (also is None or also(session)):
                return True
            session.rollback()
            return False


def shaped(model: type[BaseModel], result: dict[str, Any]) -> dict[str, Any]:
    """The result in the form its response model declares (what the route answered when it solved in the request)."""
    return model.model_validate(result).model_dump(mode="json")


def invalid(exc: InvalidInstance, what: str = "the changes") -> JobError:
    """A job error listing the engine's issues."""
    issues = [{k: getattr(i, k) for k in ("path", "object_id", "field", "rule", "message")} for i in exc.issues]
    return JobError("invalid input", f"{what} break {len(issues)} rule(s)", issues=issues)


def _round(run: Run) -> tuple[MatchRound, Instance]:
    with run.sessions() as session:
        # The snapshot is deferred: loaded here, since the row is read on after its session has closed.
        row = session.get_one(MatchRound, run.job.round_id, options=[undefer(MatchRound.snapshot)])
        session.expunge(row)
    return row, Instance.model_validate_json(row.snapshot)


def _solved(run: Run) -> tuple[MatchRound, Instance, Solution]:
    from api.core.rounds import stored_solution

    with run.sessions() as session:
        row = session.get_one(MatchRound, run.job.round_id, options=[undefer(MatchRound.snapshot)])
        if row.result is None:
            raise JobError("round-state", f"round {row.id} has no result ({row.status})")
        solution = stored_solution(session, row)
        session.expunge(row)
    return row, Instance.model_validate_json(row.snapshot), solution


def _progress(run: Run) -> Callable[[dict[str, Any]], None]:
    return run.report


def solve_round(run: Run) -> None:
    """Solve a round from its snapshot, verify, and store proposals, summary and the job's success together; the
    round's reports follow as a job of their own."""
    from matching.reports.verify import verify
    from matching.solvers.solve import solve

    row, instance = _round(run)
    solution = solve(instance, progress=_progress(run))
    if solution.status not in ("OPTIMAL", "FEASIBLE"):
        why = solution.stats.get("no_solution", "")
        raise JobError("no solution", f"the solver found no solution (status {solution.status}): {why}")
    violations = verify(instance, solution)
    if violations:
        raise JobError("invalid solution", f"the solution breaks {len(violations)} rule(s), first: {violations[0]}")

    def keep(session: Session) -> bool:
        if not store_result(session, row.id, solution):
            return False
        if run.settings.analysis_seconds > 0:
            store.submit(
                session,
                "analysis",
                row.region_id,
                round_id=row.id,
                request_id=run.job.request_id,
                priority=-1,
                start_delay_s=run.job.params.get("start_delay_s", 0.0),
            )
        return True

    summary = {"round_id": row.id, "status": solution.status, "placements": solution.placements}
    run.done(summary, keep, solve_seconds=solution.wall_time_s, gap=solution.gap)


def analyse_round(run: Run) -> None:
    """The post-round reports (fairness, floor prices, shadow prices, why-not), stored on the round."""
    row, instance, solution = _solved(run)
    analysis = analysis_of(instance, solution, run.settings.analysis_seconds)
    run.done(
        {"round_id": row.id, "analysis_ready": "error" not in analysis, "analysis_error": analysis.get("error")},
        lambda session: store_analysis(session, row.id, analysis) or True,
    )


def what_if(run: Run) -> None:
    """The round re-solved with changed inputs, against its stored result."""
    from matching.solvers.solve import solve

    row, instance, solution = _solved(run)
    params = run.job.params
    changes = [Change.model_validate(c) for c in params["changes"]]
    try:
        changed = apply_changes(instance, changes)
    except InvalidInstance as exc:
        raise invalid(exc) from None
    keep = [Pair(candidate_id=a.candidate_id, offer_id=a.offer_id) for a in solution.assignments]
    changed = changed.with_policy(
        keep=tuple(keep) if params.get("keep_proposals", True) else (), time_limit_s=params["time_limit_s"]
    )
    try:
        after = solve(changed, progress=_progress(run))
    except InvalidInstance as exc:
        raise invalid(exc) from None
    run.done(
        shaped(
            WhatIfRead,
            {
                "round_id": row.id,
                "changes": [describe(c, instance) for c in changes],
                "status": after.status,
                "placements_before": solution.placements,
                "placements_after": after.placements,
                "placements_change": after.placements - solution.placements,
                "diff": round_diff(solution, changed, after).model_dump(mode="json"),
                "money": [m.model_dump(mode="json") for m in after.money],
            },
        )
    )


def stable(run: Run) -> None:
    """Deferred acceptance, the optimiser and the optimiser without blocking pairs, side by side."""
    from matching.solvers.stable import compare

    row, instance, _ = _solved(run)
    try:
        result = compare(instance, time_limit_s=run.job.params["seconds"])
    except InvalidInstance as exc:
        raise invalid(exc, "the round") from None
    run.done(shaped(StableRead, {"round_id": row.id, **result.model_dump(mode="json")}))


def reproduce(run: Run) -> None:
    """The stored snapshot solved again and compared with the stored result, assignment by assignment."""
    from matching.reports.provenance import differences, versions
    from matching.solvers.solve import solve

    row, instance, stored = _solved(run)
    again = solve(instance, progress=_progress(run))
    then, now = (row.provenance or {}).get("versions", {}), versions()
    mismatches = assignment_differences(stored, again)
    run.done(
        shaped(
            ReproduceRead,
            {
                "round_id": row.id,
                "identical": not mismatches and again.placements == stored.placements and again.score == stored.score,
                "deterministic": instance.policy.deterministic,
                "differences": mismatches[:20],
                "stored": {"placements": stored.placements, "score": stored.score, "objective": stored.objective},
                "again": {"placements": again.placements, "score": again.score, "objective": again.objective},
                "versions_then": then,
                "versions_now": now,
                "version_differences": differences(then, now) if then else {},
            },
        )
    )


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


def prices(run: Run) -> None:
    """Shadow prices from the LP relaxation, per objective tier, with plain sentences."""
    from matching.reports.prices import plain_prices, round_prices
    from matching.rules.prepare import prepare

    row, instance, _ = _solved(run)
    prep = prepare(instance)
    tiers = round_prices(prep, time_limit=20.0)
    lines = plain_prices(tiers, prep=prep, time_limit=10.0)
    run.done(
        shaped(PricesRead, {"round_id": row.id, "prices": [p.model_dump(mode="json") for p in tiers], "lines": lines})
    )


def why_not_all(run: Run) -> None:
    """Why each unmatched candidate was left out, with a short budget, summarised per cause."""
    from matching.reports.whynot import summarise, why_not_all

    row, instance, solution = _solved(run)
    found = why_not_all(instance, solution, seconds_total=run.job.params.get("seconds", 10.0), per_candidate=2.0)
    candidates = [w.model_dump(mode="json") for w in found]
    summary = summarise(found).model_dump(mode="json")
    run.done(shaped(WhyNotRead, {"round_id": row.id, "summary": summary, "candidates": candidates}))


def why_not_candidate(run: Run) -> None:
    """Why one candidate was not matched, and the smallest change that places them (re-solved)."""
    from matching.reports.whynot import why_not

    _, instance, solution = _solved(run)
    params = run.job.params
    run.done(why_not(instance, solution, params["candidate"], seconds=params["seconds"]).model_dump(mode="json"))


def retention(run: Run) -> None:
    """Anonymise the region's identities past their retention period as of the scheduled day, exactly as `vardmatch
    retention` does (the same function), in one transaction with the job's success. The result and the audit event
    hold counts only, never who."""
    day = date.fromisoformat(run.job.params["day"])
    with transaction(run.sessions) as session:
        region = session.get_one(Region, run.job.region_id)
        (report,) = run_retention(session, day, dry_run=False, regions=[region])
        reasons = Counter(v.clock.reason for v in report.anonymised if v.clock is not None)
        result = {"day": day.isoformat(), "anonymised": len(report.anonymised), "kept": report.kept}
        result |= {"by_reason": dict(sorted(reasons.items())), "policy": report.policy}
        if report.anonymised:
            audit(session, None, "retention.run", "region", region.code, region.id, job_id=run.job.id, **result)
        if not store.finish(session, run.job.id, run.attempt, result):
            session.rollback()  # cancelled or taken over meanwhile: nothing of this run is kept


KINDS: dict[str, Callable[[Run], None]] = {
    "round": solve_round,
    "analysis": analyse_round,
    "what_if": what_if,
    "stable": stable,
    "reproduce": reproduce,
    "prices": prices,
    "why_not": why_not_all,
    "why_not_candidate": why_not_candidate,
    "retention": retention,
}


def start_round(run: Run) -> bool:
    """Move the job's round from queued to solving (taking its region); False if it was cancelled meanwhile."""
    with transaction(run.sessions) as session:
        try:
            done = session.execute(
                update(MatchRound)
                .where(
                    MatchRound.id == run.job.round_id,
                    MatchRound.status.in_((RoundStatus.QUEUED, RoundStatus.SOLVING)),
                )
                .values(
                    status=RoundStatus.SOLVING,
                    active_region_id=run.job.region_id,
                    progress={"phase": "starting"},
                    lease_until=utcnow() + timedelta(seconds=run.settings.lease_s),
                )
            )
            session.flush()
        except IntegrityError:
            # The queue's lock keeps a region's rounds apart; this is the database's own guard behind it.
            raise JobError("region busy", "another round of the region is solving") from None
        return bool(done.rowcount)  # type: ignore[attr-defined]
