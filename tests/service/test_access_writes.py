"""Every write route against every role, successes included: admin anywhere, a coordinator in its own region, a
clinic user on its own unit's supervisors and offers and its own proposals; everybody else refused.

EXPECTED names the status of each write route for each test user; a new write route without an entry fails
`test_every_write_route_has_an_entry_for_every_role`, and each entry is exercised by one of the sweeps below. Every
successful answer is checked for the ids and fields its reader may see (tests/service/scope.py).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import httpx

from api.core import tabular
from tests.service.conftest import Service
from tests.service.scope import ScopeCheck
from tests.service.test_access import BODIES, REFS, WHAT_IF

R = "/regions/01"
ROLES: tuple[str | None, ...] = (None, "admin", "coord01", "coord02", "clinic_u1", "clinic_u2")
PER_UNIT = ("supervisors", "offers")


def _row(none: int, admin: int, coord01: int, coord02: int, clinic_u1: int, clinic_u2: int) -> dict[str | None, int]:
    return dict(zip(ROLES, (none, admin, coord01, coord02, clinic_u1, clinic_u2), strict=True))


ADMIN_ONLY_CREATE = _row(401, 201, 403, 403, 403, 403)
EXPECTED: dict[tuple[str, str], dict[str | None, int]] = {
    ("POST", "/me/api-keys"): _row(401, 201, 201, 201, 201, 201),
    # One's own key (each user revokes a key of its own; another's key id is 404, swept in test_access).
    ("DELETE", "/me/api-keys/{key_id}"): _row(401, 200, 200, 200, 200, 200),
    # The current password is given wrong here (422): a right one would revoke the user's token mid-sweep.
    ("POST", "/me/password"): _row(401, 422, 422, 422, 422, 422),
    ("POST", "/regions"): ADMIN_ONLY_CREATE,
    ("POST", "/users"): ADMIN_ONLY_CREATE,
    ("PATCH", "/users/{user_id}"): _row(401, 200, 403, 403, 403, 403),
    # Region objects: clinics create and change only their own unit's supervisors and offers (clinic_u2 sends a
    # body for unit U1, which it may not use: 422); units are readable by their clinic but not writable (403).
    **{("POST", f"{R}/{k}"): _row(401, 201, 201, 404, 403, 403) for k in ("units", "candidates", "programmes")},
    **{("POST", f"{R}/{k}"): _row(401, 201, 201, 404, 201, 422) for k in PER_UNIT},
    ("PATCH", f"{R}/units/{{ref}}"): _row(401, 200, 200, 404, 403, 404),
    **{("PATCH", f"{R}/{k}/{{ref}}"): _row(401, 200, 200, 404, 200, 404) for k in PER_UNIT},
    **{("PATCH", f"{R}/{k}/{{ref}}"): _row(401, 200, 200, 404, 404, 404) for k in ("candidates", "programmes")},
    **{("POST", f"{R}/{k}/import"): _row(401, 200, 200, 404, 403, 403) for k in ("units", "candidates", "programmes")},
    **{("POST", f"{R}/{k}/import"): _row(401, 200, 200, 404, 200, 422) for k in PER_UNIT},
    # Withdrawn, then published again: offer O1 stays in the rounds below.
    ("POST", f"{R}/offers/{{ref}}/withdraw"): _row(401, 200, 200, 404, 200, 404),
    ("POST", f"{R}/offers/{{ref}}/publish"): _row(401, 200, 200, 404, 200, 404),
    # Rounds: coordinators of the region and admins; answers: the clinic of the proposal's unit and admins.
    ("POST", f"{R}/rounds"): _row(401, 202, 202, 404, 403, 403),
    ("POST", f"{R}/rounds/{{round_id}}/cancel"): _row(401, 200, 200, 404, 403, 403),
    ("POST", f"{R}/rounds/{{round_id}}/rerun"): _row(401, 202, 202, 404, 403, 403),
    ("POST", f"{R}/rounds/{{round_id}}/publish"): _row(401, 200, 200, 404, 403, 403),
    ("POST", f"{R}/rounds/{{round_id}}/what-if"): _row(401, 202, 202, 404, 403, 403),
    # Solver work on a round is a job (202); a job is cancelled by those who may read it.
    **{
        ("POST", f"{R}/rounds/{{round_id}}/{k}"): _row(401, 202, 202, 404, 403, 403)
        for k in ("prices", "why-not", "stable", "reproduce", "candidates/{ref}/why-not")
    },
    ("POST", "/jobs/{job_id}/cancel"): _row(401, 200, 200, 404, 403, 403),
    ("POST", f"{R}/rounds/{{round_id}}/proposals/{{proposal_id}}/accept"): _row(401, 200, 403, 403, 200, 404),
    ("POST", f"{R}/rounds/{{round_id}}/proposals/{{proposal_id}}/decline"): _row(401, 200, 403, 403, 200, 404),
    # Follow-up of an accepted placement: coordinators of the region and admins.
    ("POST", f"{R}/commitments/{{commitment_id}}/follow-up"): _row(401, 200, 200, 404, 403, 403),
    # Deletes (each of a fresh object): whoever may edit it; a fresh unit is no clinic's own.
    **{
        ("DELETE", f"{R}/{k}/{{ref}}"): _row(401, 200, 200, 404, 404, 404)
        for k in ("units", "candidates", "programmes")
    },
    **{("DELETE", f"{R}/{k}/{{ref}}"): _row(401, 200, 200, 404, 200, 404) for k in PER_UNIT},
    # A candidate's withdrawal and erasure, the region's retention: coordinators of the region and admins.
    **{("POST", f"{R}/candidates/{{ref}}/{a}"): _row(401, 200, 200, 404, 403, 403) for a in ("withdraw", "erase")},
    ("PUT", f"{R}/retention"): _row(401, 200, 200, 404, 403, 403),
}
FRESH = ("DELETE", "/withdraw", "/erase")  # routes that act on a new object for every call
ROUND_ROUTES = {key for key in EXPECTED if any(part in key[1] for part in ("/rounds", "/commitments", "/jobs"))}
_fresh = itertools.count(1)


def _write_routes(service: Service) -> set[tuple[str, str]]:
    return {
        (m.upper(), p.removeprefix("/api/v1").replace("{region}", "01"))
        for p, ops in service.app.openapi()["paths"].items()
        for m in ops
        if m.upper() != "GET"
    } - {("POST", "/auth/token")}


def test_every_write_route_has_an_entry_for_every_role(service: Service) -> None:
    assert set(EXPECTED) == _write_routes(service)
    for key, expected in EXPECTED.items():
        assert set(expected) == set(ROLES), key


def _object(kind: str) -> dict[str, Any]:
    """A new object of the kind (supervisors and offers at unit U1), with an id never used before."""
    body = {**BODIES[kind], "id": f"W{next(_fresh)}-{kind[:3]}"}
    body.pop("identity", None)
    return body


def _request(kind: str | None, method: str, path: str) -> dict[str, Any]:
    """Arguments of a request that would succeed for a user who may make it."""
    n = next(_fresh)
    if path == "/me/api-keys":
        return {"params": {"name": f"key-{n}"}}
    if path == "/me/password":
        return {"json": {"current_password": "not-the-password", "new_password": "long-enough-pass"}}
    if path == "/me/api-keys/{key_id}":
        return {}
    if path == "/regions":
        return {"json": {"code": f"{10 + n % 90:02d}", "name": f"Region {n}"}}
    if path == "/users":
        return {"json": {"username": f"writer{n}", "password": "long-enough-pass", "role": "clinic", "region": "01",
                         "unit": "U1"}}  # fmt: skip
    if path == "/users/{user_id}":
        return {"json": {"active": True}}
    if path.endswith("/retention"):
        return {"json": {"placed_months": 24, "withdrawn_months": 12, "inactive_months": 24}}
    if path.endswith("/erase"):
        return {"json": {"reason": "asked to be forgotten"}}
    assert kind is not None
    if path.endswith("/import"):
        csv = tabular.to_csv([tabular.flatten(_object(kind))])
        return {"files": {"file": (f"{kind}.csv", csv, "text/csv")}}
    if method == "POST" and path.endswith(f"/{kind}"):
        return {"json": _object(kind)}
    if method == "PATCH":
        return {"json": {}}
    return {}


def test_object_writes_by_role(service: Service) -> None:
    """Every non-round write route as every role: the allowed ones succeed, the others are refused."""
    victim = service.call(
        "admin", "POST", "/users", json={"username": "patch-me", "password": "long-enough-pass", "role": "admin"}
    )
    ids: dict[str, object] = {"user_id": victim.json()["id"], "key_id": 999_999}
    scoped = ScopeCheck(service)
    clients: dict[str | None, httpx.Client] = {}
    actual: dict[tuple[str, str], dict[str | None, int]] = defaultdict(dict)
    for (method, path), expected in EXPECTED.items():
        if (method, path) in ROUND_ROUTES:
            continue
        kind = next((k for k in REFS if f"/{k}" in path), None)
        url = path.format(ref=REFS.get(kind or "", ""), **ids)
        for user in expected:
            if user not in clients:  # one client per user: building one costs ~40 ms
                clients[user] = service.client(user)
            if path == "/me/api-keys/{key_id}":
                if user is not None:  # a key of the user's own
                    url = path.format(key_id=service.call(user, "POST", "/me/api-keys").json()["id"])
            elif method in FRESH or path.endswith(FRESH):
                fresh = _object(kind or "")
                assert service.call("admin", "POST", f"{R}/{kind}", json=fresh).status_code == 201
                url = path.format(ref=fresh["id"], **ids)
            r = clients[user].request(method, url, **_request(kind, method, path))
            actual[(method, path)][user] = r.status_code
            if r.status_code >= 400:
                assert r.headers["content-type"] == "application/problem+json", (method, path, user, r.text)
            scoped(user, r, (method, path))
    for client in clients.values():
        client.close()
    wanted = {key: value for key, value in EXPECTED.items() if key not in ROUND_ROUTES}
    assert dict(actual) == wanted


def test_created_objects_belong_where_the_role_may_act(service: Service) -> None:
    """A clinic user's new supervisor lands on its unit and is then its to change; the coordinator sees it too."""
    body = _object("supervisors")
    assert service.call("clinic_u1", "POST", f"{R}/supervisors", json=body).status_code == 201
    assert service.call("clinic_u1", "PATCH", f"{R}/supervisors/{body['id']}", json={"capacity": 2}).status_code == 200
    assert service.call("coord01", "GET", f"{R}/supervisors/{body['id']}").json()["capacity"] == 2
    assert service.call("clinic_u2", "GET", f"{R}/supervisors/{body['id']}").status_code == 404
    # Refused by role, not by content: an empty import of units is no way around it.
    empty = {"file": ("units.csv", b"id\n", "text/csv")}
    assert service.call("clinic_u1", "POST", f"{R}/units/import", files=empty).status_code == 403


