"""load: indexes of a region's live candidates and offers in id order (a list's page and count read the index)

Revision ID: 0008_issue13_load
Revises: 0007_issue10_web
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008_issue13_load"
down_revision = "0007_issue10_web"
branch_labels = None
depends_on = None

INDEXES = {"ix_candidate_live": "candidate", "ix_offer_live": "offer"}


def upgrade() -> None:
    for name, table in INDEXES.items():
        op.create_index(name, table, ["region_id", "archived_at", "id"])


def downgrade() -> None:
    for name, table in INDEXES.items():
        op.drop_index(name, table_name=table)
