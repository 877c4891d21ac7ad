"""Storing a round's outcome: its proposals and summary in one transaction, its failure, its reports.

A round is solved by a job (api/jobs): these functions run in the job's process, inside the job's own final
transaction, so a round's result and its job's success commit together or not at all. Every write is guarded by
the round's status, so a round cancelled or failed meanwhile never gets results.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from matching.input.instance import Instance
from matching.model.solution import Solution
from matching.reports.provenance import versions
from models import AuditEvent, Candidate, MatchRound, Offer, Proposal, RoundStatus
from models.base import utcnow


def _guarded(round_id: int) -> Any:
    return update(MatchRound).where(MatchRound.id == round_id, MatchRound.status == RoundStatus.SOLVING)


def fail_round(session: Session, round_id: int, reason: str) -> bool:
    """Fail a queued or solving round (no-op otherwise); True if it was failed now."""
    done = session.execute(
        update(MatchRound)
        .where(MatchRound.id == round_id, MatchRound.status.in_((RoundStatus.QUEUED, RoundStatus.SOLVING)))
        .values(status=RoundStatus.FAILED, failure=reason[:2000], active_region_id=None, finished_at=utcnow())
    )
    failed = bool(done.rowcount)  # type: ignore[attr-defined]
    if failed:
        region_id = session.scalar(select(MatchRound.region_id).where(MatchRound.id == round_id))
        session.add(
            AuditEvent(
                actor_role="system",
                action="round.failed",
                object_type="round",
                object_id=str(round_id),
                region_id=region_id,
                detail={"reason": reason[:200]},
            )
        )
    return failed


def _proposals(session: Session, round_row: MatchRound, solution: Solution) -> list[Proposal]:
    refs_c = {a.candidate_id for a in solution.assignments}
    refs_o = {a.offer_id for a in solution.assignments}
    rid = round_row.region_id
    cands = {
        c.ref: c
        for c in session.scalars(select(Candidate).where(Candidate.region_id == rid, Candidate.ref.in_(refs_c)))
    }
    offers = {o.ref: o for o in session.scalars(select(Offer).where(Offer.region_id == rid, Offer.ref.in_(refs_o)))}
    return [
        Proposal(
            round_id=round_row.id,
            candidate_id=cands[a.candidate_id].id,
            offer_id=offers[a.offer_id].id,
            unit_id=offers[a.offer_id].unit_id,
            candidate_ref=a.candidate_id,
            offer_ref=a.offer_id,
            supervisor_ref=a.supervisor_id,
            programme_ref=a.programme_id,
            earmark_ref=a.earmark_id,
            start=a.start,
            months=a.months,
            total_cost=a.total_cost,
            grant=a.grant,
            unit_share=a.unit_share,
            score=a.score,
            breakdown=a.breakdown,
        )
        for a in solution.assignments
    ]


def store_result(session: Session, round_id: int, solution: Solution) -> bool:
    """Write all proposals and the summary in the caller's transaction; False (roll back) if not solving."""
    summary = solution.model_dump(mode="json", exclude={"assignments"})
    round_row = session.get(MatchRound, round_id)
    if round_row is None or round_row.status != RoundStatus.SOLVING:
        return False
    session.add_all(_proposals(session, round_row, solution))
    provenance = {**(round_row.provenance or {}), "versions": versions(), "method": solution.method}
    done = session.execute(
        _guarded(round_id).values(
            status=RoundStatus.SOLVED,
            result=summary,
            provenance=provenance,
            active_region_id=None,
            finished_at=utcnow(),
            progress={
                "phase": "done",
                "strategy": solution.method,
                "placements": solution.placements,
                "score": solution.score,
                "tier": solution.stats.get("gap_tier", ""),
                "objective": solution.objective,
                "bound": solution.bound,
                "gap": solution.gap,
                "gap_percent": round(100 * solution.gap, 3),
                "elapsed": solution.wall_time_s,
            },
        )
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    session.add(
        AuditEvent(
            actor_role="system",
            action="round.solved",
            object_type="round",
            object_id=str(round_id),
            region_id=round_row.region_id,
            detail={"placements": solution.placements, "status": solution.status},
        )
    )
    return True


def analysis_of(instance: Instance, solution: Solution, seconds: float) -> dict[str, Any]:
    """The post-solve reports, or the error that stopped them (the round's result stands either way)."""
    from matching.reports.analysis import analyse

    try:
        return analyse(instance, solution, seconds=seconds).model_dump(mode="json")
    except Exception as exc:  # the stored result stands; record why its reports are missing
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}


def store_analysis(session: Session, round_id: int, analysis: dict[str, Any]) -> bool:
    """Attach the post-solve reports to a round that has a result (a later analysis never overwrites one)."""
    done = session.execute(
        update(MatchRound)
        .where(MatchRound.id == round_id, MatchRound.result.is_not(None), MatchRound.analysis.is_(None))
        .values(analysis=analysis, analysis_error=analysis.get("error"))
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]
