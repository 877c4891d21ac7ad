"""Commitments: accepted placements, the money and supervisor months they hold, and their follow-up."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class CommitmentStatus(enum.StrEnum):
    """What happened to an accepted placement (seed 000's uppföljning)."""

    ACCEPTED = "accepted"  # the clinic accepted; not yet reported as started
    STARTED = "started"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"  # ended early: `last_month` is the last month worked
    NOT_STARTED = "not_started"  # never started: holds nothing


class Commitment(Base):
    """An accepted proposal: its grant counts against the programme and its supervisor months against the
    supervisor in every later round of the region, until follow-up releases them."""

    __tablename__ = "commitment"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id"), unique=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offer.id"))
    round_id: Mapped[int] = mapped_column(ForeignKey("match_round.id"))
    candidate_ref: Mapped[str] = mapped_column(String(64))
    unit_ref: Mapped[str] = mapped_column(String(64))
    offer_ref: Mapped[str] = mapped_column(String(64))
    supervisor_ref: Mapped[str] = mapped_column(String(64))
    programme_ref: Mapped[str] = mapped_column(String(64), index=True)
    earmark_ref: Mapped[str | None] = mapped_column(String(64))
    start: Mapped[date]
    months: Mapped[int]
    total_cost: Mapped[int]
    grant: Mapped[int]
    unit_share: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=CommitmentStatus.ACCEPTED)
    last_month: Mapped[date | None]  # first day of the last month worked (interrupted)
    paid: Mapped[int | None]  # SEK the programme actually paid out, once known
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)
