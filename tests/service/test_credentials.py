"""Credentials: no signing secret in the code, login limits per account and per address (proxies trusted only when
configured), and a password change that revokes every token and API key issued before it."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import select

from api.core.security import ALGORITHM, client_address
from api.core.settings import Settings
from api.core.signing import Signing
from api.server import demo_settings
from models import SigningSecret
from models.base import utcnow
from models.db import make_engine, make_sessionmaker
from models.migrate import upgrade
from tests.service.conftest import PASSWORD, Service, free_port, start_service
from tests.service.helpers import ok

# The secret the source carried until issue 13: whatever it signs must be refused everywhere.
OLD_SOURCE_SECRET = "insecure-development-secret-change-me"
_users = itertools.count(1)


def _forged(user_id: int, secret: str, **extra: object) -> dict[str, str]:
    claims = {"sub": str(user_id), "ver": 0, "exp": utcnow() + timedelta(minutes=5), "typ": "access", **extra}
    return {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm=ALGORITHM)}


def _new_user(service: Service, role: str = "coordinator") -> tuple[str, int]:
    name = f"cred-user-{next(_users)}"
    body = {"username": name, "password": PASSWORD, "role": role, "region": "01"}
    return name, ok(service.call("admin", "POST", "/users", json=body), 201)["id"]


def _login(service: Service, username: str, password: str = PASSWORD, via: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": via} if via else {}
    with httpx.Client(base_url=service.base_url + "/api/v1", timeout=30) as client:
        return client.post("/auth/token", data={"username": username, "password": password}, headers=headers)


def _get(service: Service, path: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=service.base_url + "/api/v1", timeout=30) as client:
        return client.get(path, headers=headers)


# ------------------------------------------------------------------------------------------- the signing secret


def test_no_secret_in_the_code() -> None:
    assert Settings().secret_key is None
    with pytest.raises(ValueError, match="at least 32"):
        Settings(secret_key="too-short")


def test_a_token_signed_with_the_old_source_secret_is_refused(service: Service) -> None:
    admin_id = ok(service.call("admin", "GET", "/me"))["id"]
    for extra in ({}, {"ver": None}):
        assert _get(service, "/me", _forged(admin_id, OLD_SOURCE_SECRET, **extra)).status_code == 401


def test_the_secret_is_random_and_kept_with_the_data(service: Service) -> None:
    engine = make_engine(service.url)
    with make_sessionmaker(engine)() as session:
        stored = session.scalars(select(SigningSecret.secret)).all()
    engine.dispose()
    assert len(stored) == 1 and len(stored[0]) >= 64
    admin_id = ok(service.call("admin", "GET", "/me"))["id"]
    # Tokens are signed with the stored secret, and another server of the same database (a restart) accepts them.
    assert _get(service, "/me", _forged(admin_id, stored[0])).status_code == 200
    again, server, thread = start_service(service.url)
    try:
        assert _get(again, "/me", {"Authorization": f"Bearer {service.token('admin')}"}).status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        again.app.state.engine.dispose()


def test_each_database_makes_its_own_secret(tmp_path: Path) -> None:
    secrets = set()
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.sqlite"
        upgrade(url)
        engine = make_engine(url)
        with make_sessionmaker(engine)() as session:
            session.query(SigningSecret).delete()  # a lost row is made again, not replaced by a constant
            session.commit()
        signing = Signing(Settings(database_url=url), make_sessionmaker(engine))
        secrets.add(signing.secret())
        assert "signing_secret" in signing.where
        engine.dispose()
    assert len(secrets) == 2 and all(len(s) >= 64 for s in secrets)


def test_the_demo_signs_with_a_secret_of_its_own_process(tmp_path: Path) -> None:
    settings = demo_settings(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    first, second = (Signing(settings, make_sessionmaker(make_engine(settings.database_url))) for _ in range(2))
    assert first.secret() != second.secret() and "this process" in first.where


@contextmanager
def _serve(args: list[str], tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Run `vardmatch serve`, yield its base URL and startup output once it answers, then stop it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VARDMATCH_")}
    command = [str(Path(sys.executable).parent / "vardmatch"), "serve", "--port", str(port), *args]
    output = tmp_path / "serve.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, output.read_text()
            time.sleep(0.1)
        yield base, output.read_text()
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize("demo", [False, True])
def test_serve_says_where_the_secret_lives_and_refuses_the_old_one(demo: bool, tmp_path: Path) -> None:
    args = ["--demo"] if demo else ["--database-url", f"sqlite:///{tmp_path / 'plain.sqlite'}"]
    with _serve(args, tmp_path) as (base, output):
        expected = "made for this process" if demo else "kept in the database, table signing_secret"
        assert f"Access tokens are signed with a random secret {expected}" in output
        assert httpx.get(base + "/api/v1/me", headers=_forged(1, OLD_SOURCE_SECRET)).status_code == 401


# ------------------------------------------------------------------------------------------------ login limits


def test_client_address_believes_forwarded_for_only_from_trusted_proxies() -> None:
    proxies = [ip_network("10.9.0.0/16"), ip_network("127.0.0.1/32")]
    assert client_address("192.0.2.7", ["198.51.100.1"], proxies) == "192.0.2.7"
    assert client_address("127.0.0.1", ["198.51.100.1"], proxies) == "198.51.100.1"
    # What the client wrote itself stands left of what the proxies appended, and is never reached.
    assert client_address("127.0.0.1", ["203.0.113.9, 198.51.100.1, 10.9.3.4"], proxies) == "198.51.100.1"
    assert client_address("127.0.0.1", ["203.0.113.9", "198.51.100.1"], proxies) == "198.51.100.1"
    assert client_address("127.0.0.1", ["not-an-address"], proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", [], proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", ["198.51.100.1"], []) == "127.0.0.1"


@pytest.fixture()
def behind_proxy(service: Service) -> Iterator[Service]:
    """A second server of the same database that trusts 127.0.0.1 as its proxy (test limits: 5 per address)."""
    proxied, server, thread = start_service(service.url, trusted_proxies=["127.0.0.1"])
    yield proxied
    server.should_exit = True
    thread.join(timeout=20)
    proxied.app.state.engine.dispose()


def test_forwarded_for_gets_no_fresh_bucket_without_a_trusted_proxy(service: Service) -> None:
    service.app.state.login_limiter.clear()
    codes = [_login(service, "clinic_u2", "wrong", via=f"198.51.100.{i}").status_code for i in range(7)]
    assert codes == [401] * 5 + [429] * 2
    refused = _login(service, "clinic_u2", "wrong", via="203.0.113.200")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    service.app.state.login_limiter.clear()


def test_an_address_is_limited_on_an_account_even_with_the_right_password(behind_proxy: Service) -> None:
    codes = [_login(behind_proxy, "coord01", "wrong", via="192.0.2.10").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    assert _login(behind_proxy, "coord01", via="192.0.2.10").status_code == 429  # its own failures
    # Another address is not locked out by these: the right password gets in.
    assert _login(behind_proxy, "coord01", via="192.0.2.11").status_code == 200


def test_an_attacked_account_gives_each_address_one_guess_and_its_owner_gets_in(behind_proxy: Service) -> None:
    assert [_login(behind_proxy, "admin", "wrong", via=f"192.0.2.{20 + i}").status_code for i in range(5)] == [401] * 5
    assert _login(behind_proxy, "admin", "wrong", via="192.0.2.20").status_code == 429
    assert _login(behind_proxy, "admin", "wrong", via="192.0.2.30").status_code == 401
    assert _login(behind_proxy, "admin", "wrong", via="192.0.2.30").status_code == 429
    assert _login(behind_proxy, "admin", via="192.0.2.31").status_code == 200


def test_a_failing_address_gets_one_guess_per_account_and_a_colleague_there_gets_in(behind_proxy: Service) -> None:
    nat = "192.0.2.40"  # one hospital network: many people behind one address
    assert [_login(behind_proxy, f"nobody-{i}", "wrong", via=nat).status_code for i in range(5)] == [401] * 5
    assert _login(behind_proxy, "nobody-0", "wrong", via=nat).status_code == 429
    assert _login(behind_proxy, "nobody-9", "wrong", via=nat).status_code == 401
    assert _login(behind_proxy, "nobody-9", "wrong", via=nat).status_code == 429
    assert _login(behind_proxy, "admin", via=nat).status_code == 200
    # What a client writes left of the proxy's own entry never changes its bucket.
    assert _login(behind_proxy, "nobody-0", "wrong", via=f"203.0.113.5, {nat}").status_code == 429


# ------------------------------------------------------------------------------- password changes and API keys


def test_an_admin_password_change_revokes_tokens_and_api_keys(service: Service) -> None:
    name, user_id = _new_user(service)
    token = ok(_login(service, name))["access_token"]
    key = ok(service.call(name, "POST", "/me/api-keys", params={"name": "script"}), 201)["key"]
    bystander = service.token("coord01")
    assert _get(service, "/me", {"X-API-Key": key}).status_code == 200
    ok(service.call("admin", "PATCH", f"/users/{user_id}", json={"password": "a-brand-new-password"}))
    assert _get(service, "/me", {"Authorization": f"Bearer {token}"}).status_code == 401
    assert _get(service, "/me", {"X-API-Key": key}).status_code == 401
    assert _get(service, "/me", {"Authorization": f"Bearer {bystander}"}).status_code == 200
    assert _login(service, name).status_code == 401
    fresh = ok(_login(service, name, "a-brand-new-password"))["access_token"]
    assert ok(_get(service, "/me", {"Authorization": f"Bearer {fresh}"}))["username"] == name


def test_a_deactivated_user_cannot_log_in_and_their_tokens_and_keys_stop_for_good(service: Service) -> None:
    name, user_id = _new_user(service)
    token = ok(_login(service, name))["access_token"]
    key = ok(service.call(name, "POST", "/me/api-keys", params={"name": "script"}), 201)["key"]
    deactivated = ok(service.call("admin", "PATCH", f"/users/{user_id}", json={"active": False}))
    assert deactivated["active"] is False
    assert _login(service, name).status_code == 401
    assert _get(service, "/me", {"Authorization": f"Bearer {token}"}).status_code == 401
    assert _get(service, "/me", {"X-API-Key": key}).status_code == 401
    assert ok(service.call("admin", "PATCH", f"/users/{user_id}", json={"active": True}))["active"] is True
    # Reactivated: a new login works, but what was issued before the deactivation stays dead.
    fresh = ok(_login(service, name))["access_token"]
    assert ok(_get(service, "/me", {"Authorization": f"Bearer {fresh}"}))["username"] == name
    assert _get(service, "/me", {"Authorization": f"Bearer {token}"}).status_code == 401
    assert _get(service, "/me", {"X-API-Key": key}).status_code == 401
    admin_id = ok(service.call("admin", "GET", "/me"))["id"]
    refused = service.call("admin", "PATCH", f"/users/{admin_id}", json={"active": False})
    assert refused.status_code == 409 and refused.json()["type"].endswith("self-deactivation")
    assert service.call("coord01", "PATCH", f"/users/{user_id}", json={"active": False}).status_code == 403


def test_changing_ones_own_password(service: Service) -> None:
    name, _ = _new_user(service, "admin")
    old = {"Authorization": "Bearer " + ok(_login(service, name))["access_token"]}
    key = ok(service.call(name, "POST", "/me/api-keys", params={"name": "cron"}), 201)["key"]
    with httpx.Client(base_url=service.base_url + "/api/v1", headers=old, timeout=30) as client:
        wrong = client.post("/me/password", json={"current_password": "nope", "new_password": "another-long-one"})
        assert wrong.status_code == 422
        assert [e["field"] for e in wrong.json()["errors"]] == ["current_password"]
        short = client.post("/me/password", json={"current_password": PASSWORD, "new_password": "short"})
        assert short.status_code == 422 and short.json()["errors"][0]["field"] == "new_password"
        changed = ok(client.post("/me/password", json={"current_password": PASSWORD, "new_password": "another-one!"}))
    new = {"Authorization": f"Bearer {changed['access_token']}"}
    assert _get(service, "/me", old).status_code == 401
    assert _get(service, "/me", {"X-API-Key": key}).status_code == 401
    assert ok(_get(service, "/me", new))["username"] == name
    keys = ok(_get(service, "/me/api-keys", new))
    assert [k["name"] for k in keys] == ["cron"] and keys[0]["revoked_at"] is not None


def test_listing_and_revoking_ones_api_keys(service: Service) -> None:
    name, _ = _new_user(service)
    created = [ok(service.call(name, "POST", "/me/api-keys", params={"name": n}), 201) for n in ("a", "b")]
    other = ok(service.call("coord01", "POST", "/me/api-keys", params={"name": "theirs"}), 201)
    listed = service.call(name, "GET", "/me/api-keys")
    keys = ok(listed)
    assert [(k["id"], k["name"], k["revoked_at"]) for k in keys] == [(c["id"], c["name"], None) for c in created]
    for key in keys:
        assert set(key) == {"id", "name", "prefix", "created_at", "revoked_at"}
    # Never a key's secret part (nor its hash), and never another user's key.
    assert not any(c["key"].split("_", 2)[2] in listed.text for c in created)
    assert other["key"].split("_", 2)[1] not in listed.text
    first = created[0]
    revoked = ok(service.call(name, "DELETE", f"/me/api-keys/{first['id']}"))
    assert revoked["revoked_at"] is not None
    assert _get(service, "/me", {"X-API-Key": first["key"]}).status_code == 401
    assert _get(service, "/me", {"X-API-Key": created[1]["key"]}).status_code == 200
    assert ok(service.call(name, "DELETE", f"/me/api-keys/{first['id']}"))["revoked_at"] == revoked["revoked_at"]
    assert service.call(name, "DELETE", f"/me/api-keys/{other['id']}").status_code == 404
    assert _get(service, "/me", {"X-API-Key": other["key"]}).status_code == 200


def test_revealing_an_identity_needs_a_purpose(service: Service) -> None:
    path = "/regions/01/candidates/CAND-A/identity"
    for params in ({"reveal": True}, {"reveal": True, "purpose": "   "}):
        r = service.call("coord01", "GET", path, params=params)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"] == [{"field": "purpose", "message": "required when reveal=true", "type": "required"}]
    assert ok(service.call("coord01", "GET", path))["masked"] is True
    assert ok(service.call("coord01", "GET", path, params={"reveal": True, "purpose": "contract"}))["masked"] is False
