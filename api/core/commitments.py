"""Commitments: an accepted proposal holds its grant and its supervisor's months in every later round of the region,
until follow-up releases them; nothing (acceptance, follow-up, an edit of a budget, cap, seat or availability, a
publication) may leave a programme, earmark, cap or supervisor over its limit.

How the pieces fit:
- `accept` turns a proposal into a commitment, refusing (409 `commitment-overdraws`) what would overdraw a limit;
- `build_instance` (api.core.snapshot) puts every commitment's held money and months into a round's snapshot, so that
  the solver, verify, what-if and reproduce all count them;
- `check_publishable` refuses to publish a round whose proposals no longer fit beside commitments made since it was
  solved (a proposal of the previous round accepted meanwhile): the coordinator re-runs it;
- `limits_kept` wraps edits of programmes, units and supervisors;
- `follow_up` records what happened (started, completed, interrupted, never started; the amount paid).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.core.audit import audit
from api.core.errors import Conflict, NotFound, Unprocessable
from matching.input import instance as engine
from matching.input.months import month_index
from matching.input.validate import reference_issues
from matching.model.solution import Solution
from matching.reports.verify import verify, verify_commitments
from models import Candidate, Commitment, CommitmentStatus, Programme, Proposal, Region, Role, Supervisor, Unit
from models import queries as q
from models.queries import Subject

# Statuses in which the placement still runs or may still run: the candidate is placed.
RUNNING = (CommitmentStatus.ACCEPTED, CommitmentStatus.STARTED)
# What follow-up may move a commitment to, from each status; ended commitments only get their payment corrected.
NEXT: dict[str, tuple[str, ...]] = {
    CommitmentStatus.ACCEPTED: (
        CommitmentStatus.STARTED,
        CommitmentStatus.COMPLETED,
        CommitmentStatus.INTERRUPTED,
        CommitmentStatus.NOT_STARTED,
    ),
    CommitmentStatus.STARTED: (CommitmentStatus.COMPLETED, CommitmentStatus.INTERRUPTED),
    CommitmentStatus.COMPLETED: (),
    CommitmentStatus.INTERRUPTED: (),
    CommitmentStatus.NOT_STARTED: (),
}
ENDED = (CommitmentStatus.COMPLETED, CommitmentStatus.INTERRUPTED, CommitmentStatus.NOT_STARTED)


def held(row: Commitment) -> tuple[int, int]:
    """(SEK, months) the commitment still holds.

    A running or completed placement holds its grant until the payment is recorded, then what was paid; an
    interrupted one holds its supervisor up to its last month; one that never started holds only what was paid (0).
    """
    if row.status == CommitmentStatus.NOT_STARTED:
        return row.paid or 0, 0
    money = row.paid if row.paid is not None and row.status in ENDED else row.grant
    if row.status == CommitmentStatus.INTERRUPTED and row.last_month is not None:
        return money, month_index(row.last_month) - month_index(row.start) + 1
    return money, row.months


def engine_ref(row: Commitment) -> str:
    """The commitment's id in a snapshot."""
    return f"K{row.id}"


def to_engine(row: Commitment) -> engine.Commitment:
    """What the commitment holds, as the engine's input."""
    money, months = held(row)
    return engine.Commitment(
        id=engine_ref(row),
        candidate_id=row.candidate_ref,
        unit_id=row.unit_ref,
        offer_id=row.offer_ref,
        supervisor_id=row.supervisor_ref,
        programme_id=row.programme_ref,
        earmark_id=row.earmark_ref,
        start=row.start,
        months=months,
        grant=money,
    )


def region_commitments(session: Session, region_id: int) -> list[Commitment]:
    """Every commitment of the region, oldest first."""
    return list(session.scalars(select(Commitment).where(Commitment.region_id == region_id).order_by(Commitment.id)))


def snapshot_commitments(session: Session, region_id: int) -> list[engine.Commitment]:
    """The commitments a round of the region must count: those that still hold money or a supervisor's months.
    A supervisor archived since is left out of them: no new round can use that supervisor anyway."""
    archived = set(
        session.scalars(
            select(Supervisor.ref).where(Supervisor.region_id == region_id, Supervisor.archived_at.is_not(None))
        )
    )
    held_rows = [to_engine(row) for row in region_commitments(session, region_id)]
    return [
        c.model_copy(update={"supervisor_id": None}) if c.supervisor_id in archived else c
        for c in held_rows
        if c.grant or c.months
    ]


def lock_region(session: Session, region_id: int) -> None:
    """Serialise every change of the region's commitments and limits: a row lock on PostgreSQL, the write lock on
    SQLite. Taken before the limits are read, so that two acceptances can never both use the last krona."""
    session.execute(update(Region).where(Region.id == region_id).values(code=Region.code))


def _engine_rows(session: Session, table: Any, region_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(table).where(table.region_id == region_id).order_by(table.id))
    return [{"id": row.ref, **row.data} for row in rows]


