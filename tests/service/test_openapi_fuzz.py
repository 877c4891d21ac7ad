"""A schema-driven fuzz of the whole OpenAPI document with schemathesis: every operation as the admin, a coordinator,
a clinic user and nobody, on SQLite and PostgreSQL. No answer may be a 5xx, and every answer must match what the
document declares for it (its status code, content type and body schema).

The hand-written fuzz (test_fuzz.py) aims hostile values at each route; this one lets the document itself drive the
requests, so a route whose answer drifts from its declared response model fails here. Path ids are pointed at real
objects where that reaches deeper (region 01, a solved round, a user the fuzz may change), and the examples are
bounded and derandomized so that the run stays short and reproducible.
"""

from __future__ import annotations

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
from api.settings import Settings
from tests.service.conftest import Service

# Read from a throwaway app (no database is touched), so that every operation is its own test case.
DOCUMENT = create_app(Settings(environment="test", database_url="sqlite://")).openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
USERS = ("admin", "coord01", "clinic_u1")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Examples per operation and role: about 85 operations x 3 roles x 2 databases stay within a few minutes on 2 cores.
MAX_EXAMPLES = 3


@pytest.fixture(scope="module")
def targets(service: Service) -> dict[str, Any]:
    """Tokens of every role (logged in before the login route is fuzzed), a solved round and a user to change."""
    headers = {role: {"Authorization": f"Bearer {service.token(role)}"} for role in USERS}
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
    return {"headers": {None: {}, **headers}, "round_id": round_id, "user_id": victim.json()["id"]}


def _aim(case: Any, targets: dict[str, Any]) -> None:
    """Point path ids at real objects: region 01 and the solved round always; the changeable user for writes."""
    params = case.path_parameters or {}
    if "region" in params:
        params["region"] = "01"
    if "round_id" in params:
        params["round_id"] = targets["round_id"]
    if "user_id" in params and case.method.upper() != "GET":
        params["user_id"] = targets["user_id"]


def _fuzz(case: Any, role: str | None, service: Service, targets: dict[str, Any]) -> None:
    _aim(case, targets)
    case.call_and_validate(base_url=service.base_url, headers=targets["headers"][role], checks=CHECKS, timeout=60)


FUZZ = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "phases": [Phase.explicit, Phase.generate],
    "suppress_health_check": list(HealthCheck),
}


@pytest.mark.parametrize("role", USERS)
@SCHEMA.parametrize()
@settings(max_examples=MAX_EXAMPLES, **FUZZ)
def test_openapi_as_each_role(case: Any, role: str, service: Service, targets: dict[str, Any]) -> None:
    _fuzz(case, role, service, targets)


@SCHEMA.parametrize()
@settings(max_examples=2, **FUZZ)
def test_openapi_without_credentials(case: Any, service: Service, targets: dict[str, Any]) -> None:
    # Refused before anything is read: a couple of examples per operation show it (and its declared 401 or 422).
    _fuzz(case, None, service, targets)


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
