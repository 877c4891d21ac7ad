"""What one user writes cannot break the region's rounds: references are checked on every write path (POST,
PATCH, import), answered without revealing other units' objects, and references that dangle later are dropped
from a round with a warning instead of failing it. A round refuses what it cannot honour and warns about what
its date closes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
from sqlalchemy import select, update

from api.core import tabular
from api.core.rounds import RoundCreate, round_date_for
from api.core.settings import Settings
from api.server import demo_settings
from models import Candidate, Offer, Region
from models.db import make_engine, make_sessionmaker
from tests.service.conftest import Service

R = "/regions/01"
NO_SUPERVISOR = {"field": "supervisor_ids[0]", "message": "no such supervisor at the offer's unit", "type": "known_id"}
_keys = iter(range(1, 1000))


def _offer(oid: str, unit: str, supervisors: list[str], **kw: Any) -> dict[str, Any]:
    return {"id": oid, "unit_id": unit, "profession": "physician", "start": "2027-03-01", "months": 6,
            "supervisor_ids": supervisors, **kw}  # fmt: skip


def _import(service: Service, user: str, kind: str, rows: list[dict[str, Any]]) -> Any:
    content = tabular.to_csv([tabular.flatten(r) for r in rows])
    return service.call(user, "POST", f"{R}/{kind}/import", files={"file": (f"{kind}.csv", content)})


def _start(service: Service, body: dict[str, Any]) -> Any:
    return service.call("coord01", "POST", f"{R}/rounds", json=body, headers={"Idempotency-Key": f"wc-{next(_keys)}"})


def test_unknown_or_foreign_supervisors_are_refused_on_every_write_path(service: Service) -> None:
    """`supervisor_ids: ["NOPE"]` and a supervisor of another unit get the same answer (nothing leaks)."""
    for bad in ("NOPE", "S2"):
        patched = service.call("clinic_u1", "PATCH", f"{R}/offers/O1", json={"supervisor_ids": [bad]})
        assert patched.status_code == 422 and patched.json()["errors"] == [NO_SUPERVISOR], patched.text
        created = service.call("clinic_u1", "POST", f"{R}/offers", json=_offer(f"O-{bad}", "U1", [bad]))
        assert created.status_code == 422 and created.json()["errors"] == [NO_SUPERVISOR]
        imported = _import(service, "clinic_u1", "offers", [_offer(f"O-{bad}", "U1", [bad])])
        assert imported.status_code == 422
        assert imported.json()["errors"] == [{"row": 2, "id": f"O-{bad}", **NO_SUPERVISOR}]
    assert service.call("coord01", "GET", f"{R}/offers/O1").json()["supervisor_ids"] == ["S1"]
    assert service.call("coord01", "GET", f"{R}/offers/O-NOPE").status_code == 404


def test_wishes_and_rankings_must_name_what_the_writer_may_see(service: Service) -> None:
    wish = service.call("coord01", "PATCH", f"{R}/candidates/CAND-A", json={"wishes": ["O2", "NOPE"]})
    assert wish.status_code == 422
    assert wish.json()["errors"] == [
        {"field": "wishes[1]", "message": "no such offer or unit in the region", "type": "known_id"}
    ]
    # A clinic sees only the candidates proposed to it in a published round: none yet.
    ranked = service.call("clinic_u1", "PATCH", f"{R}/offers/O1", json={"clinic_ranking": ["CAND-A"]})
    assert ranked.status_code == 422 and ranked.json()["errors"][0]["field"] == "clinic_ranking[0]"
    ok = service.call("coord01", "PATCH", f"{R}/candidates/CAND-A", json={"wishes": ["O2", "U1"]})
    assert ok.status_code == 200 and ok.json()["wishes"] == ["O2", "U1"]


def test_another_units_id_answers_as_a_read_does(service: Service) -> None:
    """Creating or importing an offer whose id another unit uses: the 404 of a read, never 'already exists'."""
    read = service.call("clinic_u2", "GET", f"{R}/offers/O1")
    assert read.status_code == 404
    created = service.call("clinic_u2", "POST", f"{R}/offers", json=_offer("O1", "U2", ["S2"]))
    assert (created.status_code, created.json()["detail"]) == (404, read.json()["detail"])
    imported = _import(service, "clinic_u2", "offers", [_offer("O1", "U2", ["S2"])])
    assert imported.status_code == 422
    [error] = imported.json()["errors"]
    assert (error["field"], error["message"], error["type"]) == ("id", read.json()["detail"], "not-found")
    assert "exists" not in imported.text + created.text
    # Whoever can see the offer is told it exists.
    assert service.call("clinic_u1", "POST", f"{R}/offers", json=_offer("O1", "U1", ["S1"])).status_code == 409


def test_references_that_dangle_later_are_dropped_from_a_round_with_a_warning(service: Service) -> None:
    """A supervisor moved to another unit, and references stored before the checks: the round builds and solves."""
    moved = service.call("coord01", "PATCH", f"{R}/supervisors/S1", json={"unit_id": "U2"})
    assert moved.status_code == 200
    # The clinic's edits that do not touch the stale reference still go through (it is not theirs to fix first).
    for action in ("withdraw", "publish"):
        assert service.call("clinic_u1", "POST", f"{R}/offers/O1/{action}").status_code == 200
    assert service.call("clinic_u1", "PATCH", f"{R}/offers/O1", json={"slots": 1}).status_code == 200
    engine = make_engine(service.url)
    with engine.begin() as connection:
        region = connection.scalar(select(Region.id).where(Region.code == "01"))
        for table, ref, field, value in ((Candidate, "CAND-B", "wishes", ["U-GONE"]),
                                         (Offer, "O2", "clinic_ranking", ["CAND-GONE"])):  # fmt: skip
            data = connection.scalar(select(table.data).where(table.region_id == region, table.ref == ref))
            connection.execute(
                update(table).where(table.region_id == region, table.ref == ref).values(data={**data, field: value})
            )
    engine.dispose()
    try:
        r = _start(service, {"round_date": "2027-01-15", "time_limit_s": 5})
        assert r.status_code == 202, r.text
        warned = {(w["path"], w["object_id"], w["field"], w["rule"]) for w in r.json()["warnings"]}
        assert warned == {
            ("offers", "O1", "supervisor_ids", "dangling_reference"),
            ("candidates", "CAND-B", "wishes", "dangling_reference"),
            ("offers", "O2", "clinic_ranking", "dangling_reference"),
        }
        solved = service.wait_round("coord01", "01", r.json()["id"])
        assert solved["status"] == "solved" and solved["warnings"] == r.json()["warnings"]
        snapshot = service.call("coord01", "GET", f"{R}/rounds/{r.json()['id']}/snapshot").json()
        assert next(o for o in snapshot["offers"] if o["id"] == "O1")["supervisor_ids"] == []
    finally:
        for path, body in ((f"{R}/supervisors/S1", {"unit_id": "U1"}), (f"{R}/candidates/CAND-B", {"wishes": []}),
                           (f"{R}/offers/O2", {"clinic_ranking": []})):  # fmt: skip
            assert service.call("coord01", "PATCH", path, json=body).status_code == 200


def test_a_round_refuses_what_it_cannot_honour(service: Service) -> None:
    r = _start(service, {"round_date": "1900-01-01", "time_limit_s": 1e9})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"round_date", "time_limit_s"}
    assert "120 s" in next(e["message"] for e in r.json()["errors"] if e["field"] == "time_limit_s")


def test_a_round_warns_of_programmes_and_offers_closed_at_its_date(service: Service) -> None:
    """The fixture's programme opens 2027-01-01 and its offers start 2027-03-01."""
    early = _start(service, {"round_date": "2026-12-15", "time_limit_s": 5})
    assert early.status_code == 202, early.text
    warned = {(w["object_id"], w["rule"]) for w in early.json()["warnings"]}
    assert warned == {("P1", "programme_not_open")}
    assert service.wait_round("coord01", "01", early.json()["id"])["result"]["placements"] == 0
    late = _start(service, {"round_date": "2027-04-01", "time_limit_s": 5})
    assert late.status_code == 202, late.text
    warned = {(w["object_id"], w["rule"]) for w in late.json()["warnings"]}
    assert warned == {("O1", "offer_started"), ("O2", "offer_started")}
    service.wait_round("coord01", "01", late.json()["id"])
    # Published, each round's warnings reach a clinic user only where they are about its own unit's objects.
    for answer, seen in ((early, {}), (late, {"clinic_u1": {"O1"}, "clinic_u2": {"O2"}})):
        round_id = answer.json()["id"]
        assert service.call("coord01", "POST", f"{R}/rounds/{round_id}/publish").status_code == 200
        for user in ("clinic_u1", "clinic_u2"):
            view = service.call(user, "GET", f"{R}/rounds/{round_id}").json()
            assert {w["object_id"] for w in view["warnings"]} == seen.get(user, set()), (user, view["warnings"])
            summary = service.call(user, "GET", f"{R}/rounds").json()["items"]
            assert [(s["id"], s["warnings"]) for s in summary] == [(round_id, len(seen.get(user, set())))]


