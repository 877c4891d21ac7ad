"""The solver process: `python -m api.worker ROUND_ID` solves one round from its snapshot and stores the result.

It runs apart from the API so that the service stays responsive and a crash here cannot corrupt anything:
progress and a heartbeat go to the round row; the result (proposals + summary) is written in one transaction
guarded by `status = 'solving'`, so a round cancelled or failed meanwhile never gets results.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api.settings import Settings
from matching.input.instance import Instance
from matching.model.solution import Solution
from matching.reports.provenance import versions
from models import AuditEvent, Candidate, MatchRound, Offer, Proposal, RoundStatus
from models.base import utcnow
from models.db import make_engine, make_sessionmaker, transaction


def _guarded(round_id: int) -> Any:
    return update(MatchRound).where(MatchRound.id == round_id, MatchRound.status == RoundStatus.SOLVING)


def mark_failed(sessions: sessionmaker[Session], round_id: int, reason: str) -> bool:
    """Fail a solving round (no-op if it is no longer solving); True if it was failed now."""
    with transaction(sessions) as session:
        done = session.execute(
            _guarded(round_id).values(
                status=RoundStatus.FAILED, failure=reason[:2000], active_region_id=None, finished_at=utcnow()
            )
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


class Heartbeat(threading.Thread):
    """Extends the round's lease while the solver works; exits the process if the round was cancelled."""

    def __init__(self, sessions: sessionmaker[Session], round_id: int, lease_s: float) -> None:
        super().__init__(daemon=True)
        self.sessions, self.round_id, self.lease_s = sessions, round_id, lease_s
        self.progress: dict[str, Any] = {"phase": "starting"}
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def beat(self) -> bool:
        """Write the lease and latest progress; False when the round is no longer solving."""
        with self.lock:
            progress = {**self.progress, "elapsed": round(time.monotonic() - self.started, 2)}
        with transaction(self.sessions) as session:
            done = session.execute(
                _guarded(self.round_id).values(
                    lease_until=utcnow() + timedelta(seconds=self.lease_s), progress=progress
                )
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def run(self) -> None:
        while not self.stop.wait(min(1.0, self.lease_s / 3)):
            if not self.beat():
                os._exit(0)  # cancelled or failed elsewhere: nothing of ours may be written

    def report(self, values: dict[str, Any]) -> None:
        """Progress from the solver callback: the phase, placements and score found, and the tier being decided
        with its objective, bound and gap (in per cent too); a report without figures keeps the last ones."""
        keys = ("strategy", "placements", "score", "tier", "objective", "bound", "gap", "gap_percent")
        with self.lock:
            figures = {k: values[k] for k in keys if k in values}
            kept = {k: v for k, v in self.progress.items() if k in keys}
            self.progress = {"phase": "solving", "step": str(values.get("phase", "")), **kept, **figures}


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


def store_result(sessions: sessionmaker[Session], round_id: int, solution: Solution) -> bool:
    """Write all proposals and the summary in one transaction; False (and nothing written) if not solving."""
    summary = solution.model_dump(mode="json", exclude={"assignments"})
    with transaction(sessions) as session:
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
            session.rollback()
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


def _analysis(instance: Instance, solution: Solution, seconds: float) -> dict[str, Any]:
    """The post-solve reports, or the error that stopped them (the round's result stands either way)."""
    from matching.reports.analysis import analyse

    try:
        return analyse(instance, solution, seconds=seconds).model_dump(mode="json")
    except Exception as exc:  # the stored result stands; record why its reports are missing
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}


def store_analysis(sessions: sessionmaker[Session], round_id: int, analysis: dict[str, Any]) -> None:
    """Attach the post-solve reports to a round that has a result (a later analysis never overwrites one)."""
    with transaction(sessions) as session:
        session.execute(
            update(MatchRound)
            .where(MatchRound.id == round_id, MatchRound.result.is_not(None), MatchRound.analysis.is_(None))
            .values(analysis=analysis)
        )


def run(round_id: int, settings: Settings) -> int:
    """Solve one round; the exit code is 0 when the round ended solved, cancelled or already failed."""
    from matching.reports.verify import verify
    from matching.solvers.solve import solve

    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        snapshot = session.scalar(select(MatchRound.snapshot).where(MatchRound.id == round_id))
    if snapshot is None:
        return 2
    heartbeat = Heartbeat(sessions, round_id, settings.lease_s)
    if not heartbeat.beat():
        return 0
    heartbeat.start()
    try:
        time.sleep(settings.solver_start_delay_s)
        instance = Instance.model_validate_json(snapshot)
        solution = solve(instance, progress=heartbeat.report)
        if solution.status not in ("OPTIMAL", "FEASIBLE"):
            why = solution.stats.get("no_solution", "")
            raise RuntimeError(f"the solver found no solution (status {solution.status}): {why}")
        violations = verify(instance, solution)
        if violations:
            raise RuntimeError(f"the solution breaks {len(violations)} rule(s), first: {violations[0]}")
        heartbeat.stop.set()
        if store_result(sessions, round_id, solution) and settings.analysis_seconds > 0:
            store_analysis(sessions, round_id, _analysis(instance, solution, settings.analysis_seconds))
        return 0
    except Exception as exc:  # the round must end failed, whatever went wrong
        heartbeat.stop.set()
        mark_failed(sessions, round_id, f"{type(exc).__name__}: {exc}")
        return 1


def main() -> None:
    """Entry point: `python -m api.worker ROUND_ID` with VARDMATCH_DATABASE_URL set."""
    settings = Settings()
    # Solving is batch work: on the same cores as the service, requests come first. Deterministic rounds count
    # deterministic time, so a lower priority changes how long they take, never what they find.
    os.nice(settings.solver_nice)
    sys.exit(run(int(sys.argv[1]), settings))


if __name__ == "__main__":
    main()
