"""Vårdmatch persistence: SQLAlchemy 2.0 ORM, Alembic migrations and access-scoped queries."""

from models.audit import AuditEvent, IdempotencyKey
from models.auth import ApiKey, Role, SigningSecret, User
from models.base import Base
from models.commitments import Commitment, CommitmentStatus
from models.entities import Candidate, CandidateIdentity, Offer, Programme, Region, Supervisor, Unit
from models.jobs import JobStatus, SolverJob
from models.privacy import RetentionPolicy
from models.rounds import MatchRound, Proposal, RoundStatus

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Candidate",
    "CandidateIdentity",
    "Commitment",
    "CommitmentStatus",
    "IdempotencyKey",
    "JobStatus",
    "MatchRound",
    "Offer",
    "Programme",
    "Proposal",
    "Region",
    "RetentionPolicy",
    "Role",
    "RoundStatus",
    "SigningSecret",
    "SolverJob",
    "Supervisor",
    "Unit",
    "User",
]
