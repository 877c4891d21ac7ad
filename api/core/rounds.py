"""The life of a matching round: create (snapshot, and the job that solves it) -> a worker solves, verifies and
stores it (api/jobs) -> publish -> clinics answer -> declines become forbids of the next round. Every transition
is a guarded UPDATE, so two actors can never both move a round, and one solving round per region is enforced by
a unique column."""

from __future__ import annotations

import hashlib
import json
import typing
from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.core import commitments, round_views
from api.core import job_store as jobs
from api.core.audit import audit
from api.core.errors import Conflict, NotFound, Unprocessable
from api.core.removal import refuse_archived
from api.core.schemas import DeclineReason
from api.core.settings import Settings
from api.core.snapshot import Snapshot, build_instance
from matching.input.instance import MAX_FLOORS, MAX_PAIRS, Floor, Instance, Pair, Policy, Weights
from matching.input.validate import InvalidInstance
from matching.model.solution import Solution
from matching.reports.statement import objective_statement
from matching.rules.eligibility import explain_candidate
from models import Candidate, MatchRound, Offer, Proposal, Region, RoundStatus
from models.base import utcnow
from models.queries import Subject, proposals_answerable_by, rounds_readable_by, rounds_writable_by


class RoundCreate(BaseModel):
    """What a coordinator asks for when starting a round."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    round_date: date | None = Field(
        default=None, description="the date the round decides for (default: today, or the demo region's date)"
    )
    objective: str = Field(default="lexicographic", pattern="^(lexicographic|weighted)$")
    weights: Weights = Weights()
    time_limit_s: float = Field(default=10.0, gt=0, description="at most the server's maximum (120 s by default)")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    waiting_priority: bool = Field(
        default=False, description="lexicographic: among rounds placing the most, prefer those who waited longest"
    )
    pins: list[Pair] = Field(default=[], max_length=MAX_PAIRS)
    forbids: list[Pair] = Field(default=[], max_length=MAX_PAIRS)
    keep: list[Pair] = Field(
        default=[], max_length=MAX_PAIRS, description="earlier proposals to keep where possible (minimal disruption)"
    )
    floors: list[Floor] = Field(
        default=[], max_length=MAX_FLOORS, description="at least this many (or this share) of a group placed"
    )
    forbid_blocking: bool = Field(default=False, description="allow no blocking pair (stable under stated preferences)")


class Rerun(BaseModel):
    """Pins and forbids added to a round's own for a new run."""

    model_config = ConfigDict(extra="forbid")

    pins: list[Pair] = Field(default=[], max_length=MAX_PAIRS)
    forbids: list[Pair] = Field(default=[], max_length=MAX_PAIRS)
    unpin: list[Pair] = Field(default=[], max_length=MAX_PAIRS, description="pins of the earlier round to drop")
    time_limit_s: float | None = Field(default=None, gt=0)
    minimal_disruption: bool = Field(
        default=True,
        description="keep as many of this round's proposals (all but the declined) as the changed inputs allow",
    )


def input_hash(snapshot: str) -> str:
    """SHA-256 of the snapshot."""
    return hashlib.sha256(snapshot.encode()).hexdigest()


def standing_proposals(session: Session, row: MatchRound) -> list[Pair]:
    """The round's proposals that were not declined (pending or accepted): what a re-run should disturb least."""
    rows = session.execute(
        select(Proposal.candidate_ref, Proposal.offer_ref)
        .where(Proposal.round_id == row.id, Proposal.answer != "declined")
        .order_by(Proposal.id)
    )
    return [Pair(candidate_id=c, offer_id=o) for c, o in rows]


def declined_pairs(session: Session, region_id: int) -> list[Pair]:
    """Every pair a clinic declined in the region: it is forbidden in later rounds."""
    rows = session.execute(
        select(Proposal.candidate_ref, Proposal.offer_ref)
        .join(MatchRound, MatchRound.id == Proposal.round_id)
        .where(MatchRound.region_id == region_id, Proposal.answer == "declined")
        .distinct()
    )
    return [Pair(candidate_id=c, offer_id=o) for c, o in rows]


def _policy(session: Session, region: Region, body: RoundCreate) -> Policy:
    forbids = {(p.candidate_id, p.offer_id): p for p in [*body.forbids, *declined_pairs(session, region.id)]}
    return Policy(
        objective=body.objective,  # type: ignore[arg-type]
        weights=body.weights,
        time_limit_s=body.time_limit_s,
        seed=body.seed,
        workers=2,
        deterministic=True,
        waiting_priority=body.waiting_priority,
        pins=tuple(body.pins),
        forbids=tuple(forbids.values()),
        keep=tuple(body.keep),
        floors=tuple(body.floors),
        forbid_blocking=body.forbid_blocking,
    )


