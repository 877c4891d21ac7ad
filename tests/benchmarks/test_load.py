"""A smoke run of the load test (seconds, not minutes): it sets up, reads in both phases while a round and imports
run, tears down by itself, and reports every request. No timing is asserted."""

from __future__ import annotations

from dataclasses import replace

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
    assert {phase for phase, _ in rows} == {"idle", "baseline", "loaded"}
    assert all(r["errors"] == 0 and r["count"] > 0 for r in rows.values()), rows
    paged = sum(rows[("loaded", name)]["count"] for name in PAGED if ("loaded", name) in rows)
    assert rows[("loaded", "all paged lists")]["count"] == paged > 0
    assert report.imports and {i["status"] for i in report.imports} == {200}
    assert report.round["status"] in ("solved", "solving at the end (cancelled)")
    assert "all paged lists" in markdown([report]) and "failed request" in verdict(report)[0]
    # The server's own timing of each phase's reads, from its /metrics.
    assert (
        report.server["loaded"]["/regions/{region}/candidates"]["count"] == rows[("loaded", "candidates page")]["count"]
    )
    assert "idle p99" in verdict(report)[1] and report.load_average["start"] >= 0
    assert set(report.cpu_ms_per_request) == {"idle", "baseline", "loaded"}
    assert all(ms > 0 for ms in report.cpu_ms_per_request.values())
    # Two versions of the code on one database: a table of each against the first.
    after = replace(report, settings=replace(settings, code="after"))
    table = markdown([report, after])
    assert f"| {report.backend} | loaded | all paged lists | after |" in table


def test_before_accepts_checkouts_before_and_after_the_split_of_api(tmp_path) -> None:
    from benchmarks.cli import is_checkout

    old, new, other = tmp_path / "old", tmp_path / "new", tmp_path / "other"
    (old / "api").mkdir(parents=True)
    (old / "api" / "cli.py").write_text("")
    (new / "api" / "cli").mkdir(parents=True)
    (new / "api" / "cli" / "__init__.py").write_text("")
    other.mkdir()
    assert is_checkout(old) and is_checkout(new) and not is_checkout(other)
