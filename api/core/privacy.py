"""A candidate's personal data at the end of its life: withdrawal, erasure on request and retention.

Erasure (on request, or by retention once a region's period has run out) leaves the candidate's opaque ref and
everything the rounds need, and removes who they are:
- the identity row (personnummer or samordningsnummer, name);
- identifying free text of the candidate: `specialty` and `ladder.ptj_decision_ref` (Socialstyrelsen's case number)
  in the live record; the case number in every round snapshot too (no rule reads it, so rounds still reproduce);
- the notes of their commitments;
- their number (in any written form) and full name wherever else a region's stored text holds them: round snapshots,
  names, requests, results and reports, other commitment notes, and stored idempotent responses.
The audit log never held them (api.core.audit masks numbers; purposes and reasons about a candidate are scrubbed of
their name before they are written), and it records the erasure: who, when and why, not what.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from api.core.audit import audit
from api.core.commitments import RUNNING
from api.core.errors import Conflict
from api.core.redaction import IdentityText, Scrubber, map_strings, mask_numbers
from api.core.rounds import input_hash
from matching.input.months import month_index
from models import Candidate, CandidateIdentity, Commitment, IdempotencyKey, MatchRound, Region
from models.base import utcnow
from models.privacy import DEFAULT_MONTHS, RetentionPolicy
from models.queries import Subject

# Free text in a candidate's record that could identify them; none of it decides a match except specialty.
FREE_TEXT = ("specialty", "ladder.ptj_decision_ref")


@dataclass
class Erasure:
    """What one erasure changed (no values, only counts and field names)."""

    candidate_id: str
    erased_at: datetime
    identity_removed: bool
    fields_cleared: list[str]
    commitment_notes_cleared: int = 0
    rounds_redacted: int = 0
    stored_responses_redacted: int = 0


@dataclass
class _Target:
    row: Candidate
    identity: CandidateIdentity | None
    text: IdentityText | None = field(init=False)

    def __post_init__(self) -> None:
        self.text = (
            IdentityText(self.identity.personnummer, self.identity.given_name, self.identity.family_name)
            if self.identity
            else None
        )


def identity_of(session: Session, candidate: Candidate) -> CandidateIdentity | None:
    """The candidate's identity row, if any."""
    return session.scalar(select(CandidateIdentity).where(CandidateIdentity.candidate_id == candidate.id))


def scrub_about(session: Session, candidate: Candidate, text: str) -> str:
    """Free text about a candidate (a purpose, a reason) without their number or any word of their name."""
    identity = identity_of(session, candidate)
    if identity is None:
        return mask_numbers(text)
    return IdentityText(identity.personnummer, identity.given_name, identity.family_name).scrub(text, name_parts=True)


def _clear_free_text(row: Candidate) -> list[str]:
    data = dict(row.data)
    ladder = dict(data.get("ladder") or {})
    cleared = []
    if data.pop("specialty", ""):
        cleared.append("specialty")
    if ladder.pop("ptj_decision_ref", None):
        cleared.append("ladder.ptj_decision_ref")
    if ladder:
        data["ladder"] = ladder
    row.data = data
    return cleared


def _scrub_value(value: Any, scrubber: Scrubber) -> Any:
    """The value with the people's numbers and names replaced; the value itself when they are not in it."""
    if value is None or not scrubber.found_in(json.dumps(value, ensure_ascii=False)):
        return value
    return map_strings(value, scrubber.scrub)


def _redact_snapshot(text: str, refs: set[str], scrubber: Scrubber) -> str:
    """The snapshot without the candidates' case numbers and identity values (compact JSON, as stored)."""
    data = json.loads(text)
    changed = False
    for cand in data.get("candidates", []):
        if cand.get("id") in refs and (cand.get("ladder") or {}).get("ptj_decision_ref") is not None:
            cand["ladder"]["ptj_decision_ref"] = None
            changed = True
    if scrubber.found_in(text):
        data, changed = map_strings(data, scrubber.scrub), True
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False) if changed else text


ROUND_TEXT = ("name", "failure", "request", "result", "analysis", "analysis_error", "progress")


def _redact_rounds(session: Session, region_id: int, refs: set[str], scrubber: Scrubber) -> int:
    changed = 0
    every_column = undefer(MatchRound.snapshot), undefer(MatchRound.analysis)  # all read below: one statement
    rounds = select(MatchRound).where(MatchRound.region_id == region_id).options(*every_column)
    for row in session.scalars(rounds.order_by(MatchRound.id)):
        snapshot = _redact_snapshot(row.snapshot, refs, scrubber)
        docs = {name: getattr(row, name) for name in ROUND_TEXT}
        scrubbed = {name: _scrub_value(value, scrubber) for name, value in docs.items()}
        if snapshot == row.snapshot and scrubbed == docs:
            continue
        row.snapshot, row.input_hash = snapshot, input_hash(snapshot)
        for name, value in scrubbed.items():
            if value != docs[name]:
                setattr(row, name, value)
        changed += 1
    return changed