def round_date_for(body: RoundCreate, settings: Settings) -> date:
    """The round's date: asked for, or the server's default (the demo's own date), or today."""
    return body.round_date or settings.default_round_date or date.today()


def _too_long(asked: float, settings: Settings, field: str) -> dict[str, str] | None:
    if asked <= settings.max_time_limit_s:
        return None
    return {"field": field, "message": f"at most {settings.max_time_limit_s:g} s on this server", "type": "too_long"}


def solver_seconds(asked: float, settings: Settings, field: str = "time_limit_s") -> float:
    """The solver time asked for, or 422 if it is more than this server gives (never silently less)."""
    error = _too_long(asked, settings, field)
    if error:
        raise Unprocessable("1 invalid field(s)", errors=[error])
    return asked


def refuse_what_cannot_be_honoured(body: RoundCreate, round_date: date, settings: Settings) -> None:
    """422 for a time limit above the server's maximum (it would not be given) or a round date so far from today
    that no programme or offer can be meant."""
    errors = [e for e in [_too_long(body.time_limit_s, settings, "time_limit_s")] if e]
    window = timedelta(days=round(365.25 * settings.round_date_years))
    if not date.today() - window <= round_date <= date.today() + window:
        message = f"must be within {settings.round_date_years} years of today"
        errors.append({"field": "round_date", "message": message, "type": "round_date_range"})
    if errors:
        raise Unprocessable(f"{len(errors)} invalid field(s)", errors=errors)


def snapshot_for(session: Session, region: Region, body: RoundCreate, settings: Settings) -> Snapshot:
    """The frozen engine input of a new round (422 listing every issue if the inputs do not fit together)."""
    round_date = round_date_for(body, settings)
    refuse_what_cannot_be_honoured(body, round_date, settings)
    return region_snapshot(session, region, round_date, _policy(session, region, body), body.name)


def region_instance(
    session: Session, region: Region, on: date, policy: Policy | None = None, name: str = ""
) -> Instance:
    """The region's data as the engine's input on a date (422 listing every issue if they do not fit together)."""
    return region_snapshot(session, region, on, policy, name).instance


def region_snapshot(
    session: Session, region: Region, on: date, policy: Policy | None = None, name: str = ""
) -> Snapshot:
    """region_instance with the warnings about what was left out or is closed on the date."""
    try:
        return build_instance(session, region, on, policy or Policy(), name)
    except InvalidInstance as exc:
        issues = [issue_view(issue) for issue in exc.issues]
        raise Unprocessable(
            f"the round's inputs break {len(exc.issues)} rule(s)", slug="invalid-round-inputs", issues=issues
        ) from None
    except ValueError as exc:
        raise Unprocessable(str(exc).split("\n")[0], slug="invalid-round-inputs") from None


def issue_view(issue: Any) -> dict[str, Any]:
    """An engine issue (an error, or a warning about the round's inputs) as JSON."""
    return {k: getattr(issue, k) for k in ("path", "object_id", "field", "rule", "message")}


def create_round(
    session: Session,
    subject: Subject,
    region: Region,
    body: RoundCreate,
    settings: Settings,
    previous: int | None,
    request_id: str | None = None,
) -> MatchRound:
    """Insert a queued round with its snapshot and the job that solves it (in the caller's transaction). A region's
    rounds queue behind each other: its next round solves once the one before it is done."""
    built = snapshot_for(session, region, body, settings)
    instance = built.instance
    snapshot = instance.model_dump_json()
    row = MatchRound(
        region_id=region.id,
        name=body.name,
        status=RoundStatus.QUEUED,
        round_date=instance.round_date,
        request=body.model_dump(mode="json"),
        snapshot=snapshot,
        input_hash=input_hash(snapshot),
        unit_index=round_views.unit_index(json.loads(snapshot)),
        progress={"phase": "queued"},
        previous_round_id=previous,
        created_by=subject.user_id,
        provenance={
            "objective_statement": objective_statement(instance.policy),
            "warnings": [issue_view(w) for w in built.warnings],
        },
    )
    session.add(row)
    session.flush()
    jobs.submit(
        session,
        "round",
        region.id,
        round_id=row.id,
        lock=jobs.region_lock(region.id),
        priority=jobs.ROUND_PRIORITY,
        created_by=subject.user_id,
        request_id=request_id,
        start_delay_s=settings.solver_start_delay_s,
    )
    audit(session, subject, "round.create", "round", row.id, region.id, candidates=len(instance.candidates))
    return row