def limits_instance(session: Session, region_id: int, commitments: list[engine.Commitment]) -> engine.Instance:
    """The region's limits (units, supervisors, programmes) with these commitments, as an engine instance."""
    return engine.Instance.model_validate(
        {
            "round_date": date.today(),
            "units": _engine_rows(session, Unit, region_id),
            "supervisors": _engine_rows(session, Supervisor, region_id),
            "programmes": _engine_rows(session, Programme, region_id),
            "commitments": [c.model_dump() for c in commitments],
        }
    )


def violations(session: Session, region_id: int, extra: tuple[engine.Commitment, ...] = ()) -> list[str]:
    """Every limit the region's commitments (and `extra`) break, as sentences."""
    instance = limits_instance(session, region_id, [*snapshot_commitments(session, region_id), *extra])
    # A commitment must keep naming what it holds (an earmark removed from its programme would dangle).
    dangling = [str(i) for i in reference_issues(instance) if i.path.startswith("commitments")]
    return dangling + [str(v) for v in verify_commitments(instance)]


def _refuse_new(before: list[str], after: list[str], what: str, slug: str) -> None:
    """409 naming every limit that is broken now and was not (or not as much) before."""
    new = [v for v in after if v not in set(before)]
    if new:
        raise Conflict(
            f"{what} would leave {len(new)} limit(s) exceeded: {new[0]}",
            slug=slug,
            issues=[{"message": v} for v in new],
        )


@contextmanager
def limits_kept(session: Session, region_id: int, kind: str) -> Iterator[None]:
    """Around an edit of a programme, unit or supervisor: refuse (409 `limits-below-commitments`) a change that
    leaves accepted placements over a budget, earmark, cap, seat or availability."""
    has_commitments = session.scalar(select(Commitment.id).where(Commitment.region_id == region_id).limit(1))
    if kind not in ("programmes", "units", "supervisors") or has_commitments is None:
        yield
        return
    lock_region(session, region_id)
    before = violations(session, region_id)
    yield
    session.flush()
    _refuse_new(before, violations(session, region_id), "the change", "limits-below-commitments")


def _from_proposal(proposal: Proposal, region_id: int, unit_ref: str) -> Commitment:
    return Commitment(
        region_id=region_id,
        proposal_id=proposal.id,
        candidate_id=proposal.candidate_id,
        unit_id=proposal.unit_id,
        offer_id=proposal.offer_id,
        round_id=proposal.round_id,
        candidate_ref=proposal.candidate_ref,
        unit_ref=unit_ref,
        offer_ref=proposal.offer_ref,
        supervisor_ref=proposal.supervisor_ref,
        programme_ref=proposal.programme_ref,
        earmark_ref=proposal.earmark_ref,
        start=proposal.start,
        months=proposal.months,
        total_cost=proposal.total_cost,
        grant=proposal.grant,
        unit_share=proposal.unit_share,
    )


def accept(session: Session, proposal: Proposal, region_id: int) -> Commitment:
    """Commit an accepted proposal: refused if the candidate is placed already, or if its grant or supervisor
    months no longer fit beside the region's other commitments (a budget cut since, say)."""
    lock_region(session, region_id)
    placed = session.scalar(
        select(Commitment).where(Commitment.candidate_id == proposal.candidate_id, Commitment.status.in_(RUNNING))
    )
    if placed is not None:
        raise Conflict(
            f"candidate {proposal.candidate_ref} already holds a placement at {placed.offer_ref} "
            f"(commitment {placed.id}); decline this proposal",
            slug="candidate-already-placed",
        )
    unit = session.get_one(Unit, proposal.unit_id)
    row = _from_proposal(proposal, region_id, unit.ref)
    before = violations(session, region_id)
    candidate_commitment = to_engine(row).model_copy(update={"id": "K-new"})
    _refuse_new(before, violations(session, region_id, (candidate_commitment,)), "accepting", "commitment-overdraws")
    session.add(row)
    session.flush()
    return row


def check_publishable(session: Session, region_id: int, instance: engine.Instance, solution: Solution) -> None:
    """Verify a round's stored result against today's commitments before it is published: 409 `round-invalid` if
    it breaks a rule, 409 `round-outdated` if it no longer fits beside placements accepted since it was solved
    (candidates placed meanwhile, money, slots or seats taken meanwhile); the coordinator then re-runs it."""
    lock_region(session, region_id)
    current = snapshot_commitments(session, region_id)
    known = {c.id for c in instance.commitments}
    since = [c for c in current if c.id not in known]
    placed = {c.candidate_id for c in since}
    problems = [
        f"candidate {a.candidate_id} was placed elsewhere after this round was solved"
        for a in solution.assignments
        if a.candidate_id in placed
    ]
    taken = Counter(c.offer_id for c in since)
    offers = tuple(o.model_copy(update={"slots": max(0, o.slots - taken[o.id])}) for o in instance.offers)
    now = instance.model_copy(update={"commitments": tuple(current), "offers": offers})
    changed = {c.model_dump_json() for c in current} != {c.model_dump_json() for c in instance.commitments}
    # The money the round reported was right for its own snapshot; against changed commitments only rules count.
    problems += [str(v) for v in verify(now, solution, report=not changed)]
    if not problems:
        return
    if not changed:
        raise Conflict(f"the stored result breaks {len(problems)} rule(s): {problems[0]}", slug="round-invalid")
    raise Conflict(
        f"{len(problems)} proposal(s) or limit(s) no longer fit beside placements accepted since this round was "
        f"solved: {problems[0]}. Re-run the round to take them into account.",
        slug="round-outdated",
        issues=[{"message": p} for p in problems],
    )


