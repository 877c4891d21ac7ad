"""A candidate's whole life over real HTTP, then erasure: the access request holds everything about them; erasure
leaves no trace of their number or name anywhere in the database, while the audit log records it and the rounds
stay consistent; the audit trail is readable, filtered and scoped.

Region 13: unit U1 with supervisor S1 (two seats) and offers O1 and O2; candidates K1 and K2 created with their
identities (TEST numbers). K1 is proposed at O1 in round 1 (declined), then at O2 in round 2 (accepted, started).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from api.core.identity import fake_test_personnummer
from matching.input.validate import load_instance
from tests.factories import candidate, instance_dict, offer, programme, supervisor, unit
from tests.service.conftest import Service
from tests.service.helpers import add_region, number_forms, ok, run_round, where_found

BASE = "/regions/13"
COORD = "coord13"
CLINIC = "clinic13"
NUMBER = fake_test_personnummer(1313)
GIVEN, FAMILY = "Fiktiva Ingrid", "Raderingsdotter"
FULL = f"{GIVEN} {FAMILY}"
CASE = "SoS 5.1.1-4711/2026"
IDENTITY = {"personnummer": NUMBER[2:].replace("-", ""), "given_name": GIVEN, "family_name": FAMILY}


def pins(cand: str, offer_id: str) -> list[dict[str, str]]:
    return [{"candidate_id": cand, "offer_id": offer_id}]


@pytest.fixture(scope="module")
def lived(service: Service) -> Iterator[dict[str, Any]]:
    """K1 through two rounds: declined at O1, accepted and started at O2, their name and number typed where
    people type them (a round's name, a follow-up note, an identity read's purpose)."""
    instance = load_instance(
        instance_dict(
            candidates=[],
            units=[unit("U1")],
            supervisors=[supervisor("S1", capacity=2)],
            offers=[offer("O1"), offer("O2")],
            programmes=[programme("P1")],
        )
    )
    add_region(service, "13", instance, {COORD: None, CLINIC: "U1"})
    k1 = {**candidate("K1", wishes=["O1", "O2"], ladder={"ptj_decision_ref": CASE}), "identity": IDENTITY}
    other = fake_test_personnummer(1314)
    k2 = {**candidate("K2"), "identity": {"personnummer": other, "given_name": "Annan", "family_name": "Person"}}
    for body in (k1, k2):
        ok(service.call(COORD, "POST", f"{BASE}/candidates", json=body), 201)
    purpose = f"ringa {FULL} ({NUMBER}) om startdatum"
    ok(service.call(COORD, "GET", f"{BASE}/candidates/K1/identity", params={"reveal": True, "purpose": purpose}))

    first = run_round(service, COORD, "13", "er-1", name=f"januari, {FULL} {NUMBER}", pins=pins("K1", "O1"))
    ok(service.call(COORD, "POST", f"{BASE}/rounds/{first['id']}/publish"))
    proposals = ok(service.call(COORD, "GET", f"{BASE}/rounds/{first['id']}/proposals"))["items"]
    declined = next(p for p in proposals if p["candidate_ref"] == "K1")
    ok(service.call(CLINIC, "POST", f"{BASE}/rounds/{first['id']}/proposals/{declined['id']}/decline"))

    second = run_round(service, COORD, "13", "er-2", name="februari", pins=pins("K1", "O2"))
    ok(service.call(COORD, "POST", f"{BASE}/rounds/{second['id']}/publish"))
    proposals = ok(service.call(COORD, "GET", f"{BASE}/rounds/{second['id']}/proposals"))["items"]
    accepted = next(p for p in proposals if p["candidate_ref"] == "K1")
    ok(service.call(CLINIC, "POST", f"{BASE}/rounds/{second['id']}/proposals/{accepted['id']}/accept"))
    [commitment] = ok(service.call(COORD, "GET", f"{BASE}/commitments"))["items"]
    note = f"{FULL} började 1 mars; pnr {NUMBER}"
    follow = {"status": "started", "note": note}
    ok(service.call(COORD, "POST", f"{BASE}/commitments/{commitment['id']}/follow-up", json=follow))
    yield {"rounds": [first["id"], second["id"]], "proposals": [declined, accepted], "commitment": commitment}


def needles() -> set[str]:
    return number_forms(NUMBER) | {FULL, FAMILY, CASE}


def test_access_request_holds_everything_about_the_candidate(service: Service, lived: dict[str, Any]) -> None:
    doc = ok(service.call(COORD, "GET", f"{BASE}/candidates/K1/access-request"))
    assert doc["identity"] == {
        "personnummer": NUMBER,
        "given_name": GIVEN,
        "family_name": FAMILY,
        "stored_at": doc["identity"]["stored_at"],
    }
    assert doc["profile"]["ladder"]["ptj_decision_ref"] == CASE and doc["profile"]["cefr"] == "C1"
    assert [(w["rank"], w["id"], w["kind"], w["unit_id"]) for w in doc["wishes"]] == [
        (1, "O1", "offer", "U1"),
        (2, "O2", "offer", "U1"),
    ]

    # Both rounds, each with its result and explanation.
    first, second = doc["rounds"]
    assert [first["round_id"], second["round_id"]] == lived["rounds"]
    assert (first["outcome"], first["proposal"]["offer_id"], first["proposal"]["answer"]) == (
        "proposed",
        "O1",
        "declined",
    )
    assert (second["outcome"], second["proposal"]["offer_id"], second["proposal"]["answer"]) == (
        "proposed",
        "O2",
        "accepted",
    )
    assert set(first["eligible_offers"]) == {"O1", "O2"} and first["proposal"]["breakdown"]

    assert [(a["round_id"], a["answer"]) for a in doc["answers"]] == [
        (lived["rounds"][0], "declined"),
        (lived["rounds"][1], "accepted"),
    ]
    [held] = doc["commitments"]
    assert (held["offer_id"], held["status"], held["held"]) == ("O2", "started", lived["commitment"]["grant"])

    # Every audit event about them: their record, identity reads with the purpose, answers and follow-up.
    events = [(e["action"], e["object_type"]) for e in doc["audit_events"]]
    for expected in (
        ("candidate.create", "candidate"),
        ("identity.create", "candidate"),
        ("identity.read", "candidate"),
        ("proposal.declined", "proposal"),
        ("proposal.accepted", "proposal"),
        ("commitment.follow_up", "commitment"),
    ):
        assert expected in events, (expected, events)
    read = next(e for e in doc["audit_events"] if e["action"] == "identity.read")
    assert read["purpose"] == "ringa [raderad] ([raderad]) om startdatum"
    assert doc["retention"]["rule"] == "kept while a placement runs"

    # The same as a readable page: every section, escaped, never cached.
    page = service.call(COORD, "GET", f"{BASE}/candidates/K1/access-request", params={"format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    for heading in ("Identitet", "Profil", "Önskemål", "Matchningsomgångar", "Klinikernas svar", "Placeringar"):
        assert f"<h2>{heading}" in page.text
    assert NUMBER in page.text and "proposal.declined" in page.text
    english = service.call(
        COORD, "GET", f"{BASE}/candidates/K1/access-request", params={"format": "html", "lang": "en"}
    )
    assert "<h2>Logged events</h2>" in english.text

    # Clinics never get it; another region's coordinator does not find the candidate.
    assert service.call(CLINIC, "GET", f"{BASE}/candidates/K1/access-request").status_code == 403
    assert service.call("coord02", "GET", f"{BASE}/candidates/K1/access-request").status_code == 404


def test_erasure_leaves_no_trace_and_is_audited(service: Service, lived: dict[str, Any]) -> None:
    # Before: the number and the name are where they were put (the audit log masked them when it was written).
    before = where_found(service.url, needles())
    tables = {table for table, _ in before}
    assert {"candidate_identity", "candidate", "match_round", "idempotency_key", "commitment"} <= tables, before
    assert "audit_event" not in tables

    refused = service.call(CLINIC, "POST", f"{BASE}/candidates/K1/erase", json={"reason": "x" * 5})
    assert refused.status_code == 403
    reason = f"begäran från {FULL} per telefon"
    done = ok(service.call(COORD, "POST", f"{BASE}/candidates/K1/erase", json={"reason": reason}))
    assert done["identity_removed"] and done["fields_cleared"] == ["specialty", "ladder.ptj_decision_ref"]
    assert done["commitment_notes_cleared"] == 1 and done["rounds_redacted"] >= 2
    assert done["stored_responses_redacted"] >= 1

    # After: nowhere, in any table or column; the other candidate's identity is untouched.
    assert where_found(service.url, needles()) == set()
    assert where_found(service.url, number_forms(fake_test_personnummer(1314))) == {
        ("candidate_identity", "personnummer")
    }
    assert service.call(COORD, "GET", f"{BASE}/candidates/K1/identity").status_code == 404
    assert ok(service.call(COORD, "GET", f"{BASE}/candidates/K2/identity"))["family_name"] == "Person"

    # The audit log says who erased whom, when and why, without the erased data.
    [event] = ok(service.call(COORD, "GET", "/audit", params={"action": "candidate.erase"}))["items"]
    assert (event["actor"], event["actor_role"], event["object_id"], event["region"]) == (
        COORD,
        "coordinator",
        "K1",
        "13",
    )
    assert event["purpose"] == "begäran från [raderad] per telefon"
    assert event["detail"]["identity_removed"] is True

    # The rounds stay consistent: the ref, the proposals and the commitment remain; round 2 reproduces.
    first, second = lived["rounds"]
    snap = ok(service.call(COORD, "GET", f"{BASE}/rounds/{first}/snapshot"))
    k1 = next(c for c in snap["candidates"] if c["id"] == "K1")
    assert k1["ladder"]["ptj_decision_ref"] is None and k1["specialty"] == "general practice"
    assert snap["name"] == "januari, [raderad] [raderad]"
    assert service.result(COORD, service.call(COORD, "POST", f"{BASE}/rounds/{second}/reproduce"))["identical"]
    ok(service.call(COORD, "GET", f"{BASE}/rounds/{first}/candidates/K1/explanation"))
    [commitment] = ok(service.call(COORD, "GET", f"{BASE}/commitments"))["items"]
    assert (commitment["candidate_id"], commitment["status"], commitment["note"]) == ("K1", "started", "")
    doc = ok(service.call(COORD, "GET", f"{BASE}/candidates/K1/access-request"))
    assert doc["identity"] is None and doc["record"]["erased_at"] and len(doc["rounds"]) == 2
    assert "specialty" not in doc["profile"]

    # Erased means out of every later round, and erasing again is a conflict.
    third = run_round(service, COORD, "13", "er-3")
    assert "K1" not in {
        c["id"] for c in ok(service.call(COORD, "GET", f"{BASE}/rounds/{third['id']}/snapshot"))["candidates"]
    }
    again = service.call(COORD, "POST", f"{BASE}/candidates/K1/erase", json={"reason": reason})
    assert again.status_code == 409 and again.json()["type"].endswith(":already-erased")


def test_audit_trail_lists_filters_pages_and_exports_within_scope(service: Service, lived: dict[str, Any]) -> None:
    reads = ok(service.call("admin", "GET", "/audit", params={"region": "13", "action": "identity.*"}))
    assert reads["total"] >= 2
    assert all(e["region"] == "13" and e["action"].startswith("identity.") for e in reads["items"])
    # An identity read shows who read it and for which purpose.
    revealed = [e for e in reads["items"] if e["action"] == "identity.read" and e["detail"].get("revealed")]
    assert {e["purpose"] for e in revealed} >= {"access request", "ringa [raderad] ([raderad]) om startdatum"}
    assert {e["actor"] for e in revealed} == {COORD}

    # Pages: newest first, no event twice, the total the same on every page.
    everything = ok(service.call(COORD, "GET", "/audit", params={"limit": 500}))
    pages = [ok(service.call(COORD, "GET", "/audit", params={"limit": 3, "offset": o})) for o in (0, 3, 6)]
    assert {p["total"] for p in pages} == {everything["total"]}
    ids = [e["id"] for p in pages for e in p["items"]]
    assert ids == [e["id"] for e in everything["items"][:9]] and ids == sorted(ids, reverse=True)

    # Scope: a coordinator sees only their region's events, another region is not found, clinics get none.
    assert {e["region"] for e in everything["items"]} == {"13"}
    other = ok(service.call("coord02", "GET", "/audit", params={"object_id": "K1"}))
    assert other["total"] == 0
    assert service.call("coord02", "GET", "/audit", params={"region": "13"}).status_code == 404
    assert service.call(CLINIC, "GET", "/audit").status_code == 403
    filtered = ok(service.call(COORD, "GET", "/audit", params={"actor": CLINIC, "object_type": "proposal"}))
    assert {(e["actor"], e["action"]) for e in filtered["items"]} == {
        (CLINIC, "proposal.declined"),
        (CLINIC, "proposal.accepted"),
    }
    bad = service.call(COORD, "GET", "/audit", params={"since": "2027-02-01", "until": "2027-01-01"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "until"

    # Export: the same events as CSV, without identity values.
    export = service.call(COORD, "GET", "/audit/export", params={"object_id": "K1"})
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {"candidate.create", "identity.read", "candidate.erase"} <= {r["action"] for r in rows}
    assert {r["region"] for r in rows} == {"13"} and all(r["actor"] for r in rows)
    assert not any(n in export.text for n in needles())
