"""Retention as a scheduled job, triggered as its schedule would at a chosen time (nobody waits a day): on SQLite by
the schedule of the pool `serve` starts, on PostgreSQL by deferring procrastinate's periodic task with that time (as
its periodic deferrer does) for the service's own `vardmatch worker` processes to run. It anonymises exactly what
`vardmatch retention` would on that day, records each region's run as a job with counts only, never runs two at
once, and a second tick of the same day, or a run on the next day, changes nothing.

Region 14 is test_retention's (R1 to R5); regions 01 and 02 are the seeded ones, so the schedule runs in all three.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from procrastinate.jobs import Status
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app as cli
from api.core.privacy import add_months
from api.jobs import scheduled
from api.jobs.worker import make_app
from models.db import make_engine, make_sessionmaker, transaction
from models.jobs import SolverJob
from tests.service.conftest import Service
from tests.service.helpers import dump, ok
from tests.service.test_retention import COORD, changed_rows
from tests.service.test_retention import region as region  # the fixture: region 14 and its five candidates

# What a job's result and its audit event may hold: counts, the day and the region's policy; never who.
RESULT_KEYS = {"day", "anonymised", "kept", "by_reason", "policy"}


@pytest.fixture(scope="module")
def when(region: Service) -> Iterator[datetime]:
    """A scheduled time 13 months from now, when region 14's withdrawn and archived candidates are due."""
    yield datetime.combine(add_months(date.today(), 13), datetime.min.time(), UTC) + timedelta(hours=2, minutes=30)


def sessions(service: Service) -> Any:
    return service.app.state.sessions


def retention_jobs(service: Service) -> list[SolverJob]:
    with sessions(service)() as session:
        return list(session.scalars(select(SolverJob).where(SolverJob.kind == "retention").order_by(SolverJob.id)))


async def defer_tick(service: Service, stamp: int) -> None:
    """Defer the periodic task with its scheduled time, and wait until one of the service's workers has run it."""
    engine = make_engine(service.url)
    procrastinate = make_app(service.app.state.settings, make_sessionmaker(engine))
    try:
        async with procrastinate.open_async():
            job_id = await procrastinate.tasks[scheduled.TICK_TASK].defer_async(timestamp=stamp)
            deadline = time.monotonic() + 60
            while (status := await procrastinate.job_manager.get_job_status_async(job_id)) != Status.SUCCEEDED:
                assert status in (Status.TODO, Status.DOING) and time.monotonic() < deadline, status
                await asyncio.sleep(0.2)
    finally:
        engine.dispose()


def tick(service: Service, at: datetime) -> list[dict[str, Any]]:
    """Tick the schedule at `at`; the retention jobs it queued, once they have ended (their API form)."""
    known = {job.id for job in retention_jobs(service)}
    if service.url.startswith("sqlite"):
        schedule = service.app.state.workers.schedule
        assert schedule.is_alive()  # the service's own schedule, waiting for 02:30 UTC; this tick comes early
        schedule.fire(at.timestamp())
    else:
        asyncio.run(defer_tick(service, int(at.timestamp())))
    new = [job.id for job in retention_jobs(service) if job.id not in known]
    return [service.wait_job("admin", job_id) for job_id in new]


def due_by_the_command(service: Service, on: date) -> set[str]:
    """What `vardmatch retention --dry-run` would anonymise on that day, in every region (changing nothing)."""
    result = CliRunner().invoke(
        cli, ["retention", "--dry-run", "--json", "--today", on.isoformat(), "--database-url", service.url]
    )
    assert result.exit_code == 0, result.output
    return {f"{r['region']}/{v['candidate_id']}" for r in json.loads(result.output) for v in r["anonymised"]}


def test_the_scheduled_job_anonymises_what_the_command_would_and_a_second_run_changes_nothing(
    region: Service, when: datetime
) -> None:
    service = region
    due = due_by_the_command(service, when.date())
    assert {"14/R3", "14/R5"} <= due  # withdrawn and archived 13 months before: past region 14's 12 months
    before = dump(service.url)

    jobs = tick(service, when)
    assert sorted(j["region"] for j in jobs) == ["01", "02", "14"]
    assert all(j["status"] == "succeeded" and j["kind"] == "retention" for j in jobs), jobs
    results = {j["region"]: j["result"] for j in jobs}
    assert all(set(r) == RESULT_KEYS and r["day"] == when.date().isoformat() for r in results.values())
    assert sum(r["anonymised"] for r in results.values()) == len(due)
    assert results["14"]["anonymised"] + results["14"]["kept"] == 5

    # Exactly what the command would have changed (test_retention checks the command itself), plus the jobs.
    after = dump(service.url)
    changes = changed_rows(before, after)
    assert set(changes) <= {"candidate", "candidate_identity", "audit_event", "commitment", "solver_job"}, set(changes)
    regions = {r["id"]: r["code"] for r in before["region"]}
    ids = {r["id"]: f"{regions[r['region_id']]}/{r['ref']}" for r in before["candidate"]}
    assert {ids[r["id"]] for r in changes["candidate"]["new"]} == due
    assert {ids[r["candidate_id"]] for r in changes["candidate_identity"]["gone"]} == due
    assert changes["audit_event"]["gone"] == [] and changes["solver_job"]["gone"] == []
    events = changes["audit_event"]["new"]
    assert sorted(e["object_id"] for e in events if e["action"] == "candidate.anonymise") == sorted(
        ref.split("/")[1] for ref in due
    )
    runs = [e for e in events if e["action"] == "retention.run"]
    assert {e["object_id"] for e in runs} == {code for code, r in results.items() if r["anonymised"]}
    for event in runs:
        assert event["actor_role"] == "system" and set(json.loads(event["detail"])) == RESULT_KEYS | {"job_id"}

    # A run is read like any job: by the region's coordinator too, with counts and no identity.
    job = ok(service.call(COORD, "GET", f"/jobs/{next(j['id'] for j in jobs if j['region'] == '14')}"))
    assert job["result"] == results["14"] and job["round_id"] is None

    # The same scheduled time again (a second worker's tick): nothing queued, nothing changed.
    assert tick(service, when) == []
    assert dump(service.url) == after

    # The next day: each region runs again and finds nothing to do; only the jobs' own rows are new.
    again = tick(service, when + timedelta(days=1))
    assert sorted(j["region"] for j in again) == ["01", "02", "14"]
    assert all(j["status"] == "succeeded" and j["result"]["anonymised"] == 0 for j in again), again
    later = dump(service.url)
    assert {k: v for k, v in later.items() if k != "solver_job"} == {
        k: v for k, v in after.items() if k != "solver_job"
    }


def test_retention_runs_never_overlap(region: Service, when: datetime) -> None:
    # Every retention job holds the same lock, which both queues honour (the local pool's claim, procrastinate's job
    # lock), and is background work, which never holds up a round; their runs follow one another.
    service = region
    day = when + timedelta(days=2)
    assert all(j["status"] == "succeeded" for j in tick(service, day))
    jobs = retention_jobs(service)
    assert len(jobs) >= 3 and {(j.lock, j.priority) for j in jobs} == {(scheduled.RETENTION, scheduled.PRIORITY)}
    runs = sorted((j.started_at, j.finished_at) for j in jobs)
    assert all(a[1] is not None and b[0] is not None and a[1] <= b[0] for a, b in pairwise(runs))
    # Ticking the day again by hand queues nothing: the day's jobs are done.
    with transaction(sessions(service)) as session:
        assert scheduled.schedule_retention(session, day.date()) == []
