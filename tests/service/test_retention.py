"""Retention over real HTTP and `vardmatch retention`: identities past the region's period are anonymised and nothing
else changes; a dry run changes nothing; a second run changes nothing.

Region 14 keeps identities 24 months after a placement ended, 12 after withdrawal (or archiving) and 24 after the
last activity. R1 completed a placement that ended 2027-09-01; R2's placement runs; R3 withdrew today; R4 waits;
R5 was deleted today (archived: a round names it).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.core.identity import fake_test_personnummer
from api.core.privacy import add_months
from matching.input.validate import load_instance
from tests.factories import candidate, instance_dict, offer, programme, supervisor, unit
from tests.service.conftest import Service
from tests.service.helpers import add_region, dump, ok, run_round

BASE = "/regions/14"
COORD = "coord14"
REFS = ("R1", "R2", "R3", "R4", "R5")
POLICY = {"placed_months": 24, "withdrawn_months": 12, "inactive_months": 24}
PLACEMENT_END = date(2027, 9, 1)  # the six months of O1 from March 2027


@pytest.fixture(scope="module")
def region(service: Service) -> Iterator[Service]:
    """Region 14 with its five candidates in the states above."""
    instance = load_instance(
        instance_dict(
            candidates=[],
            units=[unit("U1")],
            supervisors=[supervisor("S1", capacity=2)],
            offers=[offer("O1", slots=2)],
            programmes=[programme("P1")],
        )
    )
    add_region(service, "14", instance, {COORD: None, "clinic14": "U1"})
    for index, ref in enumerate(REFS):
        identity = {"personnummer": fake_test_personnummer(1400 + index), "given_name": "Test", "family_name": ref}
        ok(service.call(COORD, "POST", f"{BASE}/candidates", json={**candidate(ref), "identity": identity}), 201)
    assert ok(service.call(COORD, "PUT", f"{BASE}/retention", json=POLICY)) == POLICY

    pins = [{"candidate_id": ref, "offer_id": "O1"} for ref in ("R1", "R2")]
    done = run_round(service, COORD, "14", "ret-1", pins=pins)
    ok(service.call(COORD, "POST", f"{BASE}/rounds/{done['id']}/publish"))
    for p in ok(service.call(COORD, "GET", f"{BASE}/rounds/{done['id']}/proposals"))["items"]:
        ok(service.call("clinic14", "POST", f"{BASE}/rounds/{done['id']}/proposals/{p['id']}/accept"))
    for c in ok(service.call(COORD, "GET", f"{BASE}/commitments"))["items"]:
        body = {"status": "completed", "note": "klar"} if c["candidate_id"] == "R1" else {"status": "started"}
        ok(service.call(COORD, "POST", f"{BASE}/commitments/{c['id']}/follow-up", json=body))
    ok(service.call(COORD, "POST", f"{BASE}/candidates/R3/withdraw"))
    assert ok(service.call(COORD, "DELETE", f"{BASE}/candidates/R5"))["outcome"] == "archived"
    yield service


def retention(service: Service, on: date, *args: str) -> str:
    result = CliRunner().invoke(
        app, ["retention", "--region", "14", "--today", on.isoformat(), "--database-url", service.url, *args]
    )
    assert result.exit_code == 0, result.output
    return result.output


def changed_rows(before: dict[str, list[dict[str, str]]], after: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """Per table: rows gone and rows new or changed (whole rows compared)."""
    out = {}
    for table in before.keys() | after.keys():
        old, new = before.get(table, []), after.get(table, [])
        gone = [r for r in old if r not in new]
        added = [r for r in new if r not in old]
        if gone or added:
            out[table] = {"gone": gone, "new": added}
    return out


def test_retention_anonymises_what_is_past_its_time_and_nothing_else(region: Service) -> None:
    service = region
    soon = add_months(date.today(), 13)
    due_soon = {"R3", "R5"} | ({"R1"} if add_months(PLACEMENT_END, 24) <= soon else set())

    preview = ok(service.call(COORD, "GET", f"{BASE}/retention/preview", params={"on": soon.isoformat()}))
    assert {d["candidate_id"] for d in preview["due"]} == due_soon
    kept = {k["candidate_id"]: k["why"] for k in preview["kept"]}
    assert kept["R2"] == "kept while a placement runs"
    assert "R1" in due_soon or kept["R1"] == f"placed since {PLACEMENT_END}, kept until 2029-09-01"

    # A dry run says what it would do and changes nothing.
    before = dump(service.url)
    output = retention(service, soon, "--dry-run")
    assert "dry run: nothing changed" in output
    assert {line.split()[2].rstrip(":") for line in output.splitlines() if "would anonymise R" in line} == due_soon
    assert dump(service.url) == before

    # The real run anonymises exactly those, and touches nothing else.
    output = retention(service, soon)
    assert f"{len(due_soon)} anonymised, {len(REFS) - len(due_soon)} kept" in output
    after = dump(service.url)
    changes = changed_rows(before, after)
    assert set(changes) <= {"candidate", "candidate_identity", "audit_event", "commitment"}, set(changes)
    ids = {r["id"]: r["ref"] for r in before["candidate"]}
    assert {r["ref"] for r in changes["candidate"]["new"]} == due_soon
    assert {ids[r["candidate_id"]] for r in changes["candidate_identity"]["gone"]} == due_soon
    assert changes["candidate_identity"]["new"] == []
    assert changes["audit_event"]["gone"] == []
    assert {(e["action"], e["actor_role"], e["object_id"]) for e in changes["audit_event"]["new"]} == {
        ("candidate.anonymise", "system", ref) for ref in due_soon
    }
    if "commitment" in changes:  # R1's note, only if R1 was due
        assert "R1" in due_soon and [r["candidate_ref"] for r in changes["commitment"]["new"]] == ["R1"]
    for ref in due_soon:
        assert service.call(COORD, "GET", f"{BASE}/candidates/{ref}/identity").status_code == 404

    # Running it again changes nothing at all.
    output = retention(service, soon)
    assert "0 anonymised" in output
    assert dump(service.url) == after

    # Later, everyone past their time goes; the running placement keeps R2.
    later = max(add_months(date.today(), 25), add_months(PLACEMENT_END, 24))
    output = retention(service, later)
    assert {line.split()[1].rstrip(":") for line in output.splitlines() if line.startswith("  anonymised R")} == (
        {"R1", "R3", "R4", "R5"} - due_soon
    )
    assert ok(service.call(COORD, "GET", f"{BASE}/candidates/R2/identity"))["family_name"] == "R2"
    doc = ok(service.call(COORD, "GET", f"{BASE}/candidates/R1/access-request"))
    assert doc["identity"] is None and doc["commitments"][0]["note"] == ""
