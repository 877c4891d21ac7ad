"""Every error of the app rendered as RFC 9457 problem details (application/problem+json); the problems themselves
are the application's (api/core/errors.py)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.core.errors import Problem, field_errors
from api.core.redaction import map_strings, mask_numbers

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:vardmatch:problem:"
log = logging.getLogger("vardmatch.api")


def problem_response(
    status: int, slug: str, title: str, detail: str, instance: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response."""
    body = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail, "instance": instance}
    body.update(jsonable_encoder(extra))
    # No personnummer in an error, even one the client sent in a path or a field name.
    body = map_strings(body, mask_numbers)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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
