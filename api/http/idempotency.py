"""Idempotency-Key handling for POSTs that create things (draft-ietf-httpapi-idempotency-key-header).

Same key and same body: the first answer is replayed. Same key, other body: 422. No key: 400.
Keys are per user and expire after the configured TTL.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.core.errors import BadRequest, Unprocessable
from models import IdempotencyKey
from models.base import utcnow


def body_hash(body: dict[str, Any]) -> str:
    """A stable hash of a JSON body."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def lookup(
    session: Session, user_id: int, key: str | None, endpoint: str, digest: str, ttl_h: float
) -> IdempotencyKey | None:
    """The stored answer for this key, None if new; 400 without a key, 422 if reused with another body."""
    if not key:
        raise BadRequest("this request needs an Idempotency-Key header", slug="idempotency-key-missing")
    if len(key) > 200:
        raise BadRequest("Idempotency-Key is longer than 200 characters", slug="idempotency-key-invalid")
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - timedelta(hours=ttl_h)))
    row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
    if row is None:
        return None
    if row.endpoint != endpoint or row.body_hash != digest:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request", slug="idempotency-key-reused"
        )
    return row


def remember(
    session: Session, user_id: int, key: str, endpoint: str, digest: str, status: int, response: dict[str, Any]
) -> None:
    """Store the first answer in the caller's transaction."""
    session.add(
        IdempotencyKey(
            user_id=user_id, key=key, endpoint=endpoint, body_hash=digest, status_code=status, response=response
        )
    )
