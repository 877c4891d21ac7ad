"""Access-scoped statements: every read and write of the API starts from one of these, never from a bare select.

A subject sees: admin everything; a coordinator one region; a clinic user its own unit, the candidates proposed
to it in published rounds, and nothing of identity, programmes or other units.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, false, select, true
from sqlalchemy.sql.elements import ColumnElement

from models.audit import AuditEvent
from models.auth import Role, User
from models.commitments import Commitment
from models.entities import Candidate, CandidateIdentity, Offer, Programme, Region, Supervisor, Unit
from models.rounds import MatchRound, Proposal, RoundStatus

VISIBLE_TO_CLINICS = (RoundStatus.PUBLISHED,)


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is asking: a user with a role and, for scoped roles, a region or a unit."""

    user_id: int
    role: Role
    region_id: int | None = None
    unit_id: int | None = None

    @property
    def is_admin(self) -> bool:
        """True for administrators."""
        return self.role is Role.ADMIN


def _region(subject: Subject, column: ColumnElement[int] | object) -> ColumnElement[bool]:
    if subject.is_admin:
        return true()
    if subject.region_id is None:
        return false()
    return column == subject.region_id  # type: ignore[return-value]


def regions_readable_by(subject: Subject) -> Select[tuple[Region]]:
    """Regions the subject may see."""
    return select(Region).where(_region(subject, Region.id))


def units_readable_by(subject: Subject) -> Select[tuple[Unit]]:
    """Units: a clinic user sees only its own."""
    if subject.role is Role.CLINIC:
        return select(Unit).where(Unit.id == subject.unit_id)
    return select(Unit).where(_region(subject, Unit.region_id))


def units_writable_by(subject: Subject) -> Select[tuple[Unit]]:
    """Units the subject may change: admins and the region's coordinators."""
    if subject.role is Role.CLINIC:
        return select(Unit).where(false())
    return units_readable_by(subject)


def supervisors_readable_by(subject: Subject) -> Select[tuple[Supervisor]]:
    """Supervisors: a clinic user sees and edits its own unit's."""
    if subject.role is Role.CLINIC:
        return select(Supervisor).where(Supervisor.unit_id == subject.unit_id)
    return select(Supervisor).where(_region(subject, Supervisor.region_id))


supervisors_writable_by = supervisors_readable_by


def offers_readable_by(subject: Subject) -> Select[tuple[Offer]]:
    """Offers: a clinic user sees and edits its own unit's."""
    if subject.role is Role.CLINIC:
        return select(Offer).where(Offer.unit_id == subject.unit_id)
    return select(Offer).where(_region(subject, Offer.region_id))


offers_writable_by = offers_readable_by


def _proposed_to_clinic(subject: Subject) -> Select[tuple[int]]:
    return (
        select(Proposal.candidate_id)
        .join(MatchRound, MatchRound.id == Proposal.round_id)
        .where(Proposal.unit_id == subject.unit_id, MatchRound.status.in_(VISIBLE_TO_CLINICS))
    )


def _committed_to_clinic(subject: Subject) -> Select[tuple[int]]:
    return select(Commitment.candidate_id).where(Commitment.unit_id == subject.unit_id)


def candidates_readable_by(subject: Subject) -> Select[tuple[Candidate]]:
    """Candidates: a clinic user sees only those proposed to its unit in a published round, and those placed at its
    unit (a commitment: its trainees, also once the round is closed by the next publication)."""
    if subject.role is Role.CLINIC:
        return select(Candidate).where(
            Candidate.id.in_(_proposed_to_clinic(subject)) | Candidate.id.in_(_committed_to_clinic(subject))
        )
    return select(Candidate).where(_region(subject, Candidate.region_id))


def candidates_writable_by(subject: Subject) -> Select[tuple[Candidate]]:
    """Candidates the subject may change: admins and the region's coordinators."""
    if subject.role is Role.CLINIC:
        return select(Candidate).where(false())
    return candidates_readable_by(subject)


