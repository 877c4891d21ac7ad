"""The `vardmatch` command line. Each module registers its commands on the one Typer app (api/cli/common.py, with
what the commands share): engine.py (solve, demo, verify, explain, generate, schema), service.py (serve, worker),
privacy.py (retention), reports.py (why-not, prices, what-if, fairness, stable, analyse, outlook), users.py
(`users create`); `bench` is benchmarks/cli.py."""

from __future__ import annotations

from api.cli import engine, privacy, reports, service  # noqa: F401  (they register their commands on `app`)
from api.cli.common import app
from api.cli.users import users_app
from benchmarks.cli import bench_app

app.add_typer(bench_app, name="bench")
app.add_typer(users_app, name="users")

__all__ = ["app", "main"]


def main() -> None:
    """Entry point for `python -m api.cli`."""
    app(prog_name="vardmatch")