class FollowUp(BaseModel):
    """What happened to an accepted placement."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["started", "completed", "interrupted", "not_started"] | None = Field(
        default=None, description="started, completed, interrupted (give last_month) or not_started"
    )
    last_month: date | None = Field(default=None, description="interrupted: any day of the last month worked")
    paid: int | None = Field(
        default=None, ge=0, le=10_000_000_000, description="SEK the programme actually paid out (at most the grant)"
    )
    note: str | None = Field(default=None, max_length=500)
    return_to_pool: bool = Field(
        default=True, description="interrupted or not started: the candidate waits for a placement again"
    )


def _field_error(field: str, rule: str, message: str) -> Unprocessable:
    return Unprocessable(message, errors=[{"field": field, "message": message, "type": rule}])


def _apply(row: Commitment, body: FollowUp) -> None:
    """The follow-up's changes on the row, or 409/422 naming the rule they break."""
    status = body.status or row.status
    if body.status is not None and body.status != row.status and body.status not in NEXT[row.status]:
        allowed = ", ".join(NEXT[row.status]) or "none (it has ended; only paid and note can change)"
        raise Conflict(f"commitment {row.id} is {row.status}; it can move to: {allowed}", slug="commitment-transition")
    if status == CommitmentStatus.INTERRUPTED:
        last = body.last_month or row.last_month
        if last is None:
            raise _field_error("last_month", "required", "an interrupted placement needs its last month")
        first, end = month_index(row.start), month_index(row.start) + row.months - 1
        if not first <= month_index(last) <= end:
            raise _field_error(
                "last_month", "within_placement", f"the last month must be between {row.start:%Y-%m} and the end"
            )
        row.last_month = last.replace(day=1)
    elif body.last_month is not None:
        raise _field_error("last_month", "interrupted_only", "last_month is given only for an interrupted placement")
    if body.paid is not None:
        if status not in ENDED:
            raise _field_error("paid", "paid_when_ended", "record the amount paid once the placement has ended")
        if body.paid > row.grant:
            raise _field_error("paid", "paid_within_grant", f"paid {body.paid} SEK is more than the grant {row.grant}")
        row.paid = body.paid
    row.status = status
    if body.note is not None:
        row.note = body.note


def follow_up(session: Session, subject: Subject, region: Region, commitment_id: int, body: FollowUp) -> Commitment:
    """Record what happened to a commitment; released money and months go back to later rounds at once."""
    lock_region(session, region.id)
    row = session.scalar(
        q.commitments_writable_by(subject).where(Commitment.id == commitment_id, Commitment.region_id == region.id)
    )
    if row is None:
        raise NotFound(f"commitment {commitment_id} not found in region {region.code}")
    before = violations(session, region.id)
    previous = row.status
    _apply(row, body)
    row.version += 1
    if body.return_to_pool and row.status != previous and row.status in ("interrupted", "not_started"):
        session.get_one(Candidate, row.candidate_id).status = "waiting"
    session.flush()
    # A corrected (higher) payment holds more again: it must still fit.
    _refuse_new(before, violations(session, region.id), "the follow-up", "commitment-overdraws")
    audit(
        session,
        subject,
        "commitment.follow_up",
        "commitment",
        row.id,
        region.id,
        status=row.status,
        paid=row.paid,
        last_month=row.last_month.isoformat() if row.last_month else None,
    )
    return row


def view_for(subject: Subject) -> Callable[[Commitment], dict[str, Any]]:
    """How `subject` sees commitments: a clinic without the coordinator's follow-up note (free text about the
    trainee, written for the region's books, not for the unit: minimised), everyone else in full."""
    if subject.role is Role.CLINIC:
        return lambda row: {**view(row), "note": None}
    return view


def view(row: Commitment) -> dict[str, Any]:
    """The API form of a commitment, with what it still holds and what it released."""
    money, months = held(row)
    return {
        "id": row.id,
        "round_id": row.round_id,
        "proposal_id": row.proposal_id,
        "candidate_id": row.candidate_ref,
        "unit_id": row.unit_ref,
        "offer_id": row.offer_ref,
        "supervisor_id": row.supervisor_ref,
        "programme_id": row.programme_ref,
        "earmark_id": row.earmark_ref,
        "start": row.start,
        "months": row.months,
        "total_cost": row.total_cost,
        "grant": row.grant,
        "unit_share": row.unit_share,
        "status": row.status,
        "last_month": row.last_month,
        "paid": row.paid,
        "held": money,
        "held_months": months,
        "released": row.grant - money,
        "note": row.note,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
