"""Errors as RFC 9457 problem details (application/problem+json) with stable types.

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

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.core.redaction import map_strings, mask_numbers

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:vardmatch:problem:"
log = logging.getLogger("vardmatch.api")


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


def problem_response(
    status: int, slug: str, title: str, detail: str, instance: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response."""
    body = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail, "instance": instance}
    body.update(jsonable_encoder(extra))
    # No personnummer in an error, even one the client sent in a path or a field name.
    body = map_strings(body, mask_numbers)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors as {field, message, type}, without echoing the input (it may hold personal data)."""
    out = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
        out.append({"field": ".".join(location) or "(body)", "message": str(error.get("msg")), "type": error["type"]})
    return out


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status, exc.slug, exc.title, exc.detail, request.url.path, headers=exc.headers, **exc.extra
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(list(exc.errors()))
    return problem_response(
        422, "validation-error", "Validation error", f"{len(errors)} invalid field(s)", request.url.path, errors=errors
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slugs = {
        401: "not-authenticated",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        413: "payload-too-large",  # a body past the limit, refused by FastAPI while it streams in
    }
    slug = slugs.get(exc.status_code, "http-error")
    title = slug.replace("-", " ").capitalize()
    headers = dict(exc.headers or {})
    return problem_response(exc.status_code, slug, title, str(exc.detail), request.url.path, headers=headers)


async def _on_data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the request carried (PostgreSQL: a NUL character in text, a number out of
    # range): the client's input, not a server fault. The value is not echoed; the transaction was rolled back.
    assert isinstance(exc, DataError)
    log.info("database refused a value on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__)
    return problem_response(
        422,
        "validation-error",
        "Validation error",
        "a value in the request cannot be stored or searched for (for example a NUL character)",
        request.url.path,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal-error", "Internal error", "unexpected error; see the logs", request.url.path)


def install(app: FastAPI) -> None:
    """Render every error of the app as problem+json."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(DataError, _on_data_error)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for problem statuses."""
    schema = {"$ref": "#/components/schemas/ProblemDetails"}
    return {s: {"description": "Problem", "content": {PROBLEM_JSON: {"schema": schema}}} for s in statuses}
