"""Running the service with uvicorn: `serve(demo, host, port, database_url)`."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from pathlib import Path

import uvicorn

from api.app import create_app
from api.core import logs
from api.core.demo import DEMO_FILE, DEMO_USERS, load_demo
from api.core.settings import Environment, Settings
from models.db import make_engine, make_sessionmaker, transaction
from models.migrate import upgrade


def prepare_database(settings: Settings, demo: bool) -> dict[str, int] | None:
    """Migrate the database to the newest schema and, for the demo, load the demo region."""
    upgrade(settings.database_url)
    if not demo:
        return None
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            return load_demo(session)
    finally:
        engine.dispose()


def demo_settings(database_url: str | None) -> Settings:
    """Settings for a demo: development mode and a fresh SQLite file unless a URL is given."""
    settings = Settings()
    if settings.environment is Environment.PRODUCTION:
        raise SystemExit("refusing to run the demo with VARDMATCH_ENVIRONMENT=production")
    if database_url is None:
        folder = Path(tempfile.mkdtemp(prefix="vardmatch-demo-"))
        database_url = f"sqlite:///{folder / 'demo.sqlite'}"
    # The demo region is built for one day (its programmes' windows, its offers' starts): its rounds decide for it.
    # Tokens of a demo are signed with a secret of its own process (unless one is configured): they end with it.
    update = {"database_url": database_url, "default_round_date": demo_round_date(), "secret_per_process": True}
    return settings.model_copy(update=update)


def demo_round_date() -> date:
    """The date the demo region is built for."""
    return date.fromisoformat(json.loads(DEMO_FILE.read_bytes())["round_date"])


def login_help(host: str, port: int) -> str:
    """Where and how to log in to the demo."""
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1") else host
    lines = [
        f"Vårdmatch demo: open http://{shown}:{port} and log in as:",
    ]
    for username, password, role, unit in DEMO_USERS:
        scope = f"unit {unit}" if unit else ("region 01" if role.value == "coordinator" else "everything")
        lines.append(f"  {username:<12} {password:<24} {role.value} ({scope})")
    lines.append("Region 01 (Region Stockholm) holds the demo units, offers, candidates and programmes.")
    lines.append("The API is under /api/v1 (tokens: POST /api/v1/auth/token); its documentation is at /docs.")
    lines.append(f"Rounds decide for the demo's date, {demo_round_date()}, unless they name a round_date.")
    return "\n".join(lines)


def serve(demo: bool, host: str = "127.0.0.1", port: int = 8000, database_url: str | None = None) -> None:
    """Migrate, optionally load the demo, and serve the API with uvicorn until stopped."""
    if demo:
        settings = demo_settings(database_url)
        if settings.workers is None:
            # The demo works on its own whatever the database: on PostgreSQL too it runs two workers itself.
            settings = settings.model_copy(update={"workers": 2})
    else:
        settings = Settings() if database_url is None else Settings(database_url=database_url)
    # The solver processes read the same settings from the environment.
    os.environ["VARDMATCH_DATABASE_URL"] = settings.database_url
    prepare_database(settings, demo)
    if demo:
        print(login_help(host, port), flush=True)
    logs.configure(fmt=settings.log_format)
    app = create_app(settings)
    print(f"Access tokens are signed with {app.state.signing.where}.", flush=True)
    if settings.trusted_proxies:
        proxies = ", ".join(str(p) for p in settings.trusted_proxies)
        print(f"X-Forwarded-For is believed from {proxies} only.", flush=True)
    # uvicorn would believe X-Forwarded-For from 127.0.0.1 by itself; the app reads it from trusted proxies only.
    # uvicorn's own log setup is skipped: its records go through the root logger, as JSON lines with request ids.
    uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=False, timeout_graceful_shutdown=30)
