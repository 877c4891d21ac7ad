"""A bounded load test of the service: readers at N concurrent users, first alone (the baseline), then while a round
solves and imports run, against a real server process on 127.0.0.1 with the demo region, on SQLite or PostgreSQL.

Everything stops by itself: each phase has a deadline, the round is cancelled if it still solves, the server is
stopped and a PostgreSQL database made for the run is dropped.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

from models.db import normalise_url

HOST = "127.0.0.1"
REGION = "/api/v1/regions/01"
ROUND_DATE = "2027-01-15"  # the demo region's date
# (name, user, path): what readers ask for; `{offset}` is a random page, `{round}` the round solving meanwhile.
READS: tuple[tuple[str, str, str], ...] = (
    ("candidates page", "samordnare", REGION + "/candidates?limit=50&offset={offset}"),
    ("offers page", "samordnare", REGION + "/offers?limit=50&offset={offset}"),
    ("clinic offers", "klinik", REGION + "/offers?limit=50"),
    ("round", "samordnare", REGION + "/rounds/{round}"),
    ("health", "", "/healthz"),
)
PASSWORDS = {"samordnare": "demo-coordinator-pass", "klinik": "demo-clinic-pass"}
PAGED = ("candidates page", "offers page", "clinic offers")


@dataclass
class LoadSettings:
    """One run's shape."""

    database_url: str | None = None  # None: a fresh SQLite file; postgresql://...: a database made on that server
    users: int = 20
    seconds: float = 30.0  # of each phase
    think_s: float = 0.1  # pause of a reader between two requests
    import_rows: int = 2_000  # candidates per import; imports follow one another through the loaded phase
    round_seconds: float = 30.0  # the round's solver time limit
    seed: int = 0


@dataclass
class Sample:
    """One request: phase, what, seconds, status (0: no answer)."""

    phase: str
    name: str
    seconds: float
    status: int


@dataclass
class LoadReport:
    """Samples of both phases and what ran in the background."""

    backend: str
    settings: LoadSettings
    samples: list[Sample] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)
    round: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """Per phase and request kind (and all paged lists together): count, errors, p50, p99, max in ms."""
        out = []
        for phase in ("baseline", "loaded"):
            groups: dict[str, list[Sample]] = {}
            for s in self.samples:
                if s.phase == phase:
                    groups.setdefault(s.name, []).append(s)
                    if s.name in PAGED:
                        groups.setdefault("all paged lists", []).append(s)
            for name, samples in groups.items():
                out.append({"backend": self.backend, "phase": phase, "request": name, **_stats(samples)})
        return out


def _stats(samples: list[Sample]) -> dict[str, Any]:
    ms = sorted(s.seconds * 1000 for s in samples)
    errors = sum(1 for s in samples if not 200 <= s.status < 300)
    return {"count": len(ms), "errors": errors, "p50_ms": _quantile(ms, 0.5), "p99_ms": _quantile(ms, 0.99),
            "max_ms": ms[-1] if ms else 0.0}  # fmt: skip


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[round(q * 100) - 1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    """A database for the run: a fresh SQLite file, or a new database on the PostgreSQL server, dropped after."""
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="vardmatch-load-") as folder:
            yield url or f"sqlite:///{Path(folder) / 'load.sqlite'}"
        return
    name = f"vardmatch_load_{uuid.uuid4().hex[:12]}"
    server = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@contextmanager
