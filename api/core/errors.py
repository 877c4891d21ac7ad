"""The problems the application raises, each with a stable type; api/http/errors.py renders them as RFC 9457
problem details (application/problem+json).

Problem (any status)
├── BadRequest        400 bad-request, idempotency-key-missing
├── Unauthorized      401 not-authenticated
├── Forbidden         403 forbidden
├── NotFound          404 not-found
├── Conflict          409 conflict, round-state, report-not-ready, job-state, duplicate
├── PayloadTooLarge   413 payload-too-large
├── Unprocessable     422 validation-error, idempotency-key-reused, invalid-round-inputs, import-rejected
│                         (a value the database refuses, e.g. a NUL character on PostgreSQL, is a validation-error)
└── TooManyRequests   429 too-many-requests
"""

from __future__ import annotations

from typing import Any


class Problem(Exception):
    """A failure the client can act on; rendered as problem+json."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, slug: str | None = None, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.slug = slug or self.slug
        self.headers = headers or {}
        self.extra = extra


class BadRequest(Problem):
    """400: the request cannot be handled as sent."""


class Unauthorized(Problem):
    """401: no or bad credentials."""

    status, slug, title = 401, "not-authenticated", "Not authenticated"


class Forbidden(Problem):
    """403: authenticated, but the role may not do this."""

    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    """404: no such object, or not visible to this user."""

    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    """409: the object's state does not allow this now."""

    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(Problem):
    """413: the upload is too big."""

    status, slug, title = 413, "payload-too-large", "Payload too large"


class Unprocessable(Problem):
    """422: the payload is well-formed but breaks a rule."""

    status, slug, title = 422, "validation-error", "Validation error"


class TooManyRequests(Problem):
    """429: slow down."""

    status, slug, title = 429, "too-many-requests", "Too many requests"


def field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors as {field, message, type}, without echoing the input (it may hold personal data)."""
    out = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
        out.append({"field": ".".join(location) or "(body)", "message": str(error.get("msg")), "type": error["type"]})
    return out
