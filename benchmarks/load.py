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
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.scratch import scratch_database

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
# idle: one reader alone (what a request costs on this machine right now, the yardstick for the others); baseline:
# N readers; loaded: N readers while a round solves and imports run.
PHASES = ("idle", "baseline", "loaded")


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
    # Serve the code of another checkout (e.g. `git archive main` unpacked), to measure before and after in one run.
    source: Path | None = None
    code: str = "this"  # how reports name the code served


@dataclass
class Sample:
    """One request: phase, what, seconds, status (0: no answer, `error` says why)."""

    phase: str
    name: str
    seconds: float
    status: int
    error: str = ""


@dataclass
class LoadReport:
    """Samples of both phases and what ran in the background."""

    backend: str
    settings: LoadSettings
    samples: list[Sample] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)
    round: dict[str, Any] = field(default_factory=dict)
    # phase -> route -> requests and mean ms as the server itself timed them (its /metrics), between the phase's ends
    server: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    load_average: dict[str, float] = field(default_factory=dict)  # the machine's 1-minute load at start and end
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)  # phase -> the server process's CPU ms

    def rows(self) -> list[dict[str, Any]]:
        """Per phase and request kind (and all paged lists together): count, errors, p50, p99, max in ms."""
        out = []
        for phase in PHASES:
            groups: dict[str, list[Sample]] = {}
            for s in self.samples:
                if s.phase == phase:
                    groups.setdefault(s.name, []).append(s)
                    if s.name in PAGED:
                        groups.setdefault("all paged lists", []).append(s)
            for name, samples in groups.items():
                out.append(
                    {"code": self.settings.code, "backend": self.backend, "phase": phase, "request": name,
                     **_stats(samples)}
                )  # fmt: skip
        return out

    def errors(self) -> dict[str, int]:
        """Failed requests by what went wrong (an HTTP status, or the client's exception when none came)."""
        kinds: dict[str, int] = {}
        for s in self.samples:
            if not 200 <= s.status < 300:
                kind = s.error or f"HTTP {s.status}"
                kinds[kind] = kinds.get(kind, 0) + 1
        return kinds


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
    """A database for the run: the SQLite file named, a fresh one, or a new database on the PostgreSQL server."""
    if url is not None and url.startswith("sqlite"):
        yield url
        return
    with scratch_database(url, "load") as made:
        yield made


@contextmanager
def _server(url: str, source: Path | None = None) -> Iterator[tuple[str, int]]:
    """`vardmatch serve --demo` on the database and a free port of 127.0.0.1 (the demo region and its users; rounds
    decide for the demo's date), from this checkout or `source`, stopped after."""
    port = _free_port()
    command = [sys.executable, "-m", "api.cli", "serve", "--demo", "--host", HOST, "--port", str(port)]
    # One worker of the service's own (on PostgreSQL too, where `serve` starts none unless asked): the round solving
    # meanwhile is the load.
    env = {**os.environ, "VARDMATCH_ANALYSIS_SECONDS": "0", "VARDMATCH_WORKERS": "1"}
    if source is not None:
        # Ahead of this checkout's editable install: the server and every process it starts run the other code.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source.resolve()), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [*command, "--database-url", url],
        env=env,
        cwd=source,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
        yield base, process.pid
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
        error = ""
        try:
            status = (await client.get(url, headers=headers[user])).status_code
        except httpx.HTTPError as exc:
            status, error = 0, type(exc).__name__
        samples.append(Sample(phase, name, time.perf_counter() - start, status, error))
        # The idle reader asks again at once: one request at a time, as many as the phase allows.
        await asyncio.sleep(0 if phase == "idle" else settings.think_s)


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


