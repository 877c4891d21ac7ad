"""The audit log: one append-only event per thing done, written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.core.redaction import map_strings, mask_numbers
from models import AuditEvent
from models.queries import Subject


def audit(
    session: Session,
    subject: Subject | None,
    action: str,
    object_type: str,
    object_id: object,
    region_id: int | None,
    **detail: Any,
) -> None:
    """Append an audit event in the caller's transaction (detail must never hold personal data: any valid
    personnummer in it is masked, since the log can never be changed afterwards)."""
    session.add(
        AuditEvent(
            actor_id=subject.user_id if subject else None,
            actor_role=subject.role.value if subject else "system",
            action=action,
            object_type=object_type,
            object_id=mask_numbers(str(object_id)),
            region_id=region_id,
            detail=map_strings(detail, mask_numbers),
        )
    )
