"""Service settings, read from the environment (prefix VARDMATCH_)."""

from __future__ import annotations

import enum
from datetime import date
from ipaddress import IPv4Network, IPv6Network

from croniter import croniter
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32


class Environment(enum.StrEnum):
    """Where the service runs."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything configurable about the service."""

    model_config = SettingsConfigDict(env_prefix="VARDMATCH_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite:///./vardmatch.sqlite"
    secret_key: str | None = Field(
        default=None,
        repr=False,
        description="signs access tokens; unset: a random secret kept in the database (table signing_secret)",
    )
    secret_per_process: bool = Field(
        default=False, description="sign with a random secret made at startup and kept in memory only (the demo)"
    )
    token_minutes: int = Field(default=60, ge=1, le=24 * 60)
    login_failures_allowed: int = Field(
        default=10, ge=1, description="failed logins per client address per window (over it: one try per account)"
    )
    login_account_failures_allowed: int = Field(
        default=5, ge=1, description="failed logins per account per window (over it: one try per new address)"
    )
    login_window_s: float = Field(default=60.0, gt=0)
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default=[], description="addresses of reverse proxies whose X-Forwarded-For is believed"
    )
    max_time_limit_s: float = Field(default=120.0, gt=0, description="most solver time a round may ask for")
    round_date_years: int = Field(default=10, ge=1, le=100, description="a round's date is at most this far from today")
    default_round_date: date | None = Field(default=None, description="a round's date when it names none (demo)")
    lease_s: float = Field(default=15.0, gt=0, description="a solving round whose heartbeat is older is failed")
    solver_nice: int = Field(default=10, ge=0, le=19, description="how much a solver process yields to the service")
    max_body_bytes: int = Field(default=1_000_000, ge=1, description="most bytes of a request body (but uploads)")
    max_upload_bytes: int = Field(default=5_000_000, ge=1, description="most bytes of an uploaded file")
    max_unpacked_bytes: int = Field(default=50_000_000, ge=1, description="most an XLSX upload may unpack to")
    max_import_rows: int = Field(default=20_000, ge=1, description="most data rows of one import")
    idempotency_ttl_h: float = Field(default=24.0, gt=0)
    analysis_seconds: float = Field(
        default=60.0, ge=0, description="time after solving for fairness, prices and why-not re-solves (0: skip)"
    )
    solver_start_delay_s: float = Field(
        default=0.0, ge=0, description="testing only: jobs queued meanwhile wait this long before solving"
    )
    docs: bool = True
    # Jobs (api/jobs): who runs them and how a lost run is noticed.
    workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="solver jobs `serve` runs itself at once (default: 2 on SQLite, 0 on PostgreSQL, where "
        "`vardmatch worker` processes run them)",
    )
    job_max_attempts: int = Field(default=3, ge=1, le=10, description="runs of a job whose worker is lost")
    worker_heartbeat_s: float = Field(default=2.0, gt=0, description="how often a worker says it is alive")
    worker_stalled_s: float = Field(
        default=15.0, gt=0, description="a worker (or a job's process) silent this long is lost: its job is retried"
    )
    shutdown_grace_s: float = Field(
        default=60.0, ge=0, description="on SIGTERM, how long running jobs may finish before they are handed back"
    )
    log_format: str = Field(default="json", pattern="^(json|text)$")
    retention_cron: str = Field(
        default="30 2 * * *",
        description="when retention runs as a job (cron, UTC; empty: never): a procrastinate periodic task on "
        "PostgreSQL, the pool `serve` starts on SQLite",
    )

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"VARDMATCH_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters (or unset)")
        return value

    @field_validator("retention_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value.strip() and not croniter.is_valid(value):
            raise ValueError(f"VARDMATCH_RETENTION_CRON: {value!r} is not a cron expression (e.g. '30 2 * * *')")
        return value.strip()
