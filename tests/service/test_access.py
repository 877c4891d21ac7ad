"""Every route against every role: no token, wrong role, other region, other unit, and the allowed ones; and for
every successful answer, that each id and field it holds is one its reader may see (tests/service/scope.py)."""

from __future__ import annotations

import json

import pytest

from api.core.identity import fake_test_personnummer
from tests.service.conftest import FIXTURES, Service
from tests.service.scope import ScopeCheck

SMALL = json.loads((FIXTURES / "pin_and_forbid.json").read_text())
BODIES = {
    "units": {**SMALL["units"][0], "id": "U-NEW"},
    "supervisors": {**SMALL["supervisors"][0], "id": "S-NEW"},
    "offers": {**SMALL["offers"][0], "id": "O-NEW"},
    "candidates": {**SMALL["candidates"][0], "id": "CAND-NEW"},
    "programmes": {**SMALL["programmes"][0], "id": "P-NEW"},
}
REFS = {"units": "U1", "supervisors": "S1", "offers": "O1", "candidates": "CAND-A", "programmes": "P1"}
# The sweep's round pins and forbids pairs at both units, so that a clinic's view has others' pairs to leave out.
ROUND_BODY = {
    "round_date": "2027-01-15",
    "time_limit_s": 5,
    "pins": [{"candidate_id": "CAND-C", "offer_id": "O2"}],
    "forbids": [{"candidate_id": "CAND-A", "offer_id": "O2"}],
    "floors": [{"group": "profession", "value": "physician", "min_count": 1}],
}
ROLES: tuple[str | None, ...] = (None, "admin", "coord01", "coord02", "clinic_u1", "clinic_u2")
WHAT_IF = {"changes": [{"target": "offer", "id": "O1", "set": {"slots": 2}}], "time_limit_s": 5}

