"""Every route against every role: no token, wrong role, other region, other unit, and the allowed ones."""

from __future__ import annotations

import json

import pytest

from api.identity import fake_test_personnummer
from tests.service.conftest import FIXTURES, Service

SMALL = json.loads((FIXTURES / "pin_and_forbid.json").read_text())
BODIES = {
    "units": {**SMALL["units"][0], "id": "U-NEW"},
    "supervisors": {**SMALL["supervisors"][0], "id": "S-NEW"},
    "offers": {**SMALL["offers"][0], "id": "O-NEW"},
    "candidates": {**SMALL["candidates"][0], "id": "CAND-NEW"},
    "programmes": {**SMALL["programmes"][0], "id": "P-NEW"},
}
REFS = {"units": "U1", "supervisors": "S1", "offers": "O1", "candidates": "CAND-A", "programmes": "P1"}
ROUND_BODY = {"round_date": "2027-01-15", "time_limit_s": 5}
WHAT_IF = {"changes": [{"target": "offer", "id": "O1", "set": {"slots": 2}}], "time_limit_s": 5}

# GET routes: expected status per user (None = no token). 200 means allowed; 404 means invisible.
R = "/regions/01"
GETS: dict[str, dict[str | None, int]] = {
    "/me": {None: 401, "admin": 200, "coord01": 200, "clinic_u1": 200},
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
    f"{R}/candidates/{{ref}}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u2": 404},
    f"{R}/programmes/{{ref}}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 404},
    f"{R}/candidates/{{ref}}/identity": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403},
    f"{R}/rounds": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 200},
    f"{R}/rounds/{{round_id}}": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 404},
    f"{R}/rounds/{{round_id}}/snapshot": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 403},
    f"{R}/rounds/{{round_id}}/proposals": {None: 401, "admin": 200, "coord01": 200, "coord02": 404, "clinic_u1": 404},
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
        "clinic_u1": 404,
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
    ("PATCH", f"{R}/candidates/{{ref}}"): {None: 401, "coord02": 404, "clinic_u1": 404},
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
    ("DELETE", f"{R}/candidates/{{ref}}"): {None: 401, "coord02": 404, "clinic_u1": 404},
    ("DELETE", f"{R}/programmes/{{ref}}"): {None: 401, "coord02": 404, "clinic_u1": 404},
    ("POST", f"{R}/candidates/{{ref}}/erase"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("POST", f"{R}/candidates/{{ref}}/withdraw"): {None: 401, "coord02": 404, "clinic_u1": 403},
    ("PUT", f"{R}/retention"): {None: 401, "coord02": 404, "clinic_u1": 403},
}
PUBLIC = {("POST", "/auth/token")}


@pytest.fixture(scope="module")
def ids(service: Service) -> dict[str, object]:
    """A solved (unpublished) round of region 01 with a proposal for U1, and the admin's user id."""
    r = service.call("coord01", "POST", f"{R}/rounds", json=ROUND_BODY, headers={"Idempotency-Key": "sweep"})
    round_id, job_id = r.json()["id"], r.json()["job_id"]
    assert service.wait_round("coord01", "01", round_id)["status"] == "solved"
    analysis = next(j for j in service.call("admin", "GET", f"{R}/jobs").json()["items"] if j["kind"] == "analysis")
    assert service.wait_job("admin", analysis)["status"] == "succeeded"  # the stored reports are read below
    proposals = service.call("coord01", "GET", f"{R}/rounds/{round_id}/proposals").json()["items"]
    admin_id = service.call("admin", "GET", "/me").json()["id"]
    # No proposal of region 01 is accepted in this module: a commitment id that exists nowhere.
    return {
        "round_id": round_id,
        "job_id": job_id,
        "proposal_id": proposals[0]["id"],
        "user_id": admin_id,
        "commitment_id": 999_999,
    }


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


def test_reads_by_role(service: Service, ids: dict[str, object]) -> None:
    for path, expected in GETS.items():
        for user, status in expected.items():
            r = _request(service, user, "GET", path, ids)
            assert r.status_code == status, (path, user, r.text)
            if status >= 400:
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["status"] == status


def test_writes_refused_for_wrong_role_region_or_unit(service: Service, ids: dict[str, object]) -> None:
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