def _redact_responses(session: Session, scrubber: Scrubber) -> int:
    changed = 0
    for row in session.scalars(select(IdempotencyKey)):
        scrubbed = _scrub_value(row.response, scrubber)
        if scrubbed != row.response:
            row.response = scrubbed
            changed += 1
    return changed


def _clear_notes(session: Session, region_id: int, ids: set[int], scrubber: Scrubber) -> dict[int, int]:
    """Notes of the candidates' commitments cleared; other notes of the region scrubbed of their identity values."""
    cleared: dict[int, int] = {}
    for row in session.scalars(select(Commitment).where(Commitment.region_id == region_id, Commitment.note != "")):
        if row.candidate_id in ids:
            row.note = ""
            cleared[row.candidate_id] = cleared.get(row.candidate_id, 0) + 1
        else:
            row.note = scrubber.scrub(row.note)
    return cleared


def erase_candidates(
    session: Session, subject: Subject | None, region: Region, candidates: list[Candidate], why: dict[str, str]
) -> list[Erasure]:
    """Erase the identity and identifying free text of the region's candidates (one pass over the stored rounds),
    each audited with the reason given in `why` (by ref), scrubbed of their own name."""
    targets = [_Target(row, identity_of(session, row)) for row in candidates]
    scrubber = Scrubber([t.text for t in targets if t.text])
    rounds = _redact_rounds(session, region.id, {t.row.ref for t in targets}, scrubber)
    responses = _redact_responses(session, scrubber)
    notes = _clear_notes(session, region.id, {t.row.id for t in targets}, scrubber)
    now = utcnow()
    done = []
    for target in targets:
        row = target.row
        reason = target.text.scrub(why[row.ref], name_parts=True) if target.text else mask_numbers(why[row.ref])
        cleared = _clear_free_text(row)
        if target.identity is not None:
            session.delete(target.identity)
        row.erased_at = now
        row.archived_at = row.archived_at or now  # an erased person is never matched again
        row.version += 1
        erasure = Erasure(row.ref, now, target.identity is not None, cleared, notes.get(row.id, 0), rounds, responses)
        action = "candidate.erase" if subject is not None else "candidate.anonymise"
        audit(
            session,
            subject,
            action,
            "candidate",
            row.ref,
            region.id,
            reason=reason,
            identity_removed=erasure.identity_removed,
            fields_cleared=cleared,
            commitment_notes_cleared=erasure.commitment_notes_cleared,
        )
        done.append(erasure)
    session.flush()
    return done


def erase(session: Session, subject: Subject, region: Region, candidate: Candidate, reason: str) -> Erasure:
    """Erase one candidate on request (409 `already-erased` the second time)."""
    if candidate.erased_at is not None:
        raise Conflict(f"candidate {candidate.ref} was erased on {candidate.erased_at:%Y-%m-%d}", slug="already-erased")
    return erase_candidates(session, subject, region, [candidate], {candidate.ref: reason})[0]


def withdraw(session: Session, subject: Subject, region: Region, candidate: Candidate) -> Candidate:
    """The candidate left the queue: out of later rounds; retention counts from now."""
    running = session.scalar(
        select(Commitment.id).where(Commitment.candidate_id == candidate.id, Commitment.status.in_(RUNNING))
    )
    if running is not None:
        raise Conflict(
            f"candidate {candidate.ref} holds a running placement (commitment {running}); record its follow-up first",
            slug="placement-running",
        )
    if candidate.status == "withdrawn":
        raise Conflict(f"candidate {candidate.ref} has already withdrawn", slug="conflict")
    candidate.status = "withdrawn"
    candidate.withdrawn_at = utcnow()
    candidate.version += 1
    session.flush()
    audit(session, subject, "candidate.withdraw", "candidate", candidate.ref, region.id)
    return candidate


# Retention ---------------------------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day where it is shorter)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def _first_of(month: int) -> date:
    year, month0 = divmod(month, 12)
    return date(year, month0 + 1, 1)


def placement_end(row: Commitment) -> date | None:
    """The day after a placement ended (None while it runs): after its last month, its last month worked if
    interrupted, or its planned start if it never started."""
    if row.status in RUNNING:
        return None
    if row.status == "not_started":
        return row.start
    if row.status == "interrupted" and row.last_month is not None:
        return _first_of(month_index(row.last_month) + 1)
    return _first_of(month_index(row.start) + row.months)


@dataclass(frozen=True)
class Clock:
    """Why and since when a candidate's identity is kept, and the day it may go."""

    reason: str  # placed, withdrawn, archived, inactive
    since: date
    due_on: date