ROUND_BODY = {"round_date": "2027-01-15", "time_limit_s": 5}


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"writes-{next(_fresh)}"}


def test_round_writes_by_role(service: Service) -> None:
    """Start, re-run, cancel, publish and answer as every role, in an order that gives each success its state."""
    actual: dict[tuple[str, str], dict[str | None, int]] = defaultdict(dict)
    scoped = ScopeCheck(service)

    def call(route: str, user: str | None, url: str, **kw: Any) -> httpx.Response:
        r = service.call(user, "POST", url, **kw)
        actual[("POST", f"{R}/rounds{route}")][user] = r.status_code
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json", (route, user, r.text)
        scoped(user, r, route)
        return r

    def solved(r: httpx.Response) -> int:
        assert r.status_code == 202, r.text
        assert service.wait_round("coord01", "01", r.json()["id"])["status"] == "solved"
        return int(r.json()["id"])

    # Start: refusals, then the coordinator and the admin (one after the other: one solving round per region).
    for user in (None, "coord02", "clinic_u1", "clinic_u2"):
        call("", user, f"{R}/rounds", json=ROUND_BODY, headers=_key())
    first = solved(call("", "coord01", f"{R}/rounds", json=ROUND_BODY, headers=_key()))
    second = solved(call("", "admin", f"{R}/rounds", json=ROUND_BODY, headers=_key()))

    # Re-run.
    for user in (None, "coord02", "clinic_u1", "clinic_u2"):
        call("/{round_id}/rerun", user, f"{R}/rounds/{first}/rerun", json={}, headers=_key())
    for user in ("admin", "coord01"):
        solved(call("/{round_id}/rerun", user, f"{R}/rounds/{first}/rerun", json={}, headers=_key()))

    # What-if and the other jobs on a round: they change nothing stored, so every role can try them on one round.
    for user in ROLES:
        call("/{round_id}/what-if", user, f"{R}/rounds/{first}/what-if", json=WHAT_IF)
    unmatched = service.call("coord01", "GET", f"{R}/rounds/{first}").json()["result"]["unmatched"][0]["candidate_id"]
    for user in ROLES:
        for k in ("prices", "why-not", "stable", "reproduce"):
            call(f"/{{round_id}}/{k}", user, f"{R}/rounds/{first}/{k}")
        call("/{round_id}/candidates/{ref}/why-not", user, f"{R}/rounds/{first}/candidates/{unmatched}/why-not")

    # Cancel a job (one that waits, so that it is still open).
    with service.solver_delay(30):
        for user in ("admin", "coord01"):
            job = service.call("coord01", "POST", f"{R}/rounds/{first}/what-if", json=WHAT_IF).json()
            for refused in (None, "coord02", "clinic_u1", "clinic_u2"):
                r = service.call(refused, "POST", f"/jobs/{job['id']}/cancel")
                actual[("POST", "/jobs/{job_id}/cancel")][refused] = r.status_code
            r = service.call(user, "POST", f"/jobs/{job['id']}/cancel")
            actual[("POST", "/jobs/{job_id}/cancel")][user] = r.status_code
            assert r.json()["status"] == "cancelled"

    # Cancel a queued or solving round.
    with service.solver_delay(30):
        for user in ("admin", "coord01"):
            r = service.call("coord01", "POST", f"{R}/rounds", json=ROUND_BODY, headers=_key())
            assert r.status_code == 202, r.text
            solving = r.json()["id"]
            for refused in (None, "coord02", "clinic_u1", "clinic_u2"):
                call("/{round_id}/cancel", refused, f"{R}/rounds/{solving}/cancel")
            assert call("/{round_id}/cancel", user, f"{R}/rounds/{solving}/cancel").json()["status"] == "cancelled"

    u1_offers = {o["id"] for o in service.call("coord01", "GET", f"{R}/offers", params={"unit": "U1"}).json()["items"]}
    # Publish the first round as the admin and the second as the coordinator; answer each one's proposals.
    for user in (None, "coord02", "clinic_u1", "clinic_u2"):
        call("/{round_id}/publish", user, f"{R}/rounds/{first}/publish")
    for round_id, publisher, action in ((first, "admin", "decline"), (second, "coord01", "accept")):
        assert call("/{round_id}/publish", publisher, f"{R}/rounds/{round_id}/publish").json()["status"] == "published"
        proposals = service.call("coord01", "GET", f"{R}/rounds/{round_id}/proposals").json()["items"]
        own = next(p for p in proposals if p["offer_ref"] in u1_offers)
        other = next(p for p in proposals if p["offer_ref"] not in u1_offers)
        route = f"/{{round_id}}/proposals/{{proposal_id}}/{action}"
        for refused in (None, "coord01", "coord02", "clinic_u2"):
            call(route, refused, f"{R}/rounds/{round_id}/proposals/{own['id']}/{action}")
        answered = call(route, "clinic_u1", f"{R}/rounds/{round_id}/proposals/{own['id']}/{action}").json()
        assert answered["answer"] == action.rstrip("e") + "ed"
        answered = call(route, "admin", f"{R}/rounds/{round_id}/proposals/{other['id']}/{action}").json()
        assert answered["answer"] == action.rstrip("e") + "ed"

    # Follow-up of the placement accepted above.
    commitment = service.call("coord01", "GET", f"{R}/commitments").json()["items"][0]
    url = f"{R}/commitments/{commitment['id']}/follow-up"
    for user, body in (
        *((refused, {"status": "started"}) for refused in (None, "coord02", "clinic_u1", "clinic_u2")),
        ("coord01", {"status": "started"}),
        ("admin", {"note": "checked by the admin"}),
    ):
        r = service.call(user, "POST", url, json=body)
        actual[("POST", f"{R}/commitments/{{commitment_id}}/follow-up")][user] = r.status_code
        scoped(user, r, "follow-up")

    assert dict(actual) == {key: value for key, value in EXPECTED.items() if key in ROUND_ROUTES}
