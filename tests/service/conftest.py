"""A real service for the tests: migrated database (SQLite file, and PostgreSQL when
VARDMATCH_TEST_POSTGRES_URL is set), test regions and users, uvicorn on a free port in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.core.identity import fake_test_personnummer
from api.core.security import hash_password
from api.core.settings import Settings
from api.core.snapshot import import_instance
from matching.input.validate import load_instance
from models import Candidate, CandidateIdentity, Region, Role, Unit, User
from models.db import make_engine, make_sessionmaker, transaction
from models.migrate import upgrade
from tests.databases import BACKENDS, fresh_database

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "small"
PASSWORD = "correct-horse-battery"
USERS = {
    "admin": (Role.ADMIN, None, None),
    "coord01": (Role.COORDINATOR, "01", None),
    "coord02": (Role.COORDINATOR, "02", None),
    "clinic_u1": (Role.CLINIC, "01", "U1"),
    "clinic_u2": (Role.CLINIC, "01", "U2"),
    "clinic02": (Role.CLINIC, "02", "U1"),
}


def seed(url: str) -> None:
    """Two regions from the small fixtures, and one user of every role and scope."""
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        regions = {}
        for code, name, fixture in (
            ("01", "Region Test", "pin_and_forbid.json"),
            ("02", "Region Annan", "one_slot_two_candidates.json"),
        ):
            region = Region(code=code, name=name)
            session.add(region)
            session.flush()
            import_instance(session, region, load_instance(FIXTURES / fixture))
            regions[code] = region
        for index, candidate in enumerate(session.query(Candidate).order_by(Candidate.id)):
            # A TEST personnummer (Skatteverket's test range), never a real one.
            session.add(
                CandidateIdentity(
                    candidate_id=candidate.id,
                    personnummer=fake_test_personnummer(index),
                    given_name="Test",
                    family_name="Testsson",
                )
            )
        password_hash = hash_password(PASSWORD)
        for username, (role, code, unit_ref) in USERS.items():
            region = regions[code] if code else None
            unit = None
            if unit_ref and region:
                unit = session.query(Unit).filter_by(region_id=region.id, ref=unit_ref).one()
            session.add(
                User(
                    username=username,
                    password_hash=password_hash,
                    role=role,
                    region_id=region.id if region else None,
                    unit_id=unit.id if unit else None,
                )
            )
    engine.dispose()


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    """A running service and helpers to call it as each test user."""

    app: FastAPI
    base_url: str
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, username: str | None = None) -> httpx.Client:
        """An HTTP client, logged in as the user when given."""
        headers = {}
        if username:
            headers["Authorization"] = f"Bearer {self.token(username)}"
        return httpx.Client(base_url=self.base_url + "/api/v1", headers=headers, timeout=30)

    def token(self, username: str) -> str:
        """A bearer token for the user (cached)."""
        if username not in self.tokens:
            with httpx.Client(base_url=self.base_url, timeout=30) as client:
                r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
                assert r.status_code == 200, r.text
                self.tokens[username] = r.json()["access_token"]
        return self.tokens[username]

    def call(self, username: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request as the user."""
        with self.client(username) as client:
            return client.request(method, path, **kw)

    def wait_round(self, username: str, region: str, round_id: int, timeout: float = 60) -> dict[str, Any]:
        """Poll a round until it is no longer queued or solving."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.call(username, "GET", f"/regions/{region}/rounds/{round_id}").json()
            if body["status"] not in ("queued", "solving"):
                return body
            time.sleep(0.2)
        raise AssertionError(f"round {round_id} still queued or solving after {timeout} s")

    def wait_job(self, username: str, job: dict[str, Any] | int, timeout: float = 90) -> dict[str, Any]:
        """Poll a job (its 202 body, or its id) until it has ended; its final form."""
        job_id = job if isinstance(job, int) else job["id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.call(username, "GET", f"/jobs/{job_id}").json()
            if body["status"] not in ("queued", "running"):
                return body
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still open after {timeout} s")

    def result(self, username: str, response: httpx.Response) -> dict[str, Any]:
        """The result of the job a 202 answer queued (asserting that it succeeded)."""
        assert response.status_code == 202, response.text
        assert response.headers["location"] == f"/api/v1/jobs/{response.json()['id']}"
        done = self.wait_job(username, response.json())
        assert done["status"] == "succeeded", done
        return dict(done["result"])

    @contextmanager
    def solver_delay(self, seconds: float) -> Iterator[None]:
        """Jobs started meanwhile wait this long before solving (to catch them queued or running)."""
        settings = self.app.state.settings
        self.app.state.settings = settings.model_copy(update={"solver_start_delay_s": seconds})
        try:
            yield
        finally:
            self.app.state.settings = settings


def start_service(url: str, **overrides: Any) -> tuple[Service, uvicorn.Server, threading.Thread]:
    """Run the app with uvicorn in a background thread on a free port."""
    # PostgreSQL: the service starts two `vardmatch worker` processes of its own (a real install runs them apart).
    workers = 2 if url.startswith("postgresql") else None
    overrides = {
        "workers": workers,
        "worker_heartbeat_s": 0.5,
        "worker_stalled_s": 4.0,
        "shutdown_grace_s": 5.0,
        **overrides,
    }
    settings = Settings(environment="test", database_url=url, lease_s=3.0, login_failures_allowed=5, **overrides)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on", proxy_headers=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    return Service(app=app, base_url=f"http://127.0.0.1:{port}", url=url), server, thread


@pytest.fixture(scope="module", params=BACKENDS)
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A migrated, seeded database behind a running server (one per test module and backend)."""
    url = fresh_database(request.param, tmp_path_factory.mktemp("db"))
    upgrade(url)
    seed(url)
    svc, server, thread = start_service(url)
    yield svc
    server.should_exit = True
    thread.join(timeout=20)
    # Close pooled connections even if a request was still running when the server stopped.
    svc.app.state.engine.dispose()
