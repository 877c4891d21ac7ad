"""Operations: a request id on every request (and in every log line and job it causes), Prometheus /metrics,
/healthz (liveness) and /readyz (the database answers and at least one worker takes jobs)."""

from __future__ import annotations

import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core import logs
from models.base import utcnow
from models.jobs import JobStatus, SolverJob

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
RECENT = 500  # jobs the figures of /metrics are taken over


class RequestContext:
    """ASGI middleware: a request id (the client's X-Request-ID if sane, else a new one) set for the request's
    logs and jobs and echoed in the response; request counts and durations per route for /metrics."""

    def __init__(self, app: ASGIApp, requests: Counter, durations: Histogram) -> None:
        self.app, self.requests, self.durations = app, requests, durations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        token = logs.request_id.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            labels = (scope["method"], route, str(status))
            self.requests.labels(*labels).inc()
            self.durations.labels(*labels).observe(time.perf_counter() - started)
            logs.request_id.reset(token)


def workers_on_postgres(session: Session, stalled_s: float) -> int:
    """procrastinate workers whose heartbeat is recent."""
    return int(
        session.scalar(
            text("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - make_interval(secs => :s)"),
            {"s": stalled_s},
        )
        or 0
    )


def _stats(name: str, doc: str, values: list[float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["stat"])
    if values:
        ordered = sorted(values)
        family.add_metric(["median"], statistics.median(ordered))
        family.add_metric(["p90"], ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))])
        family.add_metric(["max"], ordered[-1])
    return family


class JobCollector(Collector):
    """Figures read from the database at each scrape (so they count every worker on every machine)."""

    def __init__(self, sessions: sessionmaker[Session], workers: Callable[[Session], int]) -> None:
        self.sessions, self.workers = sessions, workers

    def collect(self) -> Iterable[Metric]:
        with self.sessions() as session:
            counts = session.execute(
                select(SolverJob.kind, SolverJob.status, func.count()).group_by(SolverJob.kind, SolverJob.status)
            )
            jobs = GaugeMetricFamily("vardmatch_jobs", "Jobs by kind and status", labels=["kind", "status"])
            depth = 0
            for kind, status, count in counts:
                jobs.add_metric([kind, status], count)
                depth += count if status == JobStatus.QUEUED else 0
            yield jobs
            yield GaugeMetricFamily("vardmatch_job_queue_depth", "Jobs waiting for a worker", value=depth)
            oldest = session.scalar(select(func.min(SolverJob.created_at)).where(SolverJob.status == JobStatus.QUEUED))
            age = (utcnow() - oldest).total_seconds() if oldest else 0.0
            yield GaugeMetricFamily("vardmatch_job_oldest_queued_seconds", "Wait of the oldest queued job", value=age)
            started = session.execute(
                select(
                    SolverJob.created_at,
                    SolverJob.started_at,
                    SolverJob.finished_at,
                    SolverJob.solve_seconds,
                    SolverJob.gap,
                )
                .where(SolverJob.started_at.is_not(None))
                .order_by(SolverJob.id.desc())
                .limit(RECENT)
            ).all()
            waits = [(s - c).total_seconds() for c, s, _, _, _ in started]
            runs = [(f - s).total_seconds() for _, s, f, _, _ in started if f is not None]
            yield _stats("vardmatch_job_queue_wait_seconds", f"Queue wait of the last {RECENT} started jobs", waits)
            yield _stats("vardmatch_job_run_seconds", f"Run time of the last {RECENT} finished jobs", runs)
            solves = [x for _, _, _, x, _ in started if x is not None]
            gaps = [g for _, _, _, _, g in started if g is not None]
            yield _stats("vardmatch_round_solve_seconds", f"Solver time of the last {RECENT} rounds", solves)
            yield _stats("vardmatch_round_gap", f"Optimality gap of the last {RECENT} rounds", gaps)
            yield GaugeMetricFamily("vardmatch_workers", "Workers taking jobs", value=self.workers(session))


def install(app: FastAPI, sessions: sessionmaker[Session], workers: Callable[[Session], int]) -> None:
    """Add the request-id middleware, /metrics, /healthz and /readyz to the app."""
    registry = CollectorRegistry()
    requests = Counter("vardmatch_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    durations = Histogram(
        "vardmatch_http_request_duration_seconds", "HTTP request time", ["method", "route", "status"], registry=registry
    )
    registry.register(JobCollector(sessions, workers))
    app.add_middleware(RequestContext, requests=requests, durations=durations)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> JSONResponse:
        """Liveness: the process answers and the database answers."""
        try:
            with request.app.state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Readiness: the database answers and at least one worker takes jobs."""
        body: dict[str, Any] = {"database": "ok", "workers": 0}
        try:
            with sessions() as session:
                session.execute(text("SELECT 1"))
                body["workers"] = workers(session)
        except Exception:
            body["database"] = "down"
        ready = body["database"] == "ok" and body["workers"] > 0
        return JSONResponse({"status": "ready" if ready else "unavailable", **body}, status_code=200 if ready else 503)