def _server(url: str) -> Iterator[str]:
    """`vardmatch serve --demo` on the database and a free port of 127.0.0.1 (the demo region and its users; rounds
    decide for the demo's date), stopped after."""
    port = _free_port()
    command = [sys.executable, "-m", "api.cli", "serve", "--demo", "--host", HOST, "--port", str(port)]
    # One worker of the service's own (on PostgreSQL too, where `serve` starts none unless asked): the round solving
    # meanwhile is the load.
    env = {**os.environ, "VARDMATCH_ANALYSIS_SECONDS": "0", "VARDMATCH_WORKERS": "1"}
    process = subprocess.Popen(
        [*command, "--database-url", url], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _tokens(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    headers = {"": {}}
    for user, password in PASSWORDS.items():
        r = await client.post("/api/v1/auth/token", data={"username": user, "password": password})
        r.raise_for_status()
        headers[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return headers


async def _reader(
    client: httpx.AsyncClient, headers: dict[str, dict[str, str]], phase: str, until: float, state: dict[str, Any],
    rng: random.Random, settings: LoadSettings, samples: list[Sample],
) -> None:  # fmt: skip
    while time.monotonic() < until:
        name, user, path = rng.choice(READS)
        if name == "round" and "round" not in state:
            continue
        url = path.format(offset=rng.randrange(0, 300, 50), round=state.get("round"))
        start = time.perf_counter()
        try:
            status = (await client.get(url, headers=headers[user])).status_code
        except httpx.HTTPError:
            status = 0
        samples.append(Sample(phase, name, time.perf_counter() - start, status))
        await asyncio.sleep(settings.think_s)


# A ready physician waiting in Stockholm: what each imported row holds but its id.
IMPORT_ROW = {
    "profession": "physician", "cefr": "C1", "language_proof": "svenska_3", "residence_county": "01",
    "residence_municipality": "0180", "specialty": "allmänmedicin", "available_from": "2027-01-01",
    "ready_since": "2026-02-01", "ladder.education_assessed": "2024-01-10", "ladder.practical_test": "2025-09-10",
    "ladder.ptj_decision": "2026-01-10", "ladder.special_authorisation": "granted",
}  # fmt: skip


def _import_file(batch: int, rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", *IMPORT_ROW])
    writer.writeheader()
    for i in range(rows):
        writer.writerow({"id": f"LOAD{batch:03d}-{i:05d}", **IMPORT_ROW})
    return out.getvalue().encode()


async def _importer(
    client: httpx.AsyncClient, headers: dict[str, str], until: float, settings: LoadSettings, out: list[dict[str, Any]]
) -> None:
    for batch in itertools.count():
        if time.monotonic() >= until:
            return
        content = _import_file(batch, settings.import_rows)
        start = time.perf_counter()
        r = await client.post(
            REGION + "/candidates/import", headers=headers, files={"file": ("load.csv", content)}, timeout=600
        )
        out.append({"rows": settings.import_rows, "seconds": time.perf_counter() - start, "status": r.status_code})


async def _round(client: httpx.AsyncClient, headers: dict[str, str], settings: LoadSettings) -> dict[str, Any]:
    body = {"name": "load test", "round_date": ROUND_DATE, "time_limit_s": settings.round_seconds}
    r = await client.post(REGION + "/rounds", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    r.raise_for_status()
    return {"id": r.json()["id"], "started": time.monotonic()}


async def _run(base: str, backend: str, settings: LoadSettings) -> LoadReport:
    report = LoadReport(backend, settings)
    rng = random.Random(settings.seed)
    limits = httpx.Limits(max_connections=settings.users + 4)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        headers = await _tokens(client)
        for phase in ("baseline", "loaded"):
            state: dict[str, Any] = {}
            until = time.monotonic() + settings.seconds
            background = []
            if phase == "loaded":
                started = await _round(client, headers["samordnare"], settings)
                state["round"] = started["id"]
                background.append(_importer(client, headers["samordnare"], until, settings, report.imports))
            readers = [
                _reader(client, headers, phase, until, state, random.Random(rng.random()), settings, report.samples)
                for _ in range(settings.users)
            ]
            await asyncio.gather(*readers, *background)
            if phase == "loaded":
                report.round = await _finish_round(client, headers["samordnare"], started)
    return report


async def _finish_round(client: httpx.AsyncClient, headers: dict[str, str], started: dict[str, Any]) -> dict[str, Any]:
    """The round's status at the end of the phase; cancelled if it still solves (the run stops by itself)."""
    url = f"{REGION}/rounds/{started['id']}"
    row = (await client.get(url, headers=headers)).json()
    if row["status"] in ("queued", "solving"):
        await client.post(url + "/cancel", headers=headers)
        return {"status": "solving at the end (cancelled)", "seconds": None}
    return {"status": row["status"], "placements": (row.get("result") or {}).get("placements")}


def run_load(settings: LoadSettings) -> LoadReport:
    """One bounded run: set up, baseline phase, loaded phase, tear down."""
    backend = "sqlite" if settings.database_url is None or settings.database_url.startswith("sqlite") else "postgresql"
    with _database(settings.database_url) as url, _server(url) as base:
        return asyncio.run(_run(base, backend, settings))


def markdown(reports: list[LoadReport]) -> str:
    """The runs as markdown tables: latency per phase and request, with the loaded phase against the baseline."""
    lines = [
        "| backend | phase | request | count | errors | p50 ms | p99 ms | max ms | p99 vs baseline |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for report in reports:
        rows = report.rows()
        base = {r["request"]: r for r in rows if r["phase"] == "baseline"}
        for r in rows:
            ratio = "—"
            if r["phase"] == "loaded" and base.get(r["request"], {}).get("p99_ms"):
                ratio = f"{r['p99_ms'] / base[r['request']]['p99_ms']:.2f}x"
            lines.append(
                f"| {r['backend']} | {r['phase']} | {r['request']} | {r['count']:,} | {r['errors']} | "
                f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {ratio} |"
            )
    lines += ["", "| backend | imports (rows each) | import seconds (mean, max) | import errors | round |",
              "| --- | ---: | ---: | ---: | --- |"]  # fmt: skip
    for report in reports:
        seconds = [i["seconds"] for i in report.imports]
        errors = sum(1 for i in report.imports if i["status"] != 200)
        timing = f"{statistics.mean(seconds):.2f}, {max(seconds):.2f}" if seconds else "—"
        placed = report.round.get("placements")
        round_text = report.round.get("status", "—") + (f", {placed} placed" if placed is not None else "")
        lines.append(
            f"| {report.backend} | {len(report.imports)} ({report.settings.import_rows:,}) | {timing} | {errors} | "
            f"{round_text} |"
        )
    return "\n".join(lines)


def verdict(report: LoadReport) -> list[str]:
    """The targets, checked: no errors, and the p99 of the paged lists under load below 300 ms."""
    rows = {(r["phase"], r["request"]): r for r in report.rows()}
    paged = rows.get(("loaded", "all paged lists"), {})
    errors = sum(r["errors"] for r in rows.values())
    return [
        f"{report.backend}: {errors} failed request(s)",
        f"{report.backend}: p99 of a paged list while a round solves and imports run: "
        f"{paged.get('p99_ms', 0):.0f} ms ({'met' if paged.get('p99_ms', 1e9) < 300 else 'missed'}: target < 300 ms)",
    ]
