"""An admin changes a user's role and scope (PATCH /users/{id}): invalid combinations are refused naming the field
and the rule, a change ends every credential issued before it (an old token cannot keep old rights), it is audited,
and the last active admin cannot demote themselves."""

from __future__ import annotations

import itertools

import httpx

from tests.service.conftest import PASSWORD, Service
from tests.service.helpers import bearer, new_user, ok

_names = itertools.count(1)


def _new_user(service: Service, **scope: str) -> tuple[str, int]:
    name = f"scope-user-{next(_names)}"
    return name, new_user(service, name, **scope)


def _get(service: Service, path: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=service.base_url + "/api/v1", headers=headers, timeout=30) as client:
        return client.get(path)


def _offer_units(service: Service, headers: dict[str, str], region: str = "01") -> set[str]:
    return {o["unit_id"] for o in ok(_get(service, f"/regions/{region}/offers", headers))["items"]}


def test_a_coordinator_made_clinic_user_loses_the_region_and_the_old_token(service: Service) -> None:
    name, user_id = _new_user(service, role="coordinator", region="01")
    old = bearer(service, name)
    assert ok(_get(service, "/me", old))["role"] == "coordinator"  # the token works before
    assert _offer_units(service, old) == {"U1", "U2"}
    with httpx.Client(base_url=service.base_url + "/api/v1", headers=old, timeout=30) as client:
        script_key = ok(client.post("/me/api-keys", params={"name": "script"}), 201)["key"]

    changed = ok(service.call("admin", "PATCH", f"/users/{user_id}", json={"role": "clinic", "unit": "U1"}))
    assert {k: changed[k] for k in ("role", "region", "unit")} == {"role": "clinic", "region": "01", "unit": "U1"}
    # The old token and the API key made with it no longer work: they would carry the coordinator's rights.
    assert _get(service, "/me", old).status_code == 401
    assert _get(service, "/regions/01/offers", old).status_code == 401
    assert _get(service, "/me", {"X-API-Key": script_key}).status_code == 401
    assert ok(service.call("admin", "GET", "/me"))["role"] == "admin"  # the admin's own token is untouched
    # A new login has the new scope: its unit's offers only, no programmes, no other region.
    new = bearer(service, name)
    assert ok(_get(service, "/me", new))["unit"] == "U1"
    assert _offer_units(service, new) == {"U1"}
    assert ok(_get(service, "/regions/01/programmes", new))["items"] == []
    assert _get(service, "/regions/02/offers", new).status_code == 404

    [event] = ok(service.call("admin", "GET", "/audit", params={"action": "user.scope"}))["items"][:1]
    assert event["object_id"] == str(user_id) and event["actor"] == "admin"
    assert event["detail"]["before"] == {"role": "coordinator", "region": "01", "unit": None}
    assert event["detail"]["after"] == {"role": "clinic", "region": "01", "unit": "U1"}
    assert event["detail"]["api_keys_revoked"] == 1


def test_a_clinic_user_moves_unit_then_region_and_becomes_coordinator(service: Service) -> None:
    name, user_id = _new_user(service, role="clinic", region="01", unit="U1")
    old = bearer(service, name)
    assert _offer_units(service, old) == {"U1"}
    assert ok(service.call("admin", "PATCH", f"/users/{user_id}", json={"unit": "U2"}))["unit"] == "U2"
    assert _get(service, "/me", old).status_code == 401
    assert _offer_units(service, bearer(service, name)) == {"U2"}
    moved = ok(service.call("admin", "PATCH", f"/users/{user_id}", json={"region": "02", "unit": "U1"}))
    assert (moved["region"], moved["unit"]) == ("02", "U1")
    token = bearer(service, name)
    assert _get(service, "/regions/01/offers", token).status_code == 404
    assert _offer_units(service, token, "02") == {"U1"}
    # Made coordinator: keeps the region, loses the unit.
    promoted = ok(service.call("admin", "PATCH", f"/users/{user_id}", json={"role": "coordinator"}))
    assert (promoted["role"], promoted["region"], promoted["unit"]) == ("coordinator", "02", None)
    assert _get(service, "/me", token).status_code == 401