def get_round(session: Session, subject: Subject, region: Region, round_id: int, *, write: bool = False) -> MatchRound:
    """A round of the region visible to (or, with write, changeable by) the subject; 404 otherwise."""
    statement = rounds_writable_by(subject) if write else rounds_readable_by(subject)
    # populate_existing: a row already in the session is read afresh (its progress moves), in the same statement.
    statement = statement.where(MatchRound.id == round_id, MatchRound.region_id == region.id)
    row = session.scalar(statement.execution_options(populate_existing=True))
    if row is None:
        raise NotFound(f"round {round_id} not found in region {region.code}")
    return row


def cancel(session: Session, subject: Subject, row: MatchRound) -> None:
    """Cancel a queued or solving round and its job; its solver stops and nothing it computed is kept."""
    job = jobs.round_job(session, row.id)
    if job is None or not jobs.cancel(session, job):
        raise Conflict(f"round {row.id} is {row.status}, not queued or solving", slug="round-state")
    audit(session, subject, "round.cancel", "round", row.id, row.region_id)


def stored_solution(session: Session, row: MatchRound) -> Solution:
    """The round's solution rebuilt from its proposals and summary."""
    proposals = session.scalars(select(Proposal).where(Proposal.round_id == row.id).order_by(Proposal.id))
    assignments = [
        {
            "candidate_id": p.candidate_ref,
            "offer_id": p.offer_ref,
            "supervisor_id": p.supervisor_ref,
            "programme_id": p.programme_ref,
            "earmark_id": p.earmark_ref,
            "start": p.start,
            "months": p.months,
            "total_cost": p.total_cost,
            "grant": p.grant,
            "unit_share": p.unit_share,
            "score": p.score,
            "breakdown": p.breakdown,
        }
        for p in proposals
    ]
    return Solution.model_validate({**(row.result or {}), "assignments": assignments})


def publish(session: Session, subject: Subject, row: MatchRound) -> None:
    """Verify the stored result again, publish it and close the region's previously published round."""
    if row.status != RoundStatus.SOLVED:
        raise Conflict(f"round {row.id} is {row.status}; only a solved round can be published", slug="round-state")
    instance = Instance.model_validate_json(row.snapshot)
    commitments.check_publishable(session, row.region_id, instance, stored_solution(session, row))
    session.execute(
        update(MatchRound)
        .where(MatchRound.region_id == row.region_id, MatchRound.status == RoundStatus.PUBLISHED)
        .values(status=RoundStatus.CLOSED)
    )
    done = session.execute(
        update(MatchRound)
        .where(MatchRound.id == row.id, MatchRound.status == RoundStatus.SOLVED)
        .values(status=RoundStatus.PUBLISHED, published_at=utcnow())
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"round {row.id} changed meanwhile", slug="round-state")
    audit(session, subject, "round.publish", "round", row.id, row.region_id)


DECLINE_REASONS: tuple[str, ...] = typing.get_args(DeclineReason)


def check_decline_reason(accept: bool, reason: str | None) -> None:
    """422 unless the reason is one of DECLINE_REASONS, given only with a decline."""
    if reason is None:
        return
    if accept:
        raise Unprocessable(
            "a reason is given only when declining",
            errors=[{"field": "reason", "message": "only when declining", "type": "decline_only"}],
        )
    if reason not in DECLINE_REASONS:
        raise Unprocessable(
            "unknown decline reason",
            errors=[{"field": "reason", "message": f"one of {', '.join(DECLINE_REASONS)}", "type": "enum"}],
        )


