"""A smoke run of the load test (seconds, not minutes): it sets up, reads in both phases while a round and imports
run, tears down by itself, and reports every request. No timing is asserted."""

from __future__ import annotations

import pytest

from benchmarks.load import PAGED, LoadSettings, markdown, run_load, verdict
from tests.databases import BACKENDS, POSTGRES_URL


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_short_load_run_reports_every_request_without_errors(backend: str) -> None:
    settings = LoadSettings(
        database_url=POSTGRES_URL if backend == "postgres" else None,
        users=3,
        seconds=2.0,
        think_s=0.05,
        import_rows=50,
        round_seconds=2.0,
    )
    report = run_load(settings)
    rows = {(r["phase"], r["request"]): r for r in report.rows()}
    assert {phase for phase, _ in rows} == {"baseline", "loaded"}
    assert all(r["errors"] == 0 and r["count"] > 0 for r in rows.values()), rows
    paged = sum(rows[("loaded", name)]["count"] for name in PAGED if ("loaded", name) in rows)
    assert rows[("loaded", "all paged lists")]["count"] == paged > 0
    assert report.imports and {i["status"] for i in report.imports} == {200}
    assert report.round["status"] in ("solved", "solving at the end (cancelled)")
    assert "all paged lists" in markdown([report]) and "failed request" in verdict(report)[0]
