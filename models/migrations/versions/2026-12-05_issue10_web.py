"""web: the clinic's reason for declining a proposal, in a column of the proposal

Revision ID: 0007_issue10_web
Revises: 0006_issue11_jobs
Create Date: 2026-12-05 09:00:00

Until now the reason was only in the audit log (event `proposal.decline_reason`, detail `reason`); upgrading copies
it from there into the new column, so that declines answered before keep their reason. Downgrading drops the
column; the audit events still hold the reasons.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_issue10_web"
down_revision = "0006_issue11_jobs"
branch_labels = None
depends_on = None

# The reasons a clinic may give (api.rounds.DECLINE_REASONS when this was written): anything else in an old audit
# event is not copied, so that the column only ever holds a code of the list.
REASONS = ("no_supervisor", "period", "language", "specialty", "capacity", "other")


def upgrade() -> None:
    """Apply this migration."""
    op.add_column("proposal", sa.Column("decline_reason", sa.String(length=32), nullable=True))
    audit = sa.table(
        "audit_event",
        sa.column("id", sa.Integer()),
        sa.column("action", sa.String()),
        sa.column("object_id", sa.String()),
        sa.column("detail", sa.JSON()),
    )
    proposal = sa.table(
        "proposal", sa.column("id", sa.Integer()), sa.column("answer", sa.String()), sa.column("decline_reason")
    )
    bind = op.get_bind()
    events = bind.execute(
        sa.select(audit.c.object_id, audit.c.detail)
        .where(audit.c.action == "proposal.decline_reason")
        .order_by(audit.c.id)
    )
    # The latest event of a proposal wins (there is only one per decline, but be exact about it).
    reasons = {
        int(object_id): (detail or {}).get("reason")
        for object_id, detail in events
        if str(object_id).isdigit() and (detail or {}).get("reason") in REASONS
    }
    for proposal_id, reason in reasons.items():
        bind.execute(
            proposal.update()
            .where(proposal.c.id == proposal_id, proposal.c.answer == "declined")
            .values(decline_reason=reason)
        )


def downgrade() -> None:
    """Undo this migration."""
    with op.batch_alter_table("proposal") as batch:
        batch.drop_column("decline_reason")