@dataclass(frozen=True)
class Verdict:
    """Retention's decision for one candidate."""

    candidate_id: str
    due: bool
    clock: Clock | None  # None: kept while a placement runs
    note: str


def policy_of(session: Session, region_id: int) -> dict[str, int]:
    """The region's retention periods in months (the defaults where it has set none)."""
    row = session.get(RetentionPolicy, region_id)
    if row is None:
        return dict(DEFAULT_MONTHS)
    return {k: getattr(row, k) for k in DEFAULT_MONTHS}


def last_rounds(session: Session, region_id: int, only: str | None = None) -> dict[str, date]:
    """Candidate ref -> the day of the latest round that considered them (only one candidate's rounds if given)."""
    latest: dict[str, date] = {}
    statement = select(MatchRound.created_at, MatchRound.snapshot).where(MatchRound.region_id == region_id)
    if only is not None:
        statement = statement.where(MatchRound.snapshot.contains(f'"id":"{only}"', autoescape=True))
    rows = session.execute(statement)
    for created, snapshot in rows:
        for cand in json.loads(snapshot).get("candidates", []):
            ref = cand.get("id")
            if ref and (ref not in latest or latest[ref] < _day(created)):
                latest[ref] = _day(created)
    return latest


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def clocks(row: Candidate, ends: list[date | None], last_round: date | None, policy: dict[str, int]) -> list[Clock]:
    """Every retention period that applies to the candidate; their identity may go once all have run out."""
    found = []
    if ends:
        end = max(e for e in ends if e is not None)
        found.append(Clock("placed", end, add_months(end, policy["placed_months"])))
    if row.withdrawn_at is not None:
        since = _day(row.withdrawn_at)
        found.append(Clock("withdrawn", since, add_months(since, policy["withdrawn_months"])))
    if row.archived_at is not None:
        since = _day(row.archived_at)
        found.append(Clock("archived", since, add_months(since, policy["withdrawn_months"])))
    if row.archived_at is None and (row.status == "waiting" or (row.status == "placed" and not ends)):
        since = max(_day(row.updated_at), _day(row.created_at), last_round or date.min)
        found.append(Clock("inactive", since, add_months(since, policy["inactive_months"])))
    return found


def verdicts(session: Session, region: Region, today: date, only: str | None = None) -> list[Verdict]:
    """Retention's decision for every candidate of the region not yet erased (or only the one), oldest first."""
    policy = policy_of(session, region.id)
    rounds = last_rounds(session, region.id, only)
    ends: dict[int, list[date | None]] = {}
    for commitment in session.scalars(select(Commitment).where(Commitment.region_id == region.id)):
        ends.setdefault(commitment.candidate_id, []).append(placement_end(commitment))
    out = []
    statement = select(Candidate).where(Candidate.region_id == region.id, Candidate.erased_at.is_(None))
    if only is not None:
        statement = statement.where(Candidate.ref == only)
    for row in session.scalars(statement.order_by(Candidate.id)):
        if None in ends.get(row.id, []):
            out.append(Verdict(row.ref, False, None, "kept while a placement runs"))
            continue
        found = clocks(row, ends.get(row.id, []), rounds.get(row.ref), policy)
        clock = max(found, key=lambda c: c.due_on) if found else None
        due = clock is not None and clock.due_on <= today
        note = f"{clock.reason} since {clock.since}, kept until {clock.due_on}" if clock else "no period applies"
        out.append(Verdict(row.ref, due, clock, note))
    return out


@dataclass
class RegionRetention:
    """What retention did (or would do) in one region."""

    region: str
    name: str
    policy: dict[str, int]
    anonymised: list[Verdict]
    kept: int


def run_retention(
    session: Session, today: date, *, dry_run: bool, regions: Iterable[Region] | None = None
) -> list[RegionRetention]:
    """Anonymise every candidate whose retention period has run out (nothing else is touched; a second run finds
    nothing). A dry run only reports."""
    chosen = list(regions) if regions is not None else list(session.scalars(select(Region).order_by(Region.code)))
    reports = []
    for region in chosen:
        found = verdicts(session, region, today)
        due = [v for v in found if v.due]
        if due and not dry_run:
            rows = {
                r.ref: r
                for r in session.scalars(
                    select(Candidate).where(
                        Candidate.region_id == region.id, Candidate.ref.in_([v.candidate_id for v in due])
                    )
                )
            }
            why = {v.candidate_id: f"retention: {v.note}" for v in due}
            erase_candidates(session, None, region, [rows[v.candidate_id] for v in due], why)
        reports.append(
            RegionRetention(region.code, region.name, policy_of(session, region.id), due, len(found) - len(due))
        )
    return reports