def answer(
    session: Session,
    subject: Subject,
    round_row: MatchRound,
    proposal_id: int,
    accept: bool,
    reason: str | None = None,
) -> Proposal:
    """A clinic accepts or declines a proposal (a decline may say why: one of DECLINE_REASONS); acceptance places
    the candidate and takes a slot of the offer."""
    check_decline_reason(accept, reason)
    proposal = session.scalar(
        proposals_answerable_by(subject).where(Proposal.id == proposal_id, Proposal.round_id == round_row.id)
    )
    if proposal is None:
        raise NotFound(f"proposal {proposal_id} not found in round {round_row.id}")
    if proposal.answer != "pending":
        raise Conflict(f"proposal {proposal_id} was already {proposal.answer}", slug="proposal-answered")
    if accept:
        refuse_archived(session, proposal)
        commitments.accept(session, proposal, round_row.region_id)
        _take_slot(session, proposal)
    proposal.answer = "accepted" if accept else "declined"
    proposal.answered_at = utcnow()
    proposal.answered_by = subject.user_id
    proposal.decline_reason = None if accept else reason
    detail = {} if reason is None else {"reason": reason}
    audit(session, subject, f"proposal.{proposal.answer}", "proposal", proposal.id, round_row.region_id, **detail)
    session.flush()
    return proposal


def _take_slot(session: Session, proposal: Proposal) -> None:
    candidate = session.get_one(Candidate, proposal.candidate_id)
    candidate.status = "placed"
    offer = session.get_one(Offer, proposal.offer_id)
    slots = max(0, int(offer.data.get("slots", 1)) - 1)
    offer.data = {**offer.data, "slots": slots}
    if slots == 0:
        offer.status = "filled"
        offer.data = {**offer.data, "status": "filled"}
    offer.version += 1


def round_explanation(session: Session, row: MatchRound) -> dict[str, Any]:
    """Money per programme and per unit against budgets and caps, and matches per profession."""
    if row.result is None:
        raise Conflict(f"round {row.id} has no result ({row.status})", slug="round-state")
    instance = Instance.model_validate_json(row.snapshot)
    solution = stored_solution(session, row)
    units = {u.id: u for u in instance.units}
    per_unit: dict[tuple[str, str], int] = defaultdict(int)
    for a in solution.assignments:
        per_unit[(a.programme_id, units_of(instance)[a.offer_id])] += a.grant
    programmes = []
    for prog in instance.programmes:
        use = next((m for m in solution.money if m.programme_id == prog.id), None)
        unit_rows = [
            {"unit_id": uid, "granted": amount, "cap": prog.unit_caps.for_size(units[uid].size_class)}
            for (pid, uid), amount in sorted(per_unit.items())
            if pid == prog.id
        ]
        programmes.append(
            {
                "programme_id": prog.id,
                "budget": prog.budget,
                "granted": use.granted if use else 0,
                "matches": use.matches if use else 0,
                "earmarks": use.earmarks if use else {},
                "units": unit_rows,
            }
        )
    profession = {c.id: c.profession.value for c in instance.candidates}
    total = Counter(profession.values())
    matched = Counter(profession[a.candidate_id] for a in solution.assignments)
    return {
        "round_id": row.id,
        "status": solution.status,
        "objective": solution.objective,
        "bound": solution.bound,
        "gap": solution.gap,
        "placements": solution.placements,
        "programmes": programmes,
        "professions": [{"profession": p, "matched": matched[p], "candidates": n} for p, n in sorted(total.items())],
        "unmatched_reasons": dict(Counter(u.reason for u in solution.unmatched)),
    }


def units_of(instance: Instance) -> dict[str, str]:
    """Offer id -> unit id."""
    return {o.id: o.unit_id for o in instance.offers}


def candidate_explanation(session: Session, row: MatchRound, candidate_ref: str) -> dict[str, Any]:
    """For one candidate of the round: eligible offers, excluded offers with rule names, match or reason."""
    instance = Instance.model_validate_json(row.snapshot)
    if candidate_ref not in {c.id for c in instance.candidates}:
        raise NotFound(f"candidate {candidate_ref} is not in round {row.id}")
    verdicts = explain_candidate(instance, candidate_ref)
    solution = stored_solution(session, row) if row.result is not None else None
    match = next((a for a in solution.assignments if a.candidate_id == candidate_ref), None) if solution else None
    unmatched = next((u for u in solution.unmatched if u.candidate_id == candidate_ref), None) if solution else None
    return {
        "round_id": row.id,
        "candidate_id": candidate_ref,
        "eligible_offers": [v.offer_id for v in verdicts if v.eligible],
        "excluded_offers": [
            {"offer_id": v.offer_id, "rules": v.failed_rules, "programme_rules": v.programmes}
            for v in verdicts
            if not v.eligible
        ],
        "match": match.model_dump(mode="json") if match else None,
        "unmatched": unmatched.model_dump(mode="json") if unmatched else None,
    }
