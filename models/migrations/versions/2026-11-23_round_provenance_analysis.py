"""round provenance and analysis

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("match_round") as batch:
        batch.add_column(sa.Column("provenance", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("analysis", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Undo this migration."""
    with op.batch_alter_table("match_round") as batch:
        batch.drop_column("analysis")
        batch.drop_column("provenance")
