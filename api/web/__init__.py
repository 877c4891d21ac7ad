"""The web application for coordinators, clinics and admins: server-rendered pages on the API's own scoped queries
and services, in Swedish (English as a choice). `install(app)` adds it to the FastAPI app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.errors import Problem
from api.web.render import SECURITY_HEADERS, problem_page

STATIC = Path(__file__).parent / "static"


class SecurityHeaders:
    """The Content Security Policy and friends on every response but the Swagger UI's (its page has inline
    script): pages, redirects, static files and the API alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/docs"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.lower().encode() not in present
                    and not (name == "Cache-Control" and scope["path"].startswith("/static"))
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


TITLES = {401: "Not authenticated", 403: "Forbidden", 404: "Not found", 405: "Method not allowed"}
NOT_PAGES = ("/api/", "/docs", "/healthz")


def _pages_answer_http_errors_with_pages(app: FastAPI) -> None:
    """A browser address that matches no page (or a request no page can read) gets a page, not JSON; the API's
    paths keep their problem+json."""
    api_handler: Any = app.exception_handlers[StarletteHTTPException]

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith(NOT_PAGES):
            answer: Response = await api_handler(request, exc)
            return answer
        problem = Problem(str(exc.detail), headers=dict(exc.headers or {}))
        problem.status, problem.title = exc.status_code, TITLES.get(exc.status_code, "Bad request")
        response = problem_page(request, problem)
        response.headers.update(problem.headers)
        return response

    app.add_exception_handler(StarletteHTTPException, handler)


def install(app: FastAPI) -> None:
    """Serve the pages, their static assets (from the package: no CDN) and the security headers."""
    from api.web import admin, clinic, commitments, data, jobs, objects, pages, rounds

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Order matters: the round and commitment pages before the generic /regions/{region}/{kind}/... pages, a new
    # object's form before the unit page (/units/new), the unit page before the edit forms (/units/{ref}).
    routers = (
        rounds.router,
        jobs.router,
        commitments.router,
        data.router,
        admin.router,
        objects.new_router,
        clinic.router,
    )
    for router in (*routers, objects.router, pages.router):
        app.include_router(router, include_in_schema=False)
    app.add_middleware(SecurityHeaders)
    _pages_answer_http_errors_with_pages(app)
