"""`vardmatch users create`: the first admin of a plain install, made from the command line, can log in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner, Result

from api.cli import app
from tests.service.conftest import start_service

PASSWORD = "first-admin-password"


def users_create(url: str, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    """The command in a child process with the password piped on standard input, as a script would."""
    command = [sys.executable, "-m", "api.cli", "users", "create", *args, "--database-url", url]
    return subprocess.run(command, input=password + "\n", capture_output=True, text=True, timeout=120)


def test_a_plain_install_gets_its_first_admin_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    made = users_create(url, "chief", "--role", "admin")
    assert made.returncode == 0, made.stderr
    assert "created admin chief" in made.stdout and PASSWORD not in made.stdout + made.stderr
    service, server, thread = start_service(url)
    try:
        with httpx.Client(base_url=service.base_url + "/api/v1", timeout=30) as client:
            token = client.post("/auth/token", data={"username": "chief", "password": PASSWORD})
            assert token.status_code == 200, token.text
            me = client.get("/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}).json()
            assert (me["username"], me["role"], me["region"]) == ("chief", "admin", None)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        service.app.state.engine.dispose()
    twice = users_create(url, "chief", "--role", "admin")
    assert twice.returncode == 2 and "user chief exists" in twice.stderr


def test_bad_users_are_refused_with_the_field(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"

    def invoke(*args: str, password: str = PASSWORD) -> Result:
        return CliRunner().invoke(app, ["users", "create", *args, "--database-url", url], input=password + "\n")

    short = invoke("chief", password="short")
    assert short.exit_code == 2 and "password" in short.output
    nowhere = invoke("coord", "--role", "coordinator", "--region", "99")
    assert nowhere.exit_code == 2 and "region 99 not found" in nowhere.output
    no_region = invoke("coord", "--role", "coordinator")
    assert no_region.exit_code == 2 and "region: required for this role" in no_region.output