def test_the_same_scope_again_changes_nothing_and_keeps_the_token(service: Service) -> None:
    name, user_id = _new_user(service, role="clinic", region="01", unit="U2")
    token = bearer(service, name)
    ok(service.call("admin", "PATCH", f"/users/{user_id}", json={"role": "clinic", "region": "01", "unit": "U2"}))
    assert ok(_get(service, "/me", token))["unit"] == "U2"


def test_invalid_roles_and_scopes_are_refused_naming_the_field_and_the_rule(service: Service) -> None:
    coordinator, coordinator_id = _new_user(service, role="coordinator", region="01")
    clinic, clinic_id = _new_user(service, role="clinic", region="01", unit="U2")
    tokens = {coordinator: bearer(service, coordinator), clinic: bearer(service, clinic)}
    cases = [
        (coordinator_id, {"role": "clinic"}, "unit", "required"),
        (coordinator_id, {"unit": "U1"}, "unit", "not_allowed"),
        (coordinator_id, {"role": "clinic", "unit": "U9"}, "unit", "unit_in_region"),
        (coordinator_id, {"region": None}, "region", "required"),
        (coordinator_id, {"region": "99"}, "region", "known_id"),
        (coordinator_id, {"role": "admin", "region": "01"}, "region", "not_allowed"),
        (clinic_id, {"region": "02"}, "unit", "unit_in_region"),  # U2 is a unit of region 01, not of 02
        (clinic_id, {"region": "02", "unit": "U2"}, "unit", "unit_in_region"),
        (clinic_id, {"unit": None}, "unit", "required"),
        (clinic_id, {"role": "coordinator", "unit": "U2"}, "unit", "not_allowed"),
        (clinic_id, {"role": "nurse"}, "role", "string_pattern_mismatch"),
    ]
    for user_id, body, field, rule in cases:
        refused = service.call("admin", "PATCH", f"/users/{user_id}", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        [error] = refused.json()["errors"]
        assert (error["field"], error["type"]) == (field, rule), body
    # Nothing changed: scopes and tokens are as before.
    assert ok(_get(service, "/me", tokens[coordinator]))["role"] == "coordinator"
    assert ok(_get(service, "/me", tokens[clinic]))["unit"] == "U2"
    assert service.call("coord01", "PATCH", f"/users/{clinic_id}", json={"unit": "U1"}).status_code == 403
    assert service.call("clinic_u1", "PATCH", f"/users/{clinic_id}", json={"role": "admin"}).status_code == 403


def test_the_last_active_admin_cannot_demote_themselves(service: Service) -> None:
    second, second_id = _new_user(service, role="admin")
    admin_id = ok(service.call("admin", "GET", "/me"))["id"]
    ok(service.call(second, "PATCH", f"/users/{admin_id}", json={"active": False}))
    service.tokens.pop("admin", None)  # deactivation ended the cached token
    refused = service.call(second, "PATCH", f"/users/{second_id}", json={"role": "coordinator", "region": "01"})
    assert refused.status_code == 409 and refused.json()["type"].endswith(":last-admin")
    assert ok(service.call(second, "GET", "/me"))["role"] == "admin"
    # With another active admin, an admin may step down; their token then carries no admin rights.
    ok(service.call(second, "PATCH", f"/users/{admin_id}", json={"active": True}))
    old = {"Authorization": f"Bearer {service.token(second)}"}
    demoted = ok(service.call(second, "PATCH", f"/users/{second_id}", json={"role": "coordinator", "region": "01"}))
    assert demoted["role"] == "coordinator"
    assert _get(service, "/users", old).status_code == 401
    service.tokens.pop(second, None)
    assert service.call(second, "GET", "/users").json()["items"] == [demoted]
    assert (
        service.call(
            second, "POST", "/users", json={"username": "x-y-z", "password": PASSWORD, "role": "admin"}
        ).status_code
        == 403
    )
