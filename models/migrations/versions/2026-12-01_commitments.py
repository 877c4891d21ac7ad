"""commitments: accepted placements and their follow-up

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "commitment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("candidate_ref", sa.String(length=64), nullable=False),
        sa.Column("unit_ref", sa.String(length=64), nullable=False),
        sa.Column("offer_ref", sa.String(length=64), nullable=False),
        sa.Column("supervisor_ref", sa.String(length=64), nullable=False),
        sa.Column("programme_ref", sa.String(length=64), nullable=False),
        sa.Column("earmark_ref", sa.String(length=64), nullable=True),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("total_cost", sa.Integer(), nullable=False),
        sa.Column("grant", sa.Integer(), nullable=False),
        sa.Column("unit_share", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_month", sa.Date(), nullable=True),
        sa.Column("paid", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidate.id"], name=op.f("fk_commitment_candidate_id_candidate")),
        sa.ForeignKeyConstraint(["offer_id"], ["offer.id"], name=op.f("fk_commitment_offer_id_offer")),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposal.id"], name=op.f("fk_commitment_proposal_id_proposal")),
        sa.ForeignKeyConstraint(["region_id"], ["region.id"], name=op.f("fk_commitment_region_id_region")),
        sa.ForeignKeyConstraint(["round_id"], ["match_round.id"], name=op.f("fk_commitment_round_id_match_round")),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_commitment_unit_id_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitment")),
        sa.UniqueConstraint("proposal_id", name=op.f("uq_commitment_proposal_id")),
    )
    for column in ("region_id", "candidate_id", "unit_id", "programme_ref"):
        op.create_index(op.f(f"ix_commitment_{column}"), "commitment", [column], unique=False)


def downgrade() -> None:
    """Undo this migration."""
    for column in ("region_id", "candidate_id", "unit_id", "programme_ref"):
        op.drop_index(op.f(f"ix_commitment_{column}"), table_name="commitment")
    op.drop_table("commitment")