def test_the_demo_decides_for_its_own_date() -> None:
    settings = demo_settings(None)
    assert settings.default_round_date == date(2027, 1, 15)
    assert round_date_for(RoundCreate(), settings) == date(2027, 1, 15)
    assert round_date_for(RoundCreate(round_date=date(2027, 2, 1)), settings) == date(2027, 2, 1)
    assert round_date_for(RoundCreate(), Settings(environment="test")) == date.today()


def test_bodies_and_lists_past_their_limits_are_refused(service: Service) -> None:
    """A 1.3 MB offer (sent whole, or streamed without a length) is 413 before it is parsed; a list past its cap in
    a small body is 422 naming the field. Neither is stored."""
    huge = _offer("O-HUGE", "U1", ["S1"], clinic_ranking=[f"CAND-{i:07d}" for i in range(100_000)])
    body = json.dumps(huge).encode()
    assert len(body) > 1_000_000
    whole = service.call("clinic_u1", "POST", f"{R}/offers", content=body, headers={"content-type": "application/json"})

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    streamed = service.call(
        "clinic_u1", "POST", f"{R}/offers", content=chunks(), headers={"content-type": "application/json"}
    )
    for r in (whole, streamed):
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json", r.text
        assert r.json()["type"] == "urn:vardmatch:problem:payload-too-large"
    long = _offer("O-LONG", "U1", ["S1"], clinic_ranking=[f"C{i}" for i in range(1_001)])
    r = service.call("clinic_u1", "POST", f"{R}/offers", json=long)
    assert r.status_code == 422 and [(e["field"], e["type"]) for e in r.json()["errors"]] == [
        ("clinic_ranking", "too_long")
    ]
    for oid in ("O-HUGE", "O-LONG"):
        assert service.call("coord01", "GET", f"{R}/offers/{oid}").status_code == 404


