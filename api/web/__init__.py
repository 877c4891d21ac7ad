"""The web application for coordinators, clinics and admins: server-rendered pages on the API's own scoped queries
and services, in Swedish (English as a choice). `install(app)` adds it to the FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.web.render import SECURITY_HEADERS

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


def install(app: FastAPI) -> None:
    """Serve the pages, their static assets (from the package: no CDN) and the security headers."""
    from api.web import admin, clinic, data, pages, rounds

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Order matters: the round pages before the generic /regions/{region}/{kind} pages.
    for module in (rounds, data, admin, clinic, pages):
        app.include_router(module.router, include_in_schema=False)
    app.add_middleware(SecurityHeaders)