async def _run(base: str, pid: int, backend: str, settings: LoadSettings) -> LoadReport:
    report = LoadReport(backend, settings)
    rng = random.Random(settings.seed)
    # Idle connections are dropped by the client before the server's keep-alive timeout (uvicorn: 5 s, as httpx's own
    # default) ends them: with equal timeouts a request sent on a connection the server is just closing fails
    # (RemoteProtocolError, ReadError), a race of the two timeouts rather than anything the service does.
    limits = httpx.Limits(max_connections=settings.users + 4, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        headers = await _tokens(client)
        for phase in PHASES:
            state: dict[str, Any] = {}
            before, cpu_before = await _server_times(client), _cpu_seconds(pid)
            until = time.monotonic() + settings.seconds
            background = []
            if phase == "loaded":
                started = await _round(client, headers["samordnare"], settings)
                state["round"] = started["id"]
                background.append(_importer(client, headers["samordnare"], until, settings, report.imports))
            readers = [
                _reader(client, headers, phase, until, state, random.Random(rng.random()), settings, report.samples)
                for _ in range(1 if phase == "idle" else settings.users)
            ]
            await asyncio.gather(*readers, *background)
            report.server[phase] = _difference(await _server_times(client), before)
            requests = sum(t["count"] for t in report.server[phase].values())
            if requests and cpu_before is not None:
                # CPU the server process itself spent per request (not its solver or import processes): unlike
                # latency, hardly changed by how busy the rest of the machine is.
                report.cpu_ms_per_request[phase] = 1000 * ((_cpu_seconds(pid) or cpu_before) - cpu_before) / requests
            if phase == "loaded":
                report.round = await _finish_round(client, headers["samordnare"], started)
    return report


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of the process so far (Linux; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


ROUTE_TIME = re.compile(
    r'^vardmatch_http_request_duration_seconds_(sum|count)\{method="GET",route="([^"]+)",status="200"\} (\S+)$'
)


async def _server_times(client: httpx.AsyncClient) -> dict[str, dict[str, float]]:
    """The server's own request timers so far, per route of a 200 GET: count and summed seconds (from /metrics)."""
    times: dict[str, dict[str, float]] = {}
    for line in (await client.get("/metrics")).text.splitlines():
        found = ROUTE_TIME.match(line)
        if found:
            times.setdefault(found[2], {})[found[1]] = float(found[3])
    return times


def _difference(after: dict[str, dict[str, float]], before: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for route, values in after.items():
        count = values.get("count", 0) - before.get(route, {}).get("count", 0)
        seconds = values.get("sum", 0) - before.get(route, {}).get("sum", 0)
        if count and route != "/metrics":
            out[route] = {"count": count, "mean_ms": 1000 * seconds / count}
    return out


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
    start = os.getloadavg()[0]
    with _database(settings.database_url) as url, _server(url, settings.source) as (base, pid):
        report = asyncio.run(_run(base, pid, backend, settings))
    report.load_average = {"start": start, "end": os.getloadavg()[0]}
    return report


def markdown(reports: list[LoadReport]) -> str:
    """The runs as markdown tables: latency per phase and request against the same run's idle and baseline phases,
    the server's own timing, what ran in the background, and before against after where both code versions ran."""
    lines = [
        "| code | backend | phase | request | count | errors | p50 ms | p99 ms | max ms | p99 / idle p99 "
        "| p99 / baseline p99 |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for report in reports:
        rows = report.rows()
        by = {(r["phase"], r["request"]): r for r in rows}
        for r in rows:
            idle, base = _ratio(r, by.get(("idle", r["request"]))), _ratio(r, by.get(("baseline", r["request"])))
            lines.append(
                f"| {r['code']} | {r['backend']} | {r['phase']} | {r['request']} | {r['count']:,} | {r['errors']} | "
                f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {idle} | {base} |"
            )
    lines += ["", "| code | backend | phase | route (as the server timed it) | requests | server mean ms |",
              "| --- | --- | --- | --- | ---: | ---: |"]  # fmt: skip
    for report in reports:
        for phase, routes in report.server.items():
            for route, t in sorted(routes.items()):
                lines.append(
                    f"| {report.settings.code} | {report.backend} | {phase} | `{route}` | {t['count']:,.0f} | "
                    f"{t['mean_ms']:.1f} |"
                )
    lines += [
        "",
        "| code | backend | load average (start, end) | server CPU ms per read (idle, baseline, loaded) "
        "| imports (rows each) | import seconds (mean, max) | import errors | round | failed requests |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for report in reports:
        seconds = [i["seconds"] for i in report.imports]
        errors = sum(1 for i in report.imports if i["status"] != 200)
        timing = f"{statistics.mean(seconds):.2f}, {max(seconds):.2f}" if seconds else "—"
        placed = report.round.get("placements")
        round_text = report.round.get("status", "—") + (f", {placed} placed" if placed is not None else "")
        load = report.load_average
        failed = ", ".join(f"{n} {kind}" for kind, n in report.errors().items()) or "none"
        cpu = ", ".join(f"{report.cpu_ms_per_request[p]:.1f}" for p in PHASES if p in report.cpu_ms_per_request)
        lines.append(
            f"| {report.settings.code} | {report.backend} | {load.get('start', 0):.1f}, {load.get('end', 0):.1f} | "
            f"{cpu or '—'} | {len(report.imports)} ({report.settings.import_rows:,}) | {timing} | {errors} | "
            f"{round_text} | {failed} |"
        )
    return "\n".join(lines + _before_after(reports))


def _ratio(row: dict[str, Any], base: dict[str, Any] | None) -> str:
    if row["phase"] == "idle" or base is None or not base["p99_ms"] or base is row:
        return "—"
    return f"{row['p99_ms'] / base['p99_ms']:.2f}x"


def _before_after(reports: list[LoadReport]) -> list[str]:
    """Per backend, each code version's p50 and p99 against the first version run (the code before)."""
    lines: list[str] = []
    for backend in dict.fromkeys(r.backend for r in reports):
        runs = [r for r in reports if r.backend == backend]
        if len(runs) < 2:
            continue
        if not lines:
            lines += ["", "| backend | phase | request | code | p50 ms | p99 ms | p99 / idle p99 | p99 vs first code |",
                      "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
        first = {(r["phase"], r["request"]): r for r in runs[0].rows()}
        for phase in PHASES:
            for request in ("all paged lists", "health"):
                for run in runs:
                    by = {(r["phase"], r["request"]): r for r in run.rows()}
                    row, was = by.get((phase, request)), first.get((phase, request))
                    if row is None or was is None:
                        continue
                    versus = f"{row['p99_ms'] / was['p99_ms']:.2f}x" if was["p99_ms"] and run is not runs[0] else "—"
                    idle = _ratio(row, by.get(("idle", request)))
                    lines.append(
                        f"| {backend} | {phase} | {request} | {run.settings.code} | {row['p50_ms']:.1f} | "
                        f"{row['p99_ms']:.1f} | {idle} | {versus} |"
                    )
    return lines


def verdict(report: LoadReport) -> list[str]:
    """The targets, checked: no errors, and the p99 of the paged lists under load below 300 ms (with the same run's
    idle p99 beside it, to read it on a loaded machine)."""
    rows = {(r["phase"], r["request"]): r for r in report.rows()}
    paged = rows.get(("loaded", "all paged lists"), {})
    idle = rows.get(("idle", "all paged lists"), {})
    errors = sum(r["errors"] for r in rows.values())
    name = f"{report.backend} ({report.settings.code})"
    p99, idle_p99 = paged.get("p99_ms", 0.0), idle.get("p99_ms", 0.0)
    ratio = f", {p99 / idle_p99:.1f}x the idle p99 of {idle_p99:.0f} ms" if idle_p99 else ""
    return [
        f"{name}: {errors} failed request(s)",
        f"{name}: p99 of a paged list while a round solves and imports run: {p99:.0f} ms"
        f" ({'met' if paged and p99 < 300 else 'missed'}: target < 300 ms){ratio}",
    ]
