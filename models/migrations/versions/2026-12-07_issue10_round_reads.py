"""round reads: match_round.unit_index (what a clinic's view needs of the snapshot) and .analysis_error (the
error of the reports), filled for stored rounds; the unused match_round.worker_pid dropped

Revision ID: 0009_round_reads
Revises: 0008_issue13_load
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009_round_reads"
down_revision = "0008_issue13_load"
branch_labels = None
depends_on = None

# The region-wide parts of a policy (they name candidates): never in the index. A copy of api.core.round_views as
# of this revision, so that the migration stays what it was when the code moves on.
REGION_WIDE = ("pins", "forbids", "keep", "floors")


def _unit_index(snapshot: dict[str, Any]) -> dict[str, Any]:
    units: dict[str, dict[str, list[str]]] = {}
    for kind in ("offers", "supervisors"):
        for item in snapshot.get(kind, []):
            units.setdefault(str(item.get("unit_id")), {"offers": [], "supervisors": []})[kind].append(item["id"])
    policy = {k: v for k, v in snapshot.get("policy", {}).items() if k not in REGION_WIDE}
    return {"units": units, "policy": policy}


def upgrade() -> None:
    op.add_column("match_round", sa.Column("unit_index", sa.JSON(), nullable=True))
    op.add_column("match_round", sa.Column("analysis_error", sa.Text(), nullable=True))
    rounds = sa.table(
        "match_round",
        sa.column("id", sa.Integer),
        sa.column("snapshot", sa.Text),
        sa.column("analysis", sa.JSON),
        sa.column("unit_index", sa.JSON),
        sa.column("analysis_error", sa.Text),
    )
    connection = op.get_bind()
    # One round at a time: a region's snapshots and reports together can be large.
    for (round_id,) in connection.execute(sa.select(rounds.c.id)).all():
        snapshot, analysis = connection.execute(
            sa.select(rounds.c.snapshot, rounds.c.analysis).where(rounds.c.id == round_id)
        ).one()
        values: dict[str, Any] = {}
        # An unreadable snapshot gets no index: the view reads the snapshot itself, as before.
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            values["unit_index"] = _unit_index(json.loads(snapshot))
        if isinstance(analysis, dict) and analysis.get("error") is not None:
            values["analysis_error"] = str(analysis["error"])
        if values:
            connection.execute(rounds.update().where(rounds.c.id == round_id).values(**values))
    # A plain ALTER on SQLite too (3.35+): a batch copy of match_round would delete the proposals that cascade from
    # it while foreign keys are on.
    op.drop_column("match_round", "worker_pid")


def downgrade() -> None:
    op.add_column("match_round", sa.Column("worker_pid", sa.Integer(), nullable=True))
    op.drop_column("match_round", "analysis_error")
    op.drop_column("match_round", "unit_index")
