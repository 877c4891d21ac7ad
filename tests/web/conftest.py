"""End-to-end fixtures: one real `vardmatch serve --demo` on a free 127.0.0.1 port and one headless Debian
Chromium (driven by Playwright) for the whole session; each test gets a fresh browser context (no cookies)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = os.environ.get("VARDMATCH_CHROMIUM", "/usr/bin/chromium")
WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
USERS = {
    "admin": "demo-admin-pass",
    "samordnare": "demo-coordinator-pass",
    "klinik": "demo-clinic-pass",
    "klinik2": "demo-clinic-pass",
}


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def demo_server(database_url: str, folder: Path) -> Iterator[str]:
    """`vardmatch serve --demo` on a free port and the given database; the one URL it prints."""
    port = free_port()
    env = {**os.environ, "VARDMATCH_ANALYSIS_SECONDS": "3", "VARDMATCH_ENVIRONMENT": "development"}
    command = [str(Path(sys.executable).parent / "vardmatch"), "serve", "--demo", "--port", str(port)]
    command += ["--database-url", database_url]
    log = folder / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield _wait_for_url(log, server)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo service as a user starts it, on its own SQLite file."""
    folder = tmp_path_factory.mktemp("web")
    with demo_server(f"sqlite:///{folder / 'demo.sqlite'}", folder) as url:
        yield url


def _wait_for_url(log: Path, server: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        urls = re.findall(r"http://[\w.]+:\d+\S*", log.read_text())
        if urls:
            try:
                if httpx.get(urls[0].rstrip("/") + "/healthz", timeout=2).status_code == 200:
                    return urls[0].rstrip("/")
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    raise AssertionError("the demo server did not start:\n" + log.read_text())


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (no sandbox: the tests run as root in CI)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page at the service's address."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    context.close()


def login(page: Page, username: str) -> None:
    """Log in through the form, as a person would."""
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", USERS[username])
    page.click("button[type=submit].primary")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()[:2000]


def check_accessible(page: Page) -> None:
    """axe-core finds no WCAG 2.1 A/AA violation on the page as it is now."""
    # After a click that navigates, the new document may not exist yet (axe then fails on a null document).
    page.wait_for_load_state("load")
    result = Axe().run(page, options=WCAG_21_AA)
    violations = result.response["violations"]
    detail = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:5]) for v in violations]
    assert result.violations_count == 0, f"{page.url}: {detail}"


def api_token(base_url: str, username: str) -> dict[str, str]:
    """Bearer headers of a user, from the API's own login."""
    answer = httpx.post(
        f"{base_url}/api/v1/auth/token", data={"username": username, "password": USERS[username]}, timeout=30
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def solved_round(base_url: str, headers: dict[str, str], time_limit: float = 3.0) -> dict[str, Any]:
    """Start a demo round through the API and wait until it is solved."""
    started = httpx.post(
        f"{base_url}/api/v1/regions/01/rounds",
        json={"time_limit_s": time_limit},
        headers={**headers, "Idempotency-Key": f"web-{time.monotonic_ns()}"},
        timeout=60,
    )
    assert started.status_code == 202, started.text
    round_id = started.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = httpx.get(f"{base_url}/api/v1/regions/01/rounds/{round_id}", headers=headers, timeout=30).json()
        if body["status"] not in ("queued", "solving"):
            assert body["status"] == "solved", body
            return dict(body)
        time.sleep(0.5)
    raise AssertionError(f"round {round_id} did not finish")


SCREENSHOTS = Path(os.environ.get("VARDMATCH_SCREENSHOTS", "")) if os.environ.get("VARDMATCH_SCREENSHOTS") else None


def screenshot(page: Page, name: str) -> None:
    """Save the page at desktop and mobile width when VARDMATCH_SCREENSHOTS names a folder (docs/screenshots)."""
    if SCREENSHOTS is None:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or {"width": 1280, "height": 900}
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=False)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / f"{name}-mobile.png"), full_page=False)
    page.set_viewport_size(size)
