"""round reads: match_round.unit_index (what a clinic's view needs of the snapshot, filled for stored rounds) and
the unused match_round.worker_pid dropped

Revision ID: 0009_round_reads
Revises: 0008_issue13_load
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

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
    rounds = sa.table(
        "match_round", sa.column("id", sa.Integer), sa.column("snapshot", sa.Text), sa.column("unit_index", sa.JSON)
    )
    connection = op.get_bind()
    for round_id, snapshot in connection.execute(sa.select(rounds.c.id, rounds.c.snapshot)).all():
        try:
            index = _unit_index(json.loads(snapshot))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # an unreadable snapshot: the view reads the snapshot itself, as before
        connection.execute(rounds.update().where(rounds.c.id == round_id).values(unit_index=index))
    # A plain ALTER on SQLite too (3.35+): a batch copy of match_round would delete the proposals that cascade from
    # it while foreign keys are on.
    op.drop_column("match_round", "worker_pid")


def downgrade() -> None:
    op.add_column("match_round", sa.Column("worker_pid", sa.Integer(), nullable=True))
    op.drop_column("match_round", "unit_index")
