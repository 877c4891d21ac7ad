"""Matching rounds and their proposals."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class RoundStatus(enum.StrEnum):
    """Life of a round: queued -> solving -> solved -> published -> closed (by the next publication), or failed /
    cancelled. A round waits `queued` while another round of its region solves."""

    QUEUED = "queued"
    SOLVING = "solving"
    SOLVED = "solved"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PUBLISHED = "published"
    CLOSED = "closed"


ACTIVE = (RoundStatus.QUEUED, RoundStatus.SOLVING)


class MatchRound(Base):
    """A round: frozen inputs, policy, progress while solving and the summary of its result."""

    __tablename__ = "match_round"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    # Set to region_id while the round solves, NULL otherwise: a plain unique constraint then allows one
    # solving round per region on SQLite and PostgreSQL alike (NULLs never collide).
    active_region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    round_date: Mapped[date]
    request: Mapped[dict[str, Any]]
    # Every input of the round (the whole region: candidates, offers, programmes, ...): large, so loaded only when
    # read (deferred). Progress polls and round lists never need it; what a clinic's view needs of it is in
    # `unit_index`.
    snapshot: Mapped[str] = mapped_column(Text, deferred=True)
    input_hash: Mapped[str] = mapped_column(String(64))
    # Per unit ref its offers and supervisors in the snapshot, and the snapshot's policy without the region's pairs
    # and floors (api.core.round_views.unit_index): no candidate in it.
    unit_index: Mapped[dict[str, Any] | None]
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lease_until: Mapped[datetime | None]
    failure: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None]
    # Python, OR-Tools, numpy, scipy, ... versions of the solver process: with the snapshot (which holds the policy
    # and seed) they are what it takes to reproduce the result.
    provenance: Mapped[dict[str, Any] | None]
    # Reports computed after solving: fairness per group, floor prices, shadow prices, why-not summary. Large, so
    # deferred: views ask the database whether they are there (api.core.round_views.analysis_states).
    analysis: Mapped[dict[str, Any] | None] = mapped_column(deferred=True)
    # The error that stopped the reports (also in `analysis`), apart so that views need not read the reports.
    analysis_error: Mapped[str | None] = mapped_column(Text)
    previous_round_id: Mapped[int | None] = mapped_column(ForeignKey("match_round.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)


class Proposal(Base):
    """One proposed match of a round, with its money and the clinic's answer."""

    __tablename__ = "proposal"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("match_round.id", ondelete="CASCADE"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offer.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    candidate_ref: Mapped[str] = mapped_column(String(64))
    offer_ref: Mapped[str] = mapped_column(String(64))
    supervisor_ref: Mapped[str] = mapped_column(String(64))
    programme_ref: Mapped[str] = mapped_column(String(64))
    earmark_ref: Mapped[str | None] = mapped_column(String(64))
    start: Mapped[date]
    months: Mapped[int]
    total_cost: Mapped[int]
    grant: Mapped[int]
    unit_share: Mapped[int]
    score: Mapped[int]
    breakdown: Mapped[dict[str, Any]]
    answer: Mapped[str] = mapped_column(String(16), default="pending")
    # Why the clinic declined: a code of api.core.rounds.DECLINE_REASONS (never free text, which could name a person).
    decline_reason: Mapped[str | None] = mapped_column(String(32))
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