def test_reading_rounds_takes_no_write_lock(service: Service) -> None:
    """Another transaction keeps every writer of rounds waiting (SQLite: its write lock, as an import holds while it
    commits; PostgreSQL: an EXCLUSIVE lock on the table): reading rounds still answers, because finding no stale
    round writes nothing."""
    r = _start(service, {"round_date": "2027-01-15", "time_limit_s": 2})
    round_id = service.wait_round("coord01", "01", r.json()["id"])["id"]
    engine = make_engine(service.url)
    sqlite = service.url.startswith("sqlite")
    try:
        with engine.connect() as connection:
            if sqlite:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("LOCK TABLE match_round IN EXCLUSIVE MODE")
            with service.client("coord01") as client:
                client.timeout = httpx.Timeout(10.0)  # a writing read would wait for the lock (SQLite: 15 s)
                assert client.get(f"{R}/rounds/{round_id}").status_code == 200
                assert client.get(f"{R}/rounds").status_code == 200
            connection.rollback()
    finally:
        engine.dispose()


def test_the_solver_yields_the_cores_to_the_service(service: Service) -> None:
    """A job's process runs niced, so that requests come first on shared cores."""
    with service.solver_delay(30):
        r = _start(service, {"round_date": "2027-01-15", "time_limit_s": 2})
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 30
        worker = None
        while worker is None and time.monotonic() < deadline:
            time.sleep(0.1)  # until the job's process has started and said who it is
            worker = _job_pid(service, r.json()["job_id"])
        assert worker is not None
        assert os.getpriority(os.PRIO_PROCESS, worker) == service.app.state.settings.solver_nice == 10
        service.call("coord01", "POST", f"{R}/rounds/{r.json()['id']}/cancel")


def _job_pid(service: Service, job_id: int) -> int | None:
    """The pid of the process running the job, once it has written its first heartbeat."""
    from models import SolverJob

    engine = make_engine(service.url)
    with make_sessionmaker(engine)() as session:
        job = session.get_one(SolverJob, job_id)
    engine.dispose()
    return int(job.worker.rsplit("/", 1)[1]) if job.worker and "/" in job.worker else None
