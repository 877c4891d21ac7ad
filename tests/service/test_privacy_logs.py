"""What a candidate's whole life writes to the logs and to error bodies never holds their personnummer or name:
creation (valid and invalid), identity reads with a purpose, a round in its own process, answers, follow-up,
access request, erasure and retention, with mistakes along the way."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.core.identity import fake_test_personnummer
from matching.input.validate import load_instance
from tests.factories import candidate, instance_dict, offer, programme, supervisor, unit
from tests.service.conftest import Service
from tests.service.helpers import add_region, number_forms, ok, run_round

BASE = "/regions/15"
COORD = "coord15"
NUMBER = fake_test_personnummer(1515)
GIVEN, FAMILY = "Loggfri", "Hemligsdotter"
SERVICE_LOGGERS = ("uvicorn.access", "uvicorn.error", "vardmatch.api", "")


class Collect(logging.Handler):
    """Every record, formatted as a handler would write it (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.lines.append(line)
        if record.levelno >= logging.ERROR:
            self.errors.append(line)


@pytest.fixture
def logs() -> Iterator[Collect]:
    """Collect what the service logs, access lines included."""
    handler = Collect()
    access = logging.getLogger("uvicorn.access")
    level = access.level
    access.setLevel(logging.INFO)
    for name in SERVICE_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in SERVICE_LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    access.setLevel(level)


def test_a_whole_life_leaves_no_identity_in_logs_or_problem_bodies(
    service: Service, logs: Collect, capfd: pytest.CaptureFixture[str]
) -> None:
    instance = load_instance(
        instance_dict(
            candidates=[], units=[unit("U1")], supervisors=[supervisor()], offers=[offer()], programmes=[programme()]
        )
    )
    add_region(service, "15", instance, {COORD: None, "clinic15": "U1"})
    problems: list[str] = []

    def call(user: str, method: str, path: str, **kw: Any) -> httpx.Response:
        response = service.call(user, method, f"{BASE}{path}", **kw)
        if response.headers.get("content-type") == "application/problem+json":
            problems.append(response.text)
        return response

    identity = {"personnummer": NUMBER, "given_name": GIVEN, "family_name": FAMILY}
    broken_number = NUMBER[:-1] + str((int(NUMBER[-1]) + 1) % 10)
    mistakes = [
        {**candidate("L1"), "identity": {**identity, "personnummer": broken_number}},
        {**candidate("L1"), "identity": {**identity, "family_name": FAMILY * 40}},
        {**candidate("L1"), "cefr": "Z9", "identity": identity},
    ]
    for body in mistakes:
        assert call(COORD, "POST", "/candidates", json=body).status_code == 422
    # A personnummer never goes anywhere but the identity: not as an id, not in a text field.
    for body, field in (
        (candidate(NUMBER.replace("-", "")), "id"),
        (candidate("L2", specialty=f"allmänmedicin, pnr {NUMBER[2:]}"), "specialty"),
        (candidate("L2", ladder={"ptj_decision_ref": NUMBER}), "ladder.ptj_decision_ref"),
    ):
        refused = call(COORD, "POST", "/candidates", json=body)
        assert refused.status_code == 422 and refused.json()["errors"] == [
            {"field": field, "message": refused.json()["errors"][0]["message"], "type": "no_personnummer"}
        ]
    ok(call(COORD, "POST", "/candidates", json={**candidate("L1"), "identity": identity}), 201)
    assert call(COORD, "POST", "/candidates", json={**candidate("L1"), "identity": identity}).status_code == 409
    assert call(COORD, "GET", f"/candidates/{NUMBER}").status_code == 404
    assert call(COORD, "PATCH", "/candidates/L1", json={NUMBER: GIVEN}).status_code == 422
    assert call(COORD, "PATCH", "/candidates/L1", json={"specialty": NUMBER}).status_code == 422
    purpose = f"kontakt med {GIVEN} {FAMILY} {NUMBER}"
    for reveal in (False, True):
        params = {"reveal": reveal, "purpose": purpose}
        ok(call(COORD, "GET", "/candidates/L1/identity", params=params))

    done = run_round(service, COORD, "15", "log-1", name=f"omgång {GIVEN} {FAMILY}")
    ok(call(COORD, "POST", f"/rounds/{done['id']}/publish"))
    [proposal] = ok(call(COORD, "GET", f"/rounds/{done['id']}/proposals"))["items"]
    ok(call("clinic15", "POST", f"/rounds/{done['id']}/proposals/{proposal['id']}/accept"))
    [commitment] = ok(call(COORD, "GET", "/commitments"))["items"]
    url = f"/commitments/{commitment['id']}/follow-up"
    assert call(COORD, "POST", url, json={"status": "started", "paid": 1}).status_code == 422
    ok(call(COORD, "POST", url, json={"status": "started", "note": f"{GIVEN} {FAMILY} ({NUMBER}) började"}))
    assert call(COORD, "GET", "/candidates/L1/access-request", params={"format": "html"}).status_code == 200
    assert call(COORD, "POST", "/candidates/L1/withdraw").status_code == 409
    reason = f"{GIVEN} {FAMILY} {NUMBER} bad om radering"
    ok(call(COORD, "POST", "/candidates/L1/erase", json={"reason": reason}))
    assert call(COORD, "POST", "/candidates/L1/erase", json={"reason": reason}).status_code == 409
    assert call(COORD, "GET", "/candidates/L1/identity").status_code == 404
    ok(call(COORD, "GET", "/retention/preview"))
    ok(service.call(COORD, "GET", "/audit", params={"object_id": "L1"}))

    captured = capfd.readouterr()
    written = "\n".join([*logs.lines, captured.out, captured.err])
    assert any("/candidates/L1/identity" in line for line in logs.lines), "no access lines were collected"
    assert len(problems) >= 8 and not logs.errors
    for needle in (*number_forms(NUMBER), GIVEN, FAMILY):
        assert needle.lower() not in written.lower(), needle
        assert not any(needle.lower() in body.lower() for body in problems), (needle, problems)
