"""`vardmatch users set-scope` and `users list` on the service's own database (SQLite and PostgreSQL): the command
changes a user's role and scope through the same service as PATCH /users/{id}, so the running service at once
refuses the old token and API key and gives the new login the new scope; it is audited with `system` as the actor;
bad input is refused naming the field and the rule, with no traceback and nothing changed."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import httpx
from typer.testing import CliRunner, Result

from api.cli import app
from tests.service.conftest import Service
from tests.service.helpers import bearer, new_user, ok

_names = itertools.count(1)


def _cli(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child process, as an operator types it."""
    command = [sys.executable, "-m", "api.cli", "users", *args, "--database-url", service.url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _invoke(service: Service, *args: str) -> Result:
    """The same command in this process (a child process costs seconds of imports)."""
    return CliRunner().invoke(app, ["users", *args, "--database-url", service.url])


def _new_user(service: Service, **scope: str) -> tuple[str, int]:
    name = f"cli-scope-{next(_names)}"
    return name, new_user(service, name, **scope)


def _get(service: Service, path: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{service.base_url}/api/v1{path}", headers=headers, timeout=30)


def _offer_units(service: Service, headers: dict[str, str]) -> set[str]:
    return {o["unit_id"] for o in ok(_get(service, "/regions/01/offers", headers))["items"]}


def test_set_scope_from_the_command_line_ends_the_old_rights_and_is_audited(service: Service) -> None:
    name, user_id = _new_user(service, role="coordinator", region="01")
    old = bearer(service, name)
    assert _offer_units(service, old) == {"U1", "U2"}
    key = ok(httpx.post(f"{service.base_url}/api/v1/me/api-keys", params={"name": "s"}, headers=old), 201)["key"]

    changed = _cli(service, "set-scope", name, "--role", "clinic", "--unit", "U1")
    assert changed.returncode == 0, changed.stderr
    assert f"{name}: coordinator of region 01 -> clinic of region 01, unit U1" in changed.stdout
    assert "1 API key(s) revoked" in changed.stdout
    # The running service sees the change at once: the old token and key are refused, a new login has the unit.
    assert _get(service, "/me", old).status_code == 401
    assert _get(service, "/me", {"X-API-Key": key}).status_code == 401
    new = bearer(service, name)
    assert _offer_units(service, new) == {"U1"}
    user = ok(service.call("admin", "GET", f"/users/{user_id}"))
    assert (user["role"], user["region"], user["unit"]) == ("clinic", "01", "U1")

    events = ok(service.call("admin", "GET", "/audit", params={"action": "user.scope"}))["items"]
    [event] = [e for e in events if e["object_id"] == str(user_id)]
    assert event["actor"] == "system"
    assert event["detail"]["before"] == {"role": "coordinator", "region": "01", "unit": None}
    assert event["detail"]["after"] == {"role": "clinic", "region": "01", "unit": "U1"}

    # Back to coordinator with the unit cleared; the same again changes nothing and keeps the new login.
    cleared = _invoke(service, "set-scope", name, "--role", "coordinator", "--no-unit")
    assert cleared.exit_code == 0, cleared.output
    assert _get(service, "/me", new).status_code == 401
    again = _invoke(service, "set-scope", name, "--role", "coordinator")
    assert again.exit_code == 0 and "nothing changed" in again.output
    latest = bearer(service, name)
    assert _offer_units(service, latest) == {"U1", "U2"}

    listed = _invoke(service, "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {row["username"]: row for row in json.loads(listed.stdout)}
    assert rows[name] == {"id": user_id, "username": name, "role": "coordinator", "region": "01", "unit": None,
                          "active": True}  # fmt: skip
    assert rows["clinic_u2"]["unit"] == "U2" and rows["admin"]["role"] == "admin"
    table = _invoke(service, "list")
    [line] = [line.split() for line in table.stdout.splitlines() if line.startswith(name + " ")]
    assert line == [name, "coordinator", "01", "-", "True"]
    assert "hash" not in listed.stdout + table.stdout and "$" not in listed.stdout + table.stdout


def test_bad_scopes_are_refused_with_the_field_and_the_rule_and_change_nothing(service: Service) -> None:
    name, user_id = _new_user(service, role="clinic", region="01", unit="U2")
    token = bearer(service, name)
    cases = [
        (["--role", "coordinator", "--unit", "U2"], "unit: the role coordinator has no unit [rule: not_allowed]"),
        (["--unit", "U9"], "unit: unit U9 is not a unit of region 01 [rule: unit_in_region]"),
        (["--region", "02"], "unit: the user's unit is not a unit of the new region"),
        (["--no-unit"], "unit: clinic users need a unit [rule: required]"),
        (["--region", "99"], "region: region 99 not found [rule: known_id]"),
        (["--role", "admin", "--region", "01"], "region: admins have no region [rule: not_allowed]"),
        (["--role", "nurse"], "role: String should match pattern"),
        (["--unit", "U1", "--no-unit"], "unit: give --unit or --no-unit, not both"),
        ([], "nothing to change"),
    ]
    for args, message in cases:
        refused = _invoke(service, "set-scope", name, *args)
        assert refused.exit_code == 2 and message in refused.output, (args, refused.output)
        assert "Traceback" not in refused.output and refused.exception is not None  # typer's Exit, not a crash
        assert isinstance(refused.exception, SystemExit)
    unknown = _invoke(service, "set-scope", "nobody", "--role", "admin")
    assert unknown.exit_code == 2 and "user nobody not found [rule: known_id]" in unknown.output
    # Nothing changed: the scope and the token are as before.
    assert ok(_get(service, "/me", token))["unit"] == "U2"
    user = ok(service.call("admin", "GET", f"/users/{user_id}"))
    assert (user["role"], user["region"], user["unit"]) == ("clinic", "01", "U2")


def test_the_last_active_admin_cannot_be_demoted_from_the_command_line(service: Service) -> None:
    admins = [u for u in ok(service.call("admin", "GET", "/users", params={"role": "admin"}))["items"] if u["active"]]
    assert [u["username"] for u in admins] == ["admin"]  # the seeded admin is the only one
    refused = _invoke(service, "set-scope", "admin", "--role", "coordinator", "--region", "01")
    assert refused.exit_code == 2, refused.output
    assert "the last active admin cannot be demoted" in refused.output and "[rule: last-admin]" in refused.output
    assert ok(service.call("admin", "GET", "/me"))["role"] == "admin"
