"""The retention schedule's setting and where it ticks: procrastinate's periodic task, or the local pool's thread.
(That a tick anonymises what the command would, on both databases: tests/service/test_retention_job.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.core.settings import Settings
from api.jobs import scheduled
from api.jobs.local import LocalPool
from api.jobs.worker import make_app
from models.db import make_engine, make_sessionmaker

POSTGRES = "postgresql://nobody@127.0.0.1:1/none"  # never connected to: the app is only built


def test_a_bad_cron_expression_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="VARDMATCH_RETENTION_CRON: 'daily' is not a cron expression"):
        Settings(retention_cron="daily")
    assert Settings(retention_cron=" ").retention_cron == ""


def test_the_schedule_reads_cron_in_utc_as_procrastinate_does() -> None:
    after = datetime(2027, 3, 30, 23, 0, tzinfo=UTC)
    assert scheduled.next_time("30 2 * * *", after) == datetime(2027, 3, 31, 2, 30, tzinfo=UTC)
    assert scheduled.day_of(datetime(2027, 3, 31, 12, 0, tzinfo=UTC).timestamp()).isoformat() == "2027-03-31"


def test_postgresql_workers_defer_the_tick_at_the_configured_time() -> None:
    app = make_app(
        Settings(database_url=POSTGRES, retention_cron="15 4 * * 1"), make_sessionmaker(make_engine(POSTGRES))
    )
    periodic = {task.task.name: task for task in app.periodic_registry.periodic_tasks.values()}
    assert periodic[scheduled.TICK_TASK].cron == "15 4 * * 1"
    assert app.tasks[scheduled.TICK_TASK].queueing_lock == scheduled.RETENTION

    off = make_app(Settings(database_url=POSTGRES, retention_cron=""), make_sessionmaker(make_engine(POSTGRES)))
    assert off.periodic_registry.periodic_tasks == {} and scheduled.TICK_TASK not in off.tasks


def test_the_sqlite_pool_keeps_the_schedule_unless_it_is_off(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    sessions = make_sessionmaker(make_engine(url))
    pool = LocalPool(sessions, Settings(database_url=url, retention_cron="0 3 * * *"), 1)
    assert pool.schedule is not None and pool.schedule.cron == "0 3 * * *"
    assert LocalPool(sessions, Settings(database_url=url, retention_cron=""), 1).schedule is None
