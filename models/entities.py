"""Regions and what a region holds: units, supervisors, offers, candidates (identity apart) and programmes.

Each object keeps its engine attributes (validated by the engine's own input type) in `data`, and the columns
that access control and filtering need (region, unit, ref, status, profession) as typed columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Region(Base):
    """A region (county council) whose coordinators run matching rounds."""

    __tablename__ = "region"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class _Owned:
    """Columns every region-owned object shares."""

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set when a delete finds the object named by a stored round or a commitment: it is kept for them (so every
    # stored round reproduces) but leaves lists, edits and new rounds (api/core/removal.py).
    archived_at: Mapped[datetime | None]


class Unit(_Owned, Base):
    """A care unit or clinic."""

    __tablename__ = "unit"
    __table_args__ = (UniqueConstraint("region_id", "ref"),)

    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")


class Supervisor(_Owned, Base):
    """A supervisor (handledare) at a unit."""

    __tablename__ = "supervisor"
    __table_args__ = (UniqueConstraint("region_id", "ref"),)

    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)


class Offer(_Owned, Base):
    """A placement offer a clinic publishes."""

    __tablename__ = "offer"
    __table_args__ = (UniqueConstraint("region_id", "ref"), Index("ix_offer_live", "region_id", "archived_at", "id"))

    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    profession: Mapped[str] = mapped_column(String(32))


class Candidate(_Owned, Base):
    """A candidate known by an opaque ref; the person's identity is in `candidate_identity`."""

    __tablename__ = "candidate"
    # A region's live rows in id order: a list's page and its count are read from this index alone (a region of
    # thousands of candidates was read row by row for every page's count).
    __table_args__ = (
        UniqueConstraint("region_id", "ref"),
        Index("ix_candidate_live", "region_id", "archived_at", "id"),
    )

    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    profession: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    withdrawn_at: Mapped[datetime | None]  # the candidate left the queue (retention counts from here)
    # Identity and identifying free text erased, on request or by retention (api/core/privacy.py); the ref stays.
    erased_at: Mapped[datetime | None]


class CandidateIdentity(Base):
    """Who a candidate is: personnummer or samordningsnummer and name. Read only when clearly needed, and audited."""

    __tablename__ = "candidate_identity"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id", ondelete="CASCADE"), unique=True)
    personnummer: Mapped[str] = mapped_column(String(13))
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Programme(_Owned, Base):
    """A funding programme of a region."""

    __tablename__ = "programme"
    __table_args__ = (UniqueConstraint("region_id", "ref"),)

    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