def identities_readable_by(subject: Subject) -> Select[tuple[CandidateIdentity, Candidate]]:
    """Identity rows: never for clinic users."""
    statement = select(CandidateIdentity, Candidate).join(Candidate, Candidate.id == CandidateIdentity.candidate_id)
    if subject.role is Role.CLINIC:
        return statement.where(false())
    return statement.where(_region(subject, Candidate.region_id))


def programmes_readable_by(subject: Subject) -> Select[tuple[Programme]]:
    """Funding programmes: coordinators' business, not clinics'."""
    if subject.role is Role.CLINIC:
        return select(Programme).where(false())
    return select(Programme).where(_region(subject, Programme.region_id))


programmes_writable_by = programmes_readable_by


def rounds_readable_by(subject: Subject) -> Select[tuple[MatchRound]]:
    """Rounds: a clinic user sees only published rounds of its region."""
    statement = select(MatchRound).where(_region(subject, MatchRound.region_id))
    if subject.role is Role.CLINIC:
        return statement.where(MatchRound.status.in_(VISIBLE_TO_CLINICS))
    return statement


def rounds_writable_by(subject: Subject) -> Select[tuple[MatchRound]]:
    """Rounds the subject may run, change or publish: admins and the region's coordinators."""
    if subject.role is Role.CLINIC:
        return select(MatchRound).where(false())
    return rounds_readable_by(subject)


def proposals_readable_by(subject: Subject) -> Select[tuple[Proposal]]:
    """Proposals: a clinic user sees only its own unit's, in published rounds."""
    statement = select(Proposal).join(MatchRound, MatchRound.id == Proposal.round_id)
    if subject.role is Role.CLINIC:
        return statement.where(Proposal.unit_id == subject.unit_id, MatchRound.status.in_(VISIBLE_TO_CLINICS))
    return statement.where(_region(subject, MatchRound.region_id))


def proposals_answerable_by(subject: Subject) -> Select[tuple[Proposal]]:
    """Proposals the subject may accept or decline: its unit's (clinic) or any (admin), in published rounds."""
    statement = select(Proposal).join(MatchRound, MatchRound.id == Proposal.round_id)
    statement = statement.where(MatchRound.status.in_(VISIBLE_TO_CLINICS))
    if subject.is_admin:
        return statement
    if subject.role is Role.CLINIC:
        return statement.where(Proposal.unit_id == subject.unit_id)
    return statement.where(false())


def commitments_readable_by(subject: Subject) -> Select[tuple[Commitment]]:
    """Commitments: coordinators their region's; a clinic user its own unit's (its trainees, no money of others)."""
    if subject.role is Role.CLINIC:
        return select(Commitment).where(Commitment.unit_id == subject.unit_id)
    return select(Commitment).where(_region(subject, Commitment.region_id))


def commitments_writable_by(subject: Subject) -> Select[tuple[Commitment]]:
    """Commitments whose follow-up the subject may record: admins and the region's coordinators."""
    if subject.role is Role.CLINIC:
        return select(Commitment).where(false())
    return commitments_readable_by(subject)


def users_readable_by(subject: Subject) -> Select[tuple[User]]:
    """Users: admins see everyone, others only themselves."""
    if subject.is_admin:
        return select(User)
    return select(User).where(User.id == subject.user_id)


def users_writable_by(subject: Subject) -> Select[tuple[User]]:
    """Users the subject may create or change: admins only."""
    return select(User) if subject.is_admin else select(User).where(false())


def audit_readable_by(subject: Subject) -> Select[tuple[AuditEvent]]:
    """Audit events: admins all, coordinators their region's, clinics none."""
    if subject.role is Role.CLINIC:
        return select(AuditEvent).where(false())
    return select(AuditEvent).where(_region(subject, AuditEvent.region_id))
