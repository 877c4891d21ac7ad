"""The service's commands: `serve` (the HTTP service) and `worker` (a job worker on PostgreSQL)."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import app


@app.command()
def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="A fresh SQLite database with the demo region and users.")
    ] = False,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: VARDMATCH_DATABASE_URL or ./vardmatch.sqlite.")
    ] = None,
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs)."""
    from api.server import serve as run_server

    run_server(demo=demo, host=host, port=port, database_url=database_url)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Jobs at once.")] = 1,
    queues: Annotated[
        str, typer.Option("--queues", help="Comma-separated: solver (rounds, what-ifs, ...), background (reports).")
    ] = "solver,background",
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: VARDMATCH_DATABASE_URL (PostgreSQL).")
    ] = None,
) -> None:
    """Take solver jobs from the PostgreSQL queue until SIGTERM (start any number, on any machine)."""
    from api.core.settings import Settings
    from api.jobs.worker import run_worker

    settings = Settings() if database_url is None else Settings(database_url=database_url)
    run_worker(settings, concurrency, [q for q in queues.split(",") if q])