# GET routes: expected status per user (None = no token). 200 means allowed; 404 means invisible.
R = "/regions/01"
GETS: dict[str, dict[str | None, int]] = {
    "/me": {None: 401, "admin": 200, "coord01": 200, "clinic_u1": 200},
    "/me/api-keys": {None: 401, "admin": 200, "coord01": 200, "clinic_u1": 200},
    "/regions": {None: 401, "admin": 200, "coord02": 200, "clinic_u2": 200},
    "/users": {None: 401, "admin": 200, "coord01": 200, "clinic_u1": 200},
    "/users/{user_id}": {None: 401, "admin": 200, "coord01": 404, "clinic_u1": 404},
    **{f"{R}/{k}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 200} for k in REFS},
    **{f"{R}/{k}/export": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 200} for k in REFS},
    f"{R}/units/{{ref}}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 200, "clinic_u2": 404},
    f"{R}/supervisors/{{ref}}": {
        None: 401,
        "admin": 200,
        "coord01": 200,
        "coord02": 404,
        "clinic_u1": 200,
        "clinic_u2": 404,
    },
    f"{R}/offers/{{ref}}": {
        None: 401,
        "admin": 200,
        "coord01": 200,
        "coord02": 404,
        "clinic_u1": 200,
        "clinic_u2": 404,
    },
    f"{R}/candidates/{{ref}}": {
        None: 401,
        "admin": 200,
        "coord01": 200,
        "coord02": 404,
        "clinic_u1": 200,
        "clinic_u2": 404,
    },
    f"{R}/programmes/{{ref}}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 404},
    f"{R}/candidates/{{ref}}/identity": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403},
    f"{R}/rounds": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 200},
    # The sweep's round is published: clinics see it, through their unit.
    f"{R}/rounds/{{round_id}}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 200},
    f"{R}/rounds/{{round_id}}/snapshot": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403},
    f"{R}/rounds/{{round_id}}/proposals": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 200},
    f"{R}/rounds/{{round_id}}/explanation": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403},
    f"{R}/rounds/{{round_id}}/candidates/{{ref}}/explanation": {
        None: 401,
        "admin": 200,
        "coord01": 200,
        "coord02": 404,
        "clinic_u1": 403,
    },
    # Analysis: coordinators and admins. The sweep's round is no re-run (diff: 409) and CAND-A is matched in it.
    **{
        f"{R}/rounds/{{round_id}}/{k}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403}
        for k in ("fairness", "prices", "why-not")
    },
    # Jobs: coordinators of the region and admins.
    "/jobs/{job_id}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403},
    f"{R}/jobs": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403},
    f"{R}/rounds/{{round_id}}/diff": {None: 401, "admin": 409, "coord01": 409, "coord02": 404, "clinic_u1": 403},
    f"{R}/rounds/{{round_id}}/candidates/{{ref}}/why-not": {
        None: 401,
        "admin": 409,
        "coord01": 409,
        "coord02": 404,
        "clinic_u1": 403,
    },
    # Commitments and books: coordinators of the region and admins; clinics read their unit's commitments only.
    f"{R}/commitments": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 200},
    f"{R}/commitments/{{commitment_id}}": {None: 401, "admin": 404, "coord01": 404, "coord02": 404, "clinic_u1": 404},
    **{
        f"{R}/{k}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403}
        for k in ("books", "books/export", "outlook")
    },
    f"{R}/rounds/{{round_id}}/proposals/export": {
        None: 401,
        "admin": 200,
        "coord01": 200,
        "coord02": 404,
        "clinic_u1": 200,
    },
    # Privacy: the audit trail, access requests and retention are for coordinators of the region and admins.
    "/audit": {None: 401, "admin": 200, "coord01": 200, "coord02": 200, "clinic_u1": 403},
    "/audit/export": {None: 401, "admin": 200, "coord01": 200, "clinic_u1": 403},
    **{
        f"{R}/{k}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403}
        for k in ("candidates/{ref}/access-request", "retention", "retention/preview")
    },
}
# Writes: who must be refused, and how (the allowed paths are exercised by the lifecycle and CRUD tests).
WRITES: dict[tuple[str, str], dict[str | None, int]] = {
    ("POST", "/me/api-keys"): {None: 401},
    ("DELETE", "/me/api-keys/{key_id}"): {None: 401, "coord01": 404, "clinic_u1": 404},
    ("POST", "/me/password"): {None: 401},
    ("POST", "/regions"): {None: 401, "coord01": 403, "clinic_u1": 403},
    ("POST", "/users"): {None: 401, "coord01": 403, "clinic_u1": 403},
    ("PATCH", "/users/{user_id}"): {None: 401, "coord01": 403, "clinic_u1": 403},
    **{("POST", f"{R}/{k}"): {None: 401, "coord02": 404} for k in REFS},
    ("POST", f"{R}/units"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("POST", f"{R}/candidates"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("POST", f"{R}/programmes"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("POST", f"{R}/offers"): {None: 401, "coord02": 404, "clinic_u2": 422},
    ("POST", f"{R}/supervisors"): {None: 401, "coord02": 404, "clinic_u2": 422},
    **{("PATCH", f"{R}/{k}/{{ref}}"): {None: 401, "coord02": 404} for k in REFS},
    ("PATCH", f"{R}/units/{{ref}}"): {None: 401, "coord02": 404, "clinic_u1": 403, "clinic_u2": 404},
    ("PATCH", f"{R}/offers/{{ref}}"): {None: 401, "coord02": 404, "clinic_u2": 404},
    # CAND-A is proposed to U1 in the published round: clinic_u1 reads it but may not change it.
    ("PATCH", f"{R}/candidates/{{ref}}"): {None: 401, "coord02": 404, "clinic_u1": 403, "clinic_u2": 404},
    **{("POST", f"{R}/{k}/import"): {None: 401, "coord02": 404} for k in REFS},
    ("POST", f"{R}/offers/{{ref}}/publish"): {None: 401, "coord02": 404, "clinic_u2": 404},
    ("POST", f"{R}/offers/{{ref}}/withdraw"): {None: 401, "coord02": 404, "clinic_u2": 404},
    ("POST", f"{R}/rounds"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("POST", f"{R}/rounds/{{round_id}}/cancel"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("POST", f"{R}/rounds/{{round_id}}/rerun"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("POST", f"{R}/rounds/{{round_id}}/publish"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("POST", f"{R}/rounds/{{round_id}}/what-if"): {None: 401, "coord02": 404, "clinic_u1": 403},
    **{
        ("POST", f"{R}/rounds/{{round_id}}/{k}"): {None: 401, "coord02": 404, "clinic_u1": 403}
        for k in ("prices", "why-not", "stable", "reproduce")
    },
    ("POST", f"{R}/rounds/{{round_id}}/candidates/{{ref}}/why-not"): {
        None: 401,
        "admin": 409,
        "coord01": 409,
        "coord02": 404,
        "clinic_u1": 403,
    },
    ("POST", "/jobs/{job_id}/cancel"): {None: 401, "coord02": 404, "clinic_u1": 403, "coord01": 409},
    ("POST", f"{R}/rounds/{{round_id}}/proposals/{{proposal_id}}/accept"): {
        None: 401,
        "coord01": 403,
        "clinic_u2": 404,
    },
    ("POST", f"{R}/rounds/{{round_id}}/proposals/{{proposal_id}}/decline"): {
        None: 401,
        "coord01": 403,
        "clinic_u2": 404,
    },
    ("POST", f"{R}/commitments/{{commitment_id}}/follow-up"): {None: 401, "coord02": 404, "clinic_u1": 403},
    **{("DELETE", f"{R}/{k}/{{ref}}"): {None: 401, "coord02": 404} for k in REFS},
    ("DELETE", f"{R}/units/{{ref}}"): {None: 401, "coord02": 404, "clinic_u1": 403, "clinic_u2": 404},
    ("DELETE", f"{R}/offers/{{ref}}"): {None: 401, "coord02": 404, "clinic_u2": 404},
    ("DELETE", f"{R}/supervisors/{{ref}}"): {None: 401, "coord02": 404, "clinic_u2": 404},
    ("DELETE", f"{R}/candidates/{{ref}}"): {None: 401, "coord02": 404, "clinic_u1": 403, "clinic_u2": 404},
    ("DELETE", f"{R}/programmes/{{ref}}"): {None: 401, "coord02": 404, "clinic_u1": 404},
    ("POST", f"{R}/candidates/{{ref}}/erase"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("POST", f"{R}/candidates/{{ref}}/withdraw"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("PUT", f"{R}/retention"): {None: 401, "coord02": 404, "clinic_u1": 403},
}
PUBLIC = {("POST", "/auth/token")}


@pytest.fixture(scope="module")
def ids(service: Service) -> dict[str, object]:
    """A published round of region 01 with proposals at U1 and U2, the admin's user id and one of its API keys."""
    r = service.call("coord01", "POST", f"{R}/rounds", json=ROUND_BODY, headers={"Idempotency-Key": "sweep"})
    round_id, job_id = r.json()["id"], r.json()["job_id"]
    assert service.wait_round("coord01", "01", round_id)["status"] == "solved"
    analysis = next(j for j in service.call("admin", "GET", f"{R}/jobs").json()["items"] if j["kind"] == "analysis")
    assert service.wait_job("admin", analysis)["status"] == "succeeded"  # the stored reports are read below
    assert service.call("coord01", "POST", f"{R}/rounds/{round_id}/publish").status_code == 200
    proposals = service.call("coord01", "GET", f"{R}/rounds/{round_id}/proposals").json()["items"]
    assert {p["offer_ref"] for p in proposals} == {"O1", "O2"}, proposals
    admin_id = service.call("admin", "GET", "/me").json()["id"]
    key_id = service.call("admin", "POST", "/me/api-keys", params={"name": "sweep"}).json()["id"]
    return {
        "round_id": round_id,
        "job_id": job_id,
        # A proposal of unit U1: clinic_u2 must not answer it.
        "proposal_id": next(p["id"] for p in proposals if p["offer_ref"] == "O1"),
        "user_id": admin_id,
        "key_id": key_id,
        # No proposal of region 01 is accepted in this module: a commitment id that exists nowhere.
        "commitment_id": 999_999,
    }


@pytest.fixture(scope="module")
def scoped(service: Service, ids: dict[str, object]) -> ScopeCheck:
    """The check of each answer's ids and fields against its reader."""
    return ScopeCheck(service)


def _fill(path: str, ids: dict[str, object]) -> str:
    kind = next((k for k in REFS if f"/{k}/" in path), "candidates")
    return path.format(ref=REFS[kind], **ids)


def _request(service: Service, user: str | None, method: str, path: str, ids: dict[str, object]):
    url = _fill(path, ids)
    kind = next((k for k in REFS if path.endswith(f"/{k}")), None)
    kw: dict[str, object] = {}
    if path.endswith("/import"):
        kw["files"] = {"file": ("x.csv", b"id\n", "text/csv")}
    elif method == "POST" and kind:
        kw["json"] = BODIES[kind]
    elif path.endswith("/what-if"):
        kw["json"] = WHAT_IF
    elif path.endswith("/follow-up"):
        kw["json"] = {"status": "started"}
    elif path.endswith("/erase"):
        kw["json"] = {"reason": "asked to be forgotten"}
    elif path.endswith("/retention"):
        kw["json"] = {"placed_months": 24, "withdrawn_months": 12, "inactive_months": 24}
    elif path == "/me/password":
        kw["json"] = {"current_password": "not-it", "new_password": "a-long-new-password"}
    elif path.endswith("/rounds") or path.endswith("/rerun"):
        kw["json"] = ROUND_BODY if path.endswith("/rounds") else {}
        kw["headers"] = {"Idempotency-Key": f"sweep-{user}-{path}"}
    elif path == "/regions":
        kw["json"] = {"code": "09", "name": "X"}
    elif path == "/users":
        kw["json"] = {"username": "newuser", "password": "long-enough-pass", "role": "admin"}
    elif method == "PATCH":
        kw["json"] = {}
    return service.call(user, method, url, **kw)


def test_every_route_is_in_the_table(service: Service) -> None:
    routes = {
        (m.upper(), p.removeprefix("/api/v1").replace("{region}", "01"))
        for p, ops in service.app.openapi()["paths"].items()
        for m in ops
    }
    listed = {("GET", p) for p in GETS} | set(WRITES) | PUBLIC
    assert routes == listed


def test_reads_by_role(service: Service, ids: dict[str, object], scoped: ScopeCheck) -> None:
    """Every read as every role: the listed statuses, and each successful answer only what its reader may see."""
    for path, expected in GETS.items():
        for user in ROLES:
            r = _request(service, user, "GET", path, ids)
            if user in expected:
                assert r.status_code == expected[user], (path, user, r.text)
            assert r.status_code < 500, (path, user, r.text)
            if r.status_code >= 400:
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["status"] == r.status_code
            scoped(user, r, path)


def test_writes_refused_for_wrong_role_region_or_unit(service: Service, ids: dict[str, object]) -> None:
    """Refusals only: the successes, and what they answer, are swept in test_access_writes."""
    for (method, path), expected in WRITES.items():
        for user, status in expected.items():
            r = _request(service, user, method, path, ids)
            assert r.status_code == status, (method, path, user, r.text)
            assert r.headers["content-type"] == "application/problem+json"


def test_clinic_never_sees_identity_numbers(service: Service, ids: dict[str, object]) -> None:
    numbers = [fake_test_personnummer(i) for i in range(10)]
    forms = {f for n in numbers for f in (n, n.replace("-", ""), n[2:], n[2:].replace("-", ""))}
    for path in GETS:
        r = _request(service, "clinic_u1", "GET", path, ids)
        assert not any(f in r.text for f in forms), path
        assert "personnummer" not in r.text


def test_a_clinic_sees_its_own_unit_of_a_round_and_the_coordinator_all(
    service: Service, ids: dict[str, object]
) -> None:
    path = f"{R}/rounds/{ids['round_id']}"
    full = service.call("coord01", "GET", path).json()
    assert full["view"] == "region" and full["input_hash"]
    assert [u["candidate_id"] for u in full["result"]["unmatched"]] == ["CAND-B"]
    assert [m["programme_id"] for m in full["result"]["money"]] == ["P1"]
    assert full["policy"]["pins"] == ROUND_BODY["pins"] and full["policy"]["floors"]
    assert any("fixed 1 pair(s)" in line for line in full["objective_statement"])
    # Each clinic: its own proposals' figures, its own pairs, nothing region-wide.
    pairs = {"clinic_u1": ([], []), "clinic_u2": (ROUND_BODY["pins"], [])}
    for user, unit in (("clinic_u1", "U1"), ("clinic_u2", "U2")):
        view = service.call(user, "GET", path).json()
        proposals = service.call(user, "GET", f"{path}/proposals").json()["items"]
        assert view["view"] == "unit" and view["result"] is None and view["input_hash"] is None
        assert view["unit"] == {
            "unit_id": unit,
            "proposals": len(proposals),
            "pending": len(proposals),
            "accepted": 0,
            "declined": 0,
            "grant": sum(p["grant"] for p in proposals),
            "unit_share": sum(p["unit_share"] for p in proposals),
            "total_cost": sum(p["total_cost"] for p in proposals),
        }
        assert (view["policy"]["pins"], view["policy"]["forbids"]) == pairs[user] and "floors" not in view["policy"]
        assert view["objective_statement"][0] == full["objective_statement"][0]
        assert not any("fixed" in line or "floor" in line for line in view["objective_statement"])
        assert set(view["provenance"]) <= {"versions", "method"}


def test_the_round_list_holds_summaries_only(service: Service, ids: dict[str, object]) -> None:
    full = service.call("coord01", "GET", f"{R}/rounds/{ids['round_id']}").json()
    for user, placements, proposals in (("coord01", 2, 2), ("admin", 2, 2), ("clinic_u1", None, 1)):
        items = service.call(user, "GET", f"{R}/rounds").json()["items"]
        assert items, user
        for item in items:
            assert not {"result", "policy", "unit", "progress"} & set(item), item
        mine = next(i for i in items if i["id"] == ids["round_id"])
        assert (mine["placements"], mine["proposals"], mine["status"]) == (placements, proposals, "published")
    assert full["result"]["placements"] == 2
