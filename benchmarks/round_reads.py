"""Time the reads of a round on the demo database, for the code on sys.path (a checkout put first on PYTHONPATH).

    .venv/bin/python benchmarks/round_reads.py --compare /tmp/vardmatch-before   # before and after, one command

builds the demo region in a fresh SQLite file, runs three short rounds and publishes the last, waits for their
reports, then times N GETs
of a round (its progress: what the live page and `wait` loops poll) as the coordinator and as a clinic user, and
N GETs of the round list as each. With --compare DIR it first runs the same in a child process with DIR (the code
before) first on PYTHONPATH, then with this checkout, twice each in turn, and prints the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PASSWORDS = {"samordnare": "demo-coordinator-pass", "klinik": "demo-clinic-pass"}


def _serve(url: str) -> tuple[Any, str]:
    import socket

    import uvicorn

    from api.app import create_app
    from api.server import demo_settings, prepare_database

    settings = demo_settings(url)
    prepare_database(settings, demo=True)
    app = create_app(settings)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/api/v1"


def _token(client: Any, user: str) -> dict[str, str]:
    answer = client.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _round(client: Any, headers: dict[str, str], key: str) -> int:
    answer = client.post("/regions/01/rounds", json={"time_limit_s": 2}, headers={**headers, "Idempotency-Key": key})
    assert answer.status_code == 202, answer.text
    round_id = int(answer.json()["id"])
    while client.get(f"/regions/01/rounds/{round_id}", headers=headers).json()["status"] in ("queued", "solving"):
        time.sleep(0.3)
    return round_id


def _quiet(client: Any, headers: dict[str, str]) -> None:
    """Wait until the reports after each round (jobs) are done: they would compete with the reads timed."""
    while any(
        client.get("/regions/01/jobs", params={"status": status}, headers=headers).json()["total"]
        for status in ("queued", "running")
    ):
        time.sleep(0.5)


def measure(n: int) -> dict[str, float]:
    """Seconds for n GETs of each read, on a fresh demo database."""
    import httpx

    folder = Path(tempfile.mkdtemp(prefix="vm-reads-"))
    server, base = _serve(f"sqlite:///{folder / 'demo.sqlite'}")
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            coordinator, clinic = _token(client, "samordnare"), _token(client, "klinik")
            ids = [_round(client, coordinator, f"measure-{i}") for i in range(3)]
            client.post(f"/regions/01/rounds/{ids[-1]}/publish", headers=coordinator).raise_for_status()
            _quiet(client, coordinator)
            reads = {
                "round_as_coordinator": (f"/regions/01/rounds/{ids[-1]}", coordinator),
                "round_as_clinic": (f"/regions/01/rounds/{ids[-1]}", clinic),
                "list_as_coordinator": ("/regions/01/rounds", coordinator),
                "list_as_clinic": ("/regions/01/rounds", clinic),
            }
            out = {}
            for name, (path, headers) in reads.items():
                client.get(path, headers=headers).raise_for_status()  # warm
                start = time.perf_counter()
                for _ in range(n):
                    client.get(path, headers=headers).raise_for_status()
                out[name] = time.perf_counter() - start
            return out
    finally:
        server.should_exit = True


def _child(before: str, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": before}
    command = [sys.executable, __file__, "--n", str(n)]
    done = subprocess.run(command, env=env, cwd=before, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--compare", help="a checkout of the code before, run first on PYTHONPATH")
    args = parser.parse_args()
    if not args.compare:
        print(json.dumps(measure(args.n)))
        return
    here = str(Path(__file__).resolve().parents[1])
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(2):
        runs["before"].append(_child(args.compare, args.n))
        runs["after"].append(_child(here, args.n))
    print(f"load average: {os.getloadavg()}")
    print(f"| read ({args.n} GETs) | before s | after s | before/after |")
    print("|---|---|---|---|")
    for name in runs["before"][0]:
        before = statistics.median(r[name] for r in runs["before"])
        after = statistics.median(r[name] for r in runs["after"])
        print(f"| {name} | {before:.2f} | {after:.2f} | {before / after:.2f} |")


if __name__ == "__main__":
    main()
