"""Deleting what was entered by mistake, over real HTTP: what nothing names is destroyed; what a stored round or a
commitment names is archived, leaves lists and new rounds, and every stored round still reproduces.

Region 12: unit U1 with supervisors S1 (two seats) and S2, offers O1 (two slots, S1 or S2) and O2 (S1); unit U2
with nothing; physicians C1-C3 who wish for O1 then O2; programmes P1 (pays) and P2 (too small to pay anything).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from api.core.identity import fake_test_personnummer
from matching.input.validate import load_instance
from models import AuditEvent, CandidateIdentity
from models.db import make_engine, make_sessionmaker
from tests.factories import candidate, instance_dict, offer, programme, supervisor, unit
from tests.service.conftest import Service
from tests.service.helpers import add_region, ok, run_round

BASE = "/regions/12"
COORD = "coord12"


@pytest.fixture(scope="module")
def region(service: Service) -> Iterator[Service]:
    """Region 12 with a coordinator and a clinic user of U1."""
    instance = load_instance(
        instance_dict(
            candidates=[candidate(f"C{i}", wishes=["O1", "O2"]) for i in (1, 2, 3)],
            units=[unit("U1"), unit("U2")],
            supervisors=[supervisor("S1", capacity=2), supervisor("S2")],
            offers=[offer("O1", slots=2, supervisors=("S1", "S2")), offer("O2")],
            programmes=[programme("P1"), programme("P2", budget=1000)],
        )
    )
    add_region(service, "12", instance, {COORD: None, "clinic12": "U1"})
    yield service


def delete(service: Service, kind: str, ref: str, user: str = COORD) -> Any:
    return service.call(user, "DELETE", f"{BASE}/{kind}/{ref}")


def actions(service: Service, ref: str) -> list[str]:
    engine = make_engine(service.url)
    with make_sessionmaker(engine)() as session:
        found = list(session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == ref)))
    engine.dispose()
    return found


def test_what_nothing_names_is_deleted(region: Service) -> None:
    service = region
    new = {
        "units": unit("U9"),
        "supervisors": supervisor("S9", unit_id="U9"),
        "offers": offer("O9", unit_id="U9", supervisors=("S9",)),
        "programmes": programme("P9"),
        "candidates": {
            **candidate("C9"),
            "identity": {"personnummer": fake_test_personnummer(909), "given_name": "Nils", "family_name": "Fel"},
        },
    }
    for kind, body in new.items():
        ok(service.call(COORD, "POST", f"{BASE}/{kind}", json=body), 201)

    # A unit with supervisors or offers is not removed (nothing is written); a clinic may not remove its unit.
    refused = delete(service, "units", "U9")
    assert refused.status_code == 409 and refused.json()["type"].endswith(":has-dependents")
    assert refused.json()["dependents"] == ["supervisor S9", "offer O9"]
    assert delete(service, "units", "U1", user="clinic12").status_code == 403

    order = ("offers", "O9"), ("supervisors", "S9"), ("units", "U9"), ("programmes", "P9"), ("candidates", "C9")
    for kind, ref in order:
        body = ok(delete(service, kind, ref))
        assert body == {"id": ref, "kind": kind[:-1], "outcome": "deleted", "reasons": [], "still_named_by": []}
        assert service.call(COORD, "GET", f"{BASE}/{kind}/{ref}").status_code == 404
        assert delete(service, kind, ref).status_code == 404
        assert f"{kind[:-1]}.delete" in actions(service, ref)
        listed = ok(service.call(COORD, "GET", f"{BASE}/{kind}", params={"archived": True}))["items"]
        assert ref not in [o["id"] for o in listed]

    # The candidate's identity went with it.
    engine = make_engine(service.url)
    with make_sessionmaker(engine)() as session:
        numbers = set(session.scalars(select(CandidateIdentity.personnummer)))
    engine.dispose()
    assert fake_test_personnummer(909) not in numbers


def test_what_a_round_names_is_archived_and_old_rounds_still_reproduce(region: Service) -> None:
    service = region
    first = run_round(service, COORD, "12", "rm-1", pins=[{"candidate_id": "C3", "offer_id": "O2"}])

    removed = {
        "offers": ok(delete(service, "offers", "O2")),
        "supervisors": ok(delete(service, "supervisors", "S2")),
        "programmes": ok(delete(service, "programmes", "P2")),
        "units": ok(delete(service, "units", "U2")),
        "candidates": ok(delete(service, "candidates", "C3")),
    }
    for kind, body in removed.items():
        assert body["outcome"] == "archived", body
        assert body["reasons"][0] == f"named by stored round(s) {first['id']}", body
        assert f"{kind[:-1]}.archive" in actions(service, body["id"])
    # The API names the live objects that still refer to what was archived.
    assert removed["supervisors"]["still_named_by"] == ["offer O1 (supervisor_ids)"]
    assert removed["offers"]["still_named_by"] == [f"candidate C{i} (wishes)" for i in (1, 2, 3)]

    # Archived objects leave reads, lists, edits and exports; `archived=true` lists them, the offer withdrawn.
    assert service.call(COORD, "GET", f"{BASE}/offers/O2").status_code == 404
    assert service.call(COORD, "PATCH", f"{BASE}/offers/O2", json={"slots": 3}).status_code == 404
    assert [o["id"] for o in ok(service.call(COORD, "GET", f"{BASE}/offers"))["items"]] == ["O1"]
    [archived] = ok(service.call(COORD, "GET", f"{BASE}/offers", params={"archived": True}))["items"]
    assert (archived["id"], archived["status"]) == ("O2", "withdrawn") and archived["archived_at"]
    assert "C3" not in service.call(COORD, "GET", f"{BASE}/candidates/export").text
    # Its id stays taken: stored rounds know it by that id.
    taken = service.call(COORD, "POST", f"{BASE}/offers", json=offer("O2"))
    assert taken.status_code == 409

    # A re-run of the first round drops its pin of what was archived since, and solves.
    rerun = service.call(
        COORD, "POST", f"{BASE}/rounds/{first['id']}/rerun", json={}, headers={"Idempotency-Key": "rm-r"}
    )
    assert service.wait_round(COORD, "12", ok(rerun, 202)["id"])["status"] == "solved"
    assert ok(service.call(COORD, "GET", f"{BASE}/rounds/{rerun.json()['id']}/snapshot"))["policy"]["pins"] == []

    # A new round leaves every archived object and every reference to one out, and solves.
    second = run_round(service, COORD, "12", "rm-2")
    snap = ok(service.call(COORD, "GET", f"{BASE}/rounds/{second['id']}/snapshot"))
    ids = {kind: {o["id"] for o in snap[kind]} for kind in removed}
    assert ids == {
        "offers": {"O1"},
        "supervisors": {"S1"},
        "programmes": {"P1"},
        "units": {"U1"},
        "candidates": {"C1", "C2"},
    }
    assert snap["offers"][0]["supervisor_ids"] == ["S1"]
    assert all(c["wishes"] == ["O1"] for c in snap["candidates"])

    # The first round still has them, explains them and reproduces identically.
    old = ok(service.call(COORD, "GET", f"{BASE}/rounds/{first['id']}/snapshot"))
    assert {o["id"] for o in old["offers"]} == {"O1", "O2"} and "C3" in {c["id"] for c in old["candidates"]}
    ok(service.call(COORD, "GET", f"{BASE}/rounds/{first['id']}/candidates/C3/explanation"))
    again = service.result(COORD, service.call(COORD, "POST", f"{BASE}/rounds/{first['id']}/reproduce"))
    assert again["identical"], again


def test_commitments_keep_what_they_hold(region: Service) -> None:
    service = region
    rounds = ok(service.call(COORD, "GET", f"{BASE}/rounds"))["items"]
    latest = rounds[0]
    ok(service.call(COORD, "POST", f"{BASE}/rounds/{latest['id']}/publish"))
    proposals = ok(service.call(COORD, "GET", f"{BASE}/rounds/{latest['id']}/proposals"))["items"]
    assert {p["candidate_ref"] for p in proposals} == {"C1", "C2"}
    first, second = sorted(proposals, key=lambda p: p["candidate_ref"])
    url = f"{BASE}/rounds/{latest['id']}/proposals"
    ok(service.call("clinic12", "POST", f"{url}/{first['id']}/accept"))

    # A programme and a unit that a commitment holds money on cannot go; the unit still has its offer anyway.
    held = delete(service, "programmes", "P1")
    assert held.status_code == 409 and held.json()["type"].endswith(":held-by-commitments")
    assert delete(service, "units", "U1").json()["type"].endswith(":has-dependents")

    # A candidate with a running placement is archived, never destroyed; a pending proposal for an archived
    # candidate can no longer be accepted.
    assert ok(delete(service, "candidates", "C1"))["outcome"] == "archived"
    assert ok(delete(service, "candidates", "C2"))["outcome"] == "archived"
    late = service.call("clinic12", "POST", f"{url}/{second['id']}/accept")
    assert late.status_code == 409 and late.json()["type"].endswith(":archived")
    [commitment] = ok(service.call(COORD, "GET", f"{BASE}/commitments"))["items"]
    assert commitment["candidate_id"] == "C1" and commitment["status"] == "accepted"

    # An archived supervisor leaves the commitment's months out of later rounds (no offer can use the seat).
    assert ok(delete(service, "supervisors", "S1"))["outcome"] == "archived"
    third = run_round(service, COORD, "12", "rm-3")
    snap = ok(service.call(COORD, "GET", f"{BASE}/rounds/{third['id']}/snapshot"))
    assert snap["supervisors"] == [] and snap["offers"][0]["supervisor_ids"] == []
    assert [(c["candidate_id"], c["supervisor_id"], c["programme_id"]) for c in snap["commitments"]] == [
        ("C1", None, "P1")
    ]
