"""The FastAPI application: routes under /api/v1, problem+json errors, the job workers it runs itself, health,
metrics and request ids."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from api.core.imports import ImportProcess
from api.core.redaction import install_log_filters
from api.core.security import LoginLimiter
from api.core.settings import Settings
from api.core.signing import Signing
from api.http import errors
from api.http.limits import BodyLimit
from api.http.routers import analysis, audit, auth, commitments, identity, ops, privacy, resources, rounds
from api.http.routers import jobs as jobs_routes
from api.jobs.local import LocalPool, WorkerProcesses
from api.web import install as install_web
from models.db import make_engine, make_sessionmaker

API_PREFIX = "/api/v1"
DOCS_ASSETS = "/docs/assets"
log = logging.getLogger("vardmatch.api")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for the given settings (default: from the environment)."""
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    workers, count_workers = job_workers(settings, sessions)
    import_process = ImportProcess(settings.solver_nice)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if workers is not None:
            workers.start()
        yield
        if workers is not None:
            workers.stop()
        import_process.stop()
        engine.dispose()

    # The documentation's Swagger UI is served from the fastapi-offline package, never from a CDN: a hospital's
    # network may have no internet.
    app = (FastAPIOffline if settings.docs else FastAPI)(
        title="Vårdmatch",
        summary="Match foreign-trained clinicians to supervised placements (PTJ) and funding.",
        version="1",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json" if settings.docs else None,
        **({"static_url": DOCS_ASSETS} if settings.docs else {}),
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.workers = workers
    app.state.import_process = import_process
    app.state.signing = Signing(settings, sessions)
    app.state.login_limiter = LoginLimiter(
        settings.login_failures_allowed, settings.login_account_failures_allowed, settings.login_window_s
    )
    errors.install(app)
    install_log_filters()
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, upload_limit=settings.max_upload_bytes + 64 * 1024)
    routers = (
        auth.router,
        identity.router,
        rounds.router,
        analysis.router,
        commitments.router,
        privacy.router,
        audit.router,
        jobs_routes.router,
        *resources.routers(),
    )
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)

    ops.install(app, sessions, count_workers)
    install_web(app)
    _add_problem_schema(app)
    return app


def job_workers(
    settings: Settings, sessions: sessionmaker[Session]
) -> tuple[LocalPool | WorkerProcesses | None, Callable[[Session], int]]:
    """The workers this service runs itself, and how /readyz and /metrics count the workers that take jobs:
    SQLite, a pool of threads (2 unless VARDMATCH_WORKERS says otherwise); PostgreSQL, `vardmatch worker`
    processes (none unless VARDMATCH_WORKERS asks; every worker on every machine is counted)."""
    if settings.database_url.startswith("sqlite"):
        pool = LocalPool(sessions, settings, 2 if settings.workers is None else settings.workers)
        return (pool if pool.size else None), lambda _session: pool.alive()
    processes = WorkerProcesses(settings, settings.workers or 0) if settings.workers else None
    return processes, lambda session: ops.workers_on_postgres(session, settings.worker_stalled_s)


def _add_problem_schema(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["ProblemDetails"] = (
            ProblemDetails.model_json_schema()
        )
        _declare_framework_problems(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_framework_problems(schema: dict[str, Any]) -> None:
    """Declare on every operation the problems the framework answers before a handler runs: 401 without credentials,
    422 for a path, query or body that does not validate (always problem+json, never FastAPI's own
    HTTPValidationError), and for a body 400 (unparsable) and 413 (over MAX_BODY_BYTES)."""
    problem = errors.problem_responses(400)[400]
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            statuses = []
            if operation.get("security"):
                statuses.append("401")
            if operation.get("parameters") or "requestBody" in operation:
                statuses.append("422")
                if errors.PROBLEM_JSON not in responses.get("422", {}).get("content", {}):
                    responses.pop("422", None)
            if "requestBody" in operation:
                statuses += ["400", "413"]
            for status in statuses:
                responses.setdefault(status, problem)
