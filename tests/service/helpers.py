"""Helpers of the service tests: a region of their own with users, every row of the database, and a search of every
table and column for a person's number and name."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from sqlalchemy import MetaData, select

from api.core.security import hash_password
from api.core.snapshot import import_instance
from matching.input.instance import Instance
from models import Region, Role, Unit, User
from models.db import make_engine, make_sessionmaker, transaction
from tests.service.conftest import PASSWORD, Service


def add_region(
    service: Service, code: str, instance: Instance, users: dict[str, str | None], name: str | None = None
) -> None:
    """A region from the instance, with a coordinator (unit None) or a clinic user (a unit ref) per username."""
    engine = make_engine(service.url)
    with transaction(make_sessionmaker(engine)) as session:
        if session.scalar(select(Region).where(Region.code == code)) is not None:
            return
        region = Region(code=code, name=name or f"Region {code}")
        session.add(region)
        session.flush()
        import_instance(session, region, instance)
        units = {u.ref: u.id for u in session.scalars(select(Unit).where(Unit.region_id == region.id))}
        for username, unit_ref in users.items():
            role = Role.CLINIC if unit_ref else Role.COORDINATOR
            unit = units[unit_ref] if unit_ref else None
            session.add(
                User(
                    username=username,
                    password_hash=hash_password(PASSWORD),
                    role=role,
                    region_id=region.id,
                    unit_id=unit,
                )
            )
    engine.dispose()


def new_user(service: Service, name: str, **scope: str) -> int:
    """A user created by the admin over HTTP (password PASSWORD), with the role and scope given; its id."""
    body = {"username": name, "password": PASSWORD, **scope}
    return int(ok(service.call("admin", "POST", "/users", json=body), 201)["id"])


def bearer(service: Service, username: str) -> dict[str, str]:
    """The headers of a fresh login as this user (password PASSWORD)."""
    with httpx.Client(base_url=service.base_url + "/api/v1", timeout=30) as client:
        body = ok(client.post("/auth/token", data={"username": username, "password": PASSWORD}))
    return {"Authorization": f"Bearer {body['access_token']}"}


def ok(response: Any, status: int = 200) -> Any:
    """The JSON of a response that must have the status."""
    assert response.status_code == status, response.text
    return response.json()


def run_round(service: Service, user: str, region: str, key: str, **body: Any) -> dict[str, Any]:
    """Start a round and wait until it is solved."""
    payload = {"round_date": "2027-01-15", "time_limit_s": 5, "seed": 1, **body}
    r = service.call(user, "POST", f"/regions/{region}/rounds", json=payload, headers={"Idempotency-Key": key})
    done = service.wait_round(user, region, ok(r, 202)["id"])
    assert done["status"] == "solved", done
    quiet(service, user, region)
    return done


def quiet(service: Service, user: str, region: str, timeout: float = 120) -> None:
    """Wait until no job of the region is queued or running (the reports after a round are jobs that write)."""
    deadline = time.monotonic() + timeout
    while any(
        service.call(user, "GET", f"/regions/{region}/jobs", params={"status": status}).json()["total"]
        for status in ("queued", "running")
    ):
        assert time.monotonic() < deadline, f"region {region} still has jobs after {timeout} s"
        time.sleep(0.2)


def dump(url: str) -> dict[str, list[dict[str, str]]]:
    """Every row of every table (reflected from the database itself), as text, in primary-key order."""
    engine = make_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        out = {}
        with engine.connect() as connection:
            for name, table in sorted(metadata.tables.items()):
                if name.startswith("procrastinate"):
                    continue  # the job queue's own bookkeeping (worker heartbeats, job ids): no application data
                order = list(table.primary_key.columns) or list(table.columns)
                rows = connection.execute(select(table).order_by(*order))
                out[name] = [{k: _text(v) for k, v in row._mapping.items()} for row in rows]
        return out
    finally:
        engine.dispose()


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def number_forms(personnummer: str) -> set[str]:
    """The ways a personnummer YYYYMMDD-NNNN is written: with or without century and dash."""
    short = personnummer[2:]
    return {personnummer, personnummer.replace("-", ""), short, short.replace("-", "")}


def where_found(url: str, needles: set[str]) -> set[tuple[str, str]]:
    """(table, column) of every value in the database that holds one of the needles (case-insensitive)."""
    lowered = {n.lower() for n in needles}
    found = set()
    for table, rows in dump(url).items():
        for row in rows:
            found |= {(table, column) for column, value in row.items() if any(n in value.lower() for n in lowered)}
    return found
