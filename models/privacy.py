"""How long a region keeps the identities of candidates who have left its queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

# Months an identity is kept when the region has set nothing (see api/README.md, Privacy).
DEFAULT_MONTHS = {"placed_months": 24, "withdrawn_months": 12, "inactive_months": 24}


class RetentionPolicy(Base):
    """A region's retention periods, in months: after a placement ended, after withdrawal (or archiving), and after
    the last sign of activity of a candidate still waiting."""

    __tablename__ = "retention_policy"

    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), primary_key=True)
    placed_months: Mapped[int] = mapped_column(default=DEFAULT_MONTHS["placed_months"])
    withdrawn_months: Mapped[int] = mapped_column(default=DEFAULT_MONTHS["withdrawn_months"])
    inactive_months: Mapped[int] = mapped_column(default=DEFAULT_MONTHS["inactive_months"])
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
