"""A schema-driven fuzz of the whole OpenAPI document with schemathesis: every operation as the admin, a coordinator,
a clinic user and nobody, on SQLite and PostgreSQL. No answer may be a 5xx, and every answer must match what the
document declares for it (its status code, content type and body schema).

The hand-written fuzz (test_fuzz.py) aims hostile values at each route; this one lets the document itself drive the
requests, so a route whose answer drifts from its declared response model fails here. Path ids are pointed at real
objects where that reaches deeper (region 01, a solved round, a user the fuzz may change), and the examples are
bounded and derandomized so that the run stays short and reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.core.settings import Settings
from models.migrate import upgrade
from tests.databases import BACKENDS, fresh_database
from tests.service.conftest import Service, seed, start_service

# Read from a throwaway app (no database is touched), so that every operation is its own test case.
DOCUMENT = create_app(Settings(environment="test", database_url="sqlite://")).openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
ROLES = ("admin", "coord01", "clinic_u1", None)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Examples per operation, each sent as all four roles to both databases: about 85 operations x 20 examples took
# 99 CPU-seconds (about 100 s of wall time on 2 quiet cores; 205 s while five other test runs shared them).
MAX_EXAMPLES = 20


@dataclass
class Target:
    """A running service of one database, and what the fuzz aims at in it."""

    service: Service
    headers: dict[str | None, dict[str, str]]
    round_id: int
    user_id: int


def _target(service: Service) -> Target:
    """Tokens of every role (logged in before the login route is fuzzed), a solved round and a user to change."""
    headers: dict[str | None, dict[str, str]] = {None: {}}
    headers |= {role: {"Authorization": f"Bearer {service.token(role)}"} for role in ROLES if role}
    r = service.call(
        "coord01",
        "POST",
        "/regions/01/rounds",
        json={"round_date": "2027-01-15", "time_limit_s": 5},
        headers={"Idempotency-Key": "openapi-fuzz"},
    )
    assert r.status_code == 202, r.text
    round_id = r.json()["id"]
    assert service.wait_round("coord01", "01", round_id)["status"] == "solved"
    victim = service.call(
        "admin", "POST", "/users", json={"username": "openapi-victim", "password": "long-enough-pass", "role": "admin"}
    )
    assert victim.status_code == 201, victim.text
    return Target(service, headers, round_id, victim.json()["id"])


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Target]]:
    """A seeded service per database, all started here: each generated example is sent to every one of them, so
    that generating it (the costly part for the engine's nested bodies) is paid once."""
    started = []
    try:
        for backend in BACKENDS:
            url = fresh_database(backend, tmp_path_factory.mktemp(f"openapi-{backend}"))
            upgrade(url)
            seed(url)
            started.append(start_service(url))
        yield [_target(service) for service, _, _ in started]
    finally:
        for service, server, thread in started:
            server.should_exit = True
            thread.join(timeout=20)
            service.app.state.engine.dispose()


def _aim(case: Any, target: Target) -> None:
    """Point path ids at real objects: region 01 and the solved round always; the changeable user for writes."""
    params = case.path_parameters or {}
    if "region" in params:
        params["region"] = "01"
    if "round_id" in params:
        params["round_id"] = target.round_id
    if "user_id" in params and case.method.upper() != "GET":
        params["user_id"] = target.user_id


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # Generated examples only: the explicit phase sends every example the schema holds (hundreds for some bodies).
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_openapi(case: Any, targets: list[Target]) -> None:
    # Each example is sent to every database as every role in turn.
    for target in targets:
        _aim(case, target)
        for role in ROLES:
            try:
                case.call_and_validate(
                    base_url=target.service.base_url, headers=target.headers[role], checks=CHECKS, timeout=60
                )
            except Exception as exc:
                exc.add_note(f"sent as {role or 'nobody'} to {target.service.url.split(':')[0]}")
                raise


def test_every_operation_declares_the_schema_of_its_answer() -> None:
    missing = [
        (method.upper(), path, status, media)
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        for media, content in (response.get("content") or {"(none)": {}}).items()
        if not content.get("schema")
    ]
    assert missing == []


def test_a_body_that_does_not_parse_is_a_declared_problem(service: Service) -> None:
    """Found by the fuzz: an unparsable JSON body answered 400, which no operation declared."""
    with service.client("clinic_u1") as client:
        r = client.post("/me/password", content=b"\xff{", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    for operations in DOCUMENT["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= set(operation["responses"]), operation["operationId"]
