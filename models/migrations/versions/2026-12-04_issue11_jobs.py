"""jobs: solver_job (every piece of solver work), and procrastinate's queue schema on PostgreSQL

Revision ID: 0006_issue11_jobs
Revises: 0005_issue13_access
Create Date: 2026-12-04 09:00:00

On PostgreSQL the job queue is procrastinate's: its schema (tables procrastinate_*, their types, functions and
triggers) is the one shipped by the installed procrastinate package, applied here so that one `alembic upgrade`
(or `vardmatch serve`) prepares everything. A later procrastinate release that changes its schema ships SQL
migrations of its own: apply them in a new migration of ours, as this one applies the whole schema.

Rounds still `solving` from before (solved by a child process of the server, with no job) can never finish now:
they are failed here, as the server did at startup.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0006_issue11_jobs"
down_revision = "0005_issue13_access"
branch_labels = None
depends_on = None

# Drops every procrastinate object: tables (with their triggers), then functions and types, found by name so that
# the list never falls behind the installed schema.
DROP_PROCRASTINATE = """
DO $$
DECLARE item record;
BEGIN
    FOR item IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate%'
    LOOP EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename); END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%'
    LOOP EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.signature); END LOOP;
    FOR item IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate%' AND t.typtype IN ('e', 'c')
    LOOP EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname); END LOOP;
END $$;
"""


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "solver_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("lock", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("solve_seconds", sa.Double(), nullable=True),
        sa.Column("gap", sa.Double(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"], name=op.f("fk_solver_job_created_by_app_user")),
        sa.ForeignKeyConstraint(["region_id"], ["region.id"], name=op.f("fk_solver_job_region_id_region")),
        sa.ForeignKeyConstraint(
            ["round_id"], ["match_round.id"], name=op.f("fk_solver_job_round_id_match_round"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_solver_job")),
    )
    op.create_index(op.f("ix_solver_job_region_id"), "solver_job", ["region_id"], unique=False)
    op.create_index(op.f("ix_solver_job_round_id"), "solver_job", ["round_id"], unique=False)
    op.create_index(op.f("ix_solver_job_status"), "solver_job", ["status"], unique=False)
    op.create_index(
        "uq_solver_job_round",
        "solver_job",
        ["round_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'round'"),
        postgresql_where=sa.text("kind = 'round'"),
    )
    op.execute(
        "UPDATE match_round SET status = 'failed', active_region_id = NULL, "
        "failure = 'the service was upgraded while the round solved' WHERE status = 'solving'"
    )
    if op.get_bind().dialect.name == "postgresql":
        from procrastinate.schema import SchemaManager

        op.execute(sa.text(SchemaManager.get_schema()))


def downgrade() -> None:
    """Undo this migration."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP_PROCRASTINATE)
    op.drop_index("uq_solver_job_round", table_name="solver_job")
    op.drop_index(op.f("ix_solver_job_status"), table_name="solver_job")
    op.drop_index(op.f("ix_solver_job_round_id"), table_name="solver_job")
    op.drop_index(op.f("ix_solver_job_region_id"), table_name="solver_job")
    op.drop_table("solver_job")
    op.execute("UPDATE match_round SET status = 'cancelled' WHERE status = 'queued'")
