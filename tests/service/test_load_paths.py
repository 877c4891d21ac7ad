"""What keeps reads quick while imports and rounds run: an import does its database work in the import process (none
of its statements pass through the service's own connections), planning an import loads only the stored rows its
file names, and a paged list costs the same number of statements whatever its page size."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from api.core import imports
from api.core.snapshot import CANDIDATES
from matching.input.validate import load_instance
from models import Candidate, Region, Role, User
from models.db import make_engine, make_sessionmaker
from models.queries import Subject
from tests.factories import candidate, programme
from tests.service.conftest import FIXTURES, Service
from tests.service.helpers import add_region, ok, run_round

R = "/regions/07"
USERS = {"coord07": None, "clinic07": "U1"}
# Every paged list route; each must hold at least two items for the region's users so that a query per item shows.
LISTS = (
    f"{R}/candidates",
    f"{R}/offers",
    f"{R}/units",
    f"{R}/supervisors",
    f"{R}/programmes",
    f"{R}/rounds",
    f"{R}/commitments",
    "/users",
    "/audit",
)


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    flat = [{k: v for k, v in row.items() if not isinstance(v, dict | list)} for row in rows]
    for row, full in zip(flat, rows, strict=True):
        row.update({f"ladder.{k}": v for k, v in full["ladder"].items()})
    writer = csv.DictWriter(out, fieldnames=list(flat[0]))
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue().encode()


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run through the engine meanwhile, but the job pool's own polling of the queue."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "solver_job" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.fixture(scope="module")
def region(service: Service) -> str:
    """Region 07: the small pin-and-forbid region, a coordinator and a clinic user of U1, two published rounds (each
    with proposals; those of the second accepted: commitments) and a few imported candidates."""
    add_region(service, "07", load_instance(FIXTURES / "pin_and_forbid.json"), USERS)
    ok(service.call("coord07", "POST", f"{R}/programmes", json=programme("P2")), 201)
    for key in ("load-paths-1", "load-paths-2"):
        done = run_round(service, "coord07", "07", key)
        ok(service.call("coord07", "POST", f"{R}/rounds/{done['id']}/publish"))
    for proposal in ok(service.call("coord07", "GET", f"{R}/rounds/{done['id']}/proposals"))["items"]:
        ok(service.call("admin", "POST", f"{R}/rounds/{done['id']}/proposals/{proposal['id']}/accept"))
    r = service.call("coord07", "POST", f"{R}/candidates/import", files={"file": ("c.csv", _csv(_new(3, "LPA")))})
    assert ok(r)["created"] == 3
    return "07"


def _new(count: int, prefix: str) -> list[dict[str, Any]]:
    return [candidate(f"{prefix}{i:03d}") for i in range(count)]


def test_an_import_runs_none_of_its_statements_through_the_services_connections(service: Service, region: str) -> None:
    with statements(service.app.state.engine) as seen:
        r = service.call("coord07", "POST", f"{R}/candidates/import", files={"file": ("c.csv", _csv(_new(4, "LPB")))})
    assert ok(r)["created"] == 4
    # The service itself only looked up the user and the region; the import process read, checked and wrote.
    assert [s for s in seen if "candidate" in s or s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")] == []
    assert ok(service.call("coord07", "GET", f"{R}/candidates/LPB003"))["id"] == "LPB003"


def test_planning_an_import_loads_only_the_stored_rows_its_file_names(service: Service, region: str) -> None:
    sessions = make_sessionmaker(make_engine(service.url))
    content = _csv([candidate("LPA001"), *_new(2, "LPC")])
    parsed = imports.parse_file("candidates", "07", content, "c.csv", 100, 10**6)
    loaded: list[str] = []

    def note(target: Candidate, _context: Any) -> None:
        loaded.append(target.ref)

    with sessions() as session:
        reg = session.scalars(select(Region).where(Region.code == "07")).one()
        user = session.scalars(select(User).where(User.username == "coord07")).one()
        subject = Subject(user.id, Role.COORDINATOR, reg.id)
        event.listen(Candidate, "load", note)
        try:
            plan = imports.plan_import(session, CANDIDATES, subject, reg, parsed)
        finally:
            event.remove(Candidate, "load", note)
    assert plan.errors == [] and [(obj.id, row is not None) for _, obj, row in plan.rows] == [
        ("LPA001", True),
        ("LPC000", False),
        ("LPC001", False),
    ]
    # Not the region's other candidates: an import into a region of thousands loaded every one of them.
    assert loaded == ["LPA001"]
    sessions.kw["bind"].dispose()


@pytest.mark.parametrize("user", ["admin", "coord07", "clinic07"])
def test_a_paged_list_costs_the_same_statements_whatever_its_page_size(
    service: Service, region: str, user: str
) -> None:
    service.token(user)  # logged in beforehand: the login's own statements are not the list's
    for path in LISTS:
        counts, sizes = [], []
        for limit in (1, 200):
            with statements(service.app.state.engine) as seen:
                r = service.call(user, "GET", path, params={"limit": limit})
            if r.status_code == 403:
                break  # a list this role may not read at all (a clinic and the audit trail)
            sizes.append(len(ok(r)["items"]))
            counts.append(len(seen))
        else:
            assert sizes[0] == min(1, sizes[1]) and (sizes[1] >= 2 or (user, path) in FEW), (user, path, sizes)
            assert counts[0] == counts[1] <= 8, (user, path, counts)


# Lists that hold fewer than two items for the role: a user sees only itself; a clinic user its own unit, which has
# one offer and one supervisor here, one candidate proposed to it, the published round (publishing the second
# superseded the first) and its one commitment, and no programmes at all.
FEW = {("coord07", "/users"), ("clinic07", "/users")} | {
    ("clinic07", f"{R}/{kind}")
    for kind in ("units", "offers", "supervisors", "candidates", "programmes", "rounds", "commitments")
}
