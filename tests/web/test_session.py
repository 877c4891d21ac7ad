"""Web sessions follow the API's credential rules: a password change ends every session started before it, and a
session cookie signed with a secret that is not the service's is refused."""

from __future__ import annotations

import secrets

import httpx
import jwt

API = "/api/v1"


def _web_login(client: httpx.Client, username: str, password: str) -> None:
    """Log a browser-like client in through the login form (with its CSRF token)."""
    client.get("/login")
    answer = client.post("/login", data={"username": username, "password": password, "csrf": client.cookies["vm_csrf"]})
    assert answer.status_code == 303, answer.text
    assert "vm_session" in client.cookies


def _token(base_url: str, username: str, password: str) -> str:
    answer = httpx.post(f"{base_url}{API}/auth/token", data={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _new_coordinator(base_url: str) -> tuple[str, str]:
    admin = _token(base_url, "admin", "demo-admin-pass")
    username, password = f"web-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    body = {"username": username, "password": password, "role": "coordinator", "region": "01"}
    made = httpx.post(f"{base_url}{API}/users", json=body, headers={"Authorization": f"Bearer {admin}"})
    assert made.status_code == 201, made.text
    return username, password


def test_a_password_change_ends_earlier_web_sessions(base_url: str) -> None:
    username, password = _new_coordinator(base_url)
    with httpx.Client(base_url=base_url, follow_redirects=False) as browser:
        _web_login(browser, username, password)
        assert browser.get("/regions/01").status_code == 200
        _change_password(base_url, username, password)
        after = browser.get("/regions/01")
    assert after.status_code in (302, 303) and after.headers["location"].startswith("/login")


def _change_password(base_url: str, username: str, password: str) -> None:

    token = _token(base_url, username, password)
    changed = httpx.post(
        f"{base_url}{API}/me/password",
        json={"current_password": password, "new_password": secrets.token_urlsafe(16)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert changed.status_code == 200, changed.text


def test_a_session_signed_with_another_secret_is_refused(base_url: str) -> None:
    forged = jwt.encode(
        {"sub": "1", "ver": 0, "exp": 4102444800, "typ": "web"}, secrets.token_urlsafe(48), algorithm="HS256"
    )
    with httpx.Client(base_url=base_url, follow_redirects=False, cookies={"vm_session": forged}) as client:
        answer = client.get("/")
    assert answer.status_code in (302, 303) and answer.headers["location"] == "/login"


def test_a_body_past_the_limit_is_refused_with_a_page_on_pages_and_problem_json_on_the_api(base_url: str) -> None:
    big = {"username": "x" * 2_000_000, "password": "y", "csrf": "z"}
    page = httpx.post(f"{base_url}/login", data=big, timeout=60)
    assert page.status_code == 413 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="sv">' in page.text and "1000000" in page.text
    api = httpx.post(f"{base_url}{API}/auth/token", data=big, timeout=60)
    assert api.status_code == 413 and api.headers["content-type"] == "application/problem+json"
