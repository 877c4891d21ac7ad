"""Request bodies past a limit are refused with 413 (problem+json on the API, a page on the web's pages): by their
Content-Length or while they stream in. Uploads (`.../import`) have their own, larger limit."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.errors import problem_response

# Paths answered with problem+json; the others are the web's pages (api/web), which answer with a page.
API_PATHS = ("/api/", "/docs", "/openapi", "/healthz", "/readyz", "/metrics")


def _refuse(detail: str) -> Receive:
    async def receive() -> Message:
        raise HTTPException(413, detail)

    return receive


class BodyLimit:
    """ASGI middleware: at most `limit` body bytes per request, `upload_limit` on import routes."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app, self.limit, self.upload_limit = app, limit, upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].endswith("/import") else self.limit
        detail = f"the request body is limited to {limit} bytes"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            if not scope["path"].startswith(API_PATHS):
                # A web page: the refusal comes where the page reads its form, and is answered as a page.
                await self.app(scope, _refuse(detail), send)
                return
            response = problem_response(413, "payload-too-large", "Payload too large", detail, scope["path"])
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                # Raised where the route reads its body; FastAPI passes HTTPException on to the problem handler.
                raise HTTPException(413, detail)
            return message

        await self.app(scope, limited, send)
