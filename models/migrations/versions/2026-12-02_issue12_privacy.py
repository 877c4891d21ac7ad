"""privacy: archived objects, withdrawn and erased candidates, retention per region, an append-only audit log

Revision ID: 0004_issue12_privacy
Revises: 0003
Create Date: 2026-12-02 09:00:00

The audit log is made append-only in the database itself: triggers refuse every UPDATE and DELETE (and TRUNCATE on
PostgreSQL) of audit_event, whoever connects. A later migration that rebuilds audit_event in SQLite batch mode must
create the triggers again (a rebuilt table has none).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0004_issue12_privacy"
down_revision = "0003"
branch_labels = None
depends_on = None

OWNED = ("unit", "supervisor", "offer", "candidate", "programme")
MESSAGE = "audit_event is append-only"

SQLITE_TRIGGERS = (
    f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    f"CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
)
POSTGRES_TRIGGERS = (
    "CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()",
    "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()",
)


def upgrade() -> None:
    """Apply this migration."""
    for table in OWNED:
        op.add_column(table, sa.Column("archived_at", UTCDateTime(timezone=True), nullable=True))
    op.add_column("candidate", sa.Column("withdrawn_at", UTCDateTime(timezone=True), nullable=True))
    op.add_column("candidate", sa.Column("erased_at", UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "retention_policy",
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("placed_months", sa.Integer(), nullable=False),
        sa.Column("withdrawn_months", sa.Integer(), nullable=False),
        sa.Column("inactive_months", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["region_id"], ["region.id"], name=op.f("fk_retention_policy_region_id_region")),
        sa.ForeignKeyConstraint(["updated_by"], ["app_user.id"], name=op.f("fk_retention_policy_updated_by_app_user")),
        sa.PrimaryKeyConstraint("region_id", name=op.f("pk_retention_policy")),
    )
    statements = POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    """Undo this migration."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER audit_event_no_change ON audit_event")
        op.execute("DROP FUNCTION audit_event_append_only()")
    else:
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute("DROP TRIGGER audit_event_no_delete")
    op.drop_table("retention_policy")
    with op.batch_alter_table("candidate") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("withdrawn_at")
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("archived_at")
