"""access: a signing secret kept with the data, and a token version per user

Revision ID: 0005_issue13_access
Revises: 0004_issue12_privacy
Create Date: 2026-12-03 09:00:00

No signing secret ships in the code: an install without VARDMATCH_SECRET_KEY signs its tokens with the random one
made here (the service makes one too if the row is ever missing). A user's token_version is carried in each token;
a password change bumps it, which revokes every token issued before.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime, utcnow

revision = "0005_issue13_access"
down_revision = "0004_issue12_privacy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))
    table = op.create_table(
        "signing_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_secret")),
    )
    op.bulk_insert(table, [{"id": 1, "secret": secrets.token_urlsafe(48), "created_at": utcnow()}])


def downgrade() -> None:
    """Revert this migration."""
    op.drop_table("signing_secret")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("token_version")
