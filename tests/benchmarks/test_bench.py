"""`bench run` for real on tiny instances: every method in its own process, and every output file well-formed."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from benchmarks.cli import bench_app
from benchmarks.instances import InstanceSpec, parse_spec
from benchmarks.report import TARGETS, comparison_table, target_verdict
from benchmarks.run import (
    ROW_FIELDS,
    Settings,
    best_bound,
    finish_rows,
    plan_instance,
    relative_gap,
    run_child,
    tree_rss,
)
from benchmarks.worker import Task

ROOT = Path(__file__).resolve().parents[2]
INSTANCES = ("tiny:1:flow", "tiny:0")
METHODS = "cp_sat,highs,greedy,flow,auto"
PNG = b"\x89PNG\r\n\x1a\n"


def _never_nan(text: str) -> Any:
    raise ValueError(f"non-strict JSON constant {text}")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One benchmark run as a user starts it, with stdout and stderr piped (not a terminal)."""
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-c", "from benchmarks.cli import bench_app; bench_app(prog_name='bench')"]
    args = ["run", *INSTANCES, "--methods", METHODS, "--time-limit", "5", "--highs-cap", "20", "--out", str(out)]
    result = subprocess.run([*command, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return result, out


@pytest.fixture(scope="module")
def rows(bench_run: tuple[subprocess.CompletedProcess[str], Path]) -> list[dict[str, Any]]:
    """The rows of the run's JSON file."""
    data: list[dict[str, Any]] = json.loads((bench_run[1] / "results.json").read_text())["rows"]
    return data


def test_piped_output_is_plain_markdown_and_progress_is_plain_lines(bench_run: tuple[Any, Path]) -> None:
    result, _ = bench_run
    assert result.stdout.startswith("### Results\n")
    assert (
        "| instance | pairs | method |" in result.stdout
        and "### The engine against the baselines and its target" in result.stdout
    )
    # No progress bar when stderr is not a terminal: no carriage returns, one readable line per run instead.
    assert "\r" not in result.stdout and "\r" not in result.stderr
    assert "tiny-s1-flow cp_sat: OPTIMAL" in result.stderr


def test_csv_has_one_row_per_run_and_the_documented_columns(bench_run: tuple[Any, Path]) -> None:
    with (bench_run[1] / "results.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == ROW_FIELDS
        lines = list(reader)
    methods = ["lp", *METHODS.split(",")]
    assert [(r["instance"], r["method"]) for r in lines] == [
        (s, m) for s in ("tiny-s1-flow", "tiny-s0") for m in methods
    ]


def test_json_is_strict_and_records_the_machine(bench_run: tuple[Any, Path]) -> None:
    data = json.loads((bench_run[1] / "results.json").read_text(), parse_constant=_never_nan)
    assert set(data) == {"meta", "rows", "trajectories"}
    assert {"cpu", "cpus", "ortools", "scipy", "python", "settings"} <= set(data["meta"])


def test_markdown_and_plots_are_written(bench_run: tuple[Any, Path]) -> None:
    out = bench_run[1]
    text = (out / "results.md").read_text()
    assert text.count("\n| tiny-s") == 12 + 4  # every run, then a comparison line per engine method and instance
    for name in ("time_vs_size.png", "gap_vs_time.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000


def test_every_solution_is_valid_and_within_the_best_bound(rows: list[dict[str, Any]]) -> None:
    solved = [r for r in rows if r["status"] in ("OPTIMAL", "FEASIBLE") and r["method"] != "lp"]
    assert {r["method"] for r in solved} == {"cp_sat", "highs", "greedy", "flow", "auto"}
    for r in solved:
        assert r["violations"] == 0, r
        assert r["objective"] <= r["best_bound"] + 1e-6 <= r["bound_lp"] + 1e-3
        assert r["gap"] >= 0 and r["gap_lp"] >= r["gap"] - 1e-12
        assert r["peak_mb"] >= r["base_mb"] > 0 and r["seconds"] > 0


def test_flow_applies_only_where_nothing_binds_and_agrees_with_cp_sat(rows: list[dict[str, Any]]) -> None:
    by = {(r["instance"], r["method"]): r for r in rows}
    assert by[("tiny-s1-flow", "lp")]["is_flow"] and not by[("tiny-s0", "lp")]["is_flow"]
    assert by[("tiny-s0", "flow")]["status"] == "N/A" and by[("tiny-s0", "flow")]["peak_mb"] is None
    optimum = by[("tiny-s1-flow", "flow")]["objective"]
    for method in ("cp_sat", "highs", "auto"):
        assert by[("tiny-s1-flow", method)]["status"] == "OPTIMAL"
        assert by[("tiny-s1-flow", method)]["objective"] == optimum
    assert by[("tiny-s0", "cp_sat")]["objective"] == by[("tiny-s0", "highs")]["objective"]


def test_report_merges_result_files(bench_run: tuple[Any, Path], tmp_path: Path) -> None:
    source = bench_run[1] / "results.json"
    result = CliRunner().invoke(bench_app, ["report", str(source), str(source), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "results.json").read_text())["rows"]) == 24


# --- the child process --------------------------------------------------------------------------------------------


def test_a_child_past_its_cap_is_killed_and_reported() -> None:
    child = run_child(Task(instance="never-read.json", method="cp_sat"), cap=0.2)
    assert child.result["status"] == "TIMEOUT" and child.wall_s < 5


def test_a_failing_run_reports_its_error() -> None:
    child = run_child(Task(instance=str(ROOT / "missing.json"), method="greedy"), cap=60)
    assert child.result["status"] == "ERROR" and "missing.json" in child.result["error"]


def test_the_memory_of_a_run_counts_its_worker_processes_too() -> None:
    # A process holding 60 MB whose child (as the HiGHS worker is a solve's) holds another 60 MB: together 120 MB,
    # where ru_maxrss, which the bench read alone before, reports the larger of the two.
    held = "import time; data = b'x' * (60 * 2**20); time.sleep(60)"
    code = f"import subprocess, sys; data = b'x' * (60 * 2**20); subprocess.run([sys.executable, '-c', {held!r}])"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        seen, until = 0, time.monotonic() + 30
        while seen < 120 * 2**20 and time.monotonic() < until:
            seen = max(seen, tree_rss(proc.pid))
            time.sleep(0.05)
        assert seen >= 120 * 2**20
        assert psutil.Process(proc.pid).memory_info().rss < 100 * 2**20  # each alone is below the sum
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
    assert tree_rss(proc.pid) == 0  # gone: nothing to count


# --- pieces -------------------------------------------------------------------------------------------------------


def test_instance_specs() -> None:
    assert parse_spec("regional") == InstanceSpec("regional", 0, "binding")
    assert parse_spec("120x60:3:ample").label == "120x60-s3-ample"
    assert parse_spec("national:2:flow").time_limit == 30.0
    assert parse_spec("x/y/round.json").path == Path("x/y/round.json")
    for bad in ("galactic:1", "regional:-1", "regional:1:cheap", "regional:1:flow:extra", ":1"):
        with pytest.raises(ValueError, match="instance"):
            parse_spec(bad)


def test_no_lp_plans_no_lp_run(tmp_path: Path) -> None:
    path = tmp_path / "round.json"
    spec = parse_spec("tiny:0")
    with_lp = plan_instance(spec, path, Settings(methods=("lagrange",)))
    without = plan_instance(spec, path, Settings(methods=("lagrange",), lp=False))
    assert [p.method for p in with_lp] == ["lp", "lagrange"] and [p.method for p in without] == ["lagrange"]


def _row(method: str, status: str, objective: float | None, own: float | None = None) -> dict[str, Any]:
    return dict.fromkeys(ROW_FIELDS) | {"method": method, "status": status, "objective": objective, "own_bound": own}


def test_gaps_use_the_tightest_proven_bound() -> None:
    runs = [
        _row("lp", "OPTIMAL", 110.4, 110.4),
        _row("cp_sat", "FEASIBLE", 100.0, 120.0),
        _row("highs", "OPTIMAL", 105.0, 105.0),
        _row("greedy", "FEASIBLE", 90.0),
        _row("flow", "N/A", None),
    ]
    assert best_bound(runs) == 105.0
    done = {r["method"]: r for r in finish_rows(runs)}
    assert done["cp_sat"]["gap"] == pytest.approx(5 / 105) and done["cp_sat"]["gap_lp"] == pytest.approx(10.4 / 110.4)
    assert done["highs"]["gap"] == 0.0 and done["flow"]["gap"] is None and done["lp"]["gap"] is None
    assert "own_bound" not in done["cp_sat"]
    assert relative_gap(None, 3.0) is None and relative_gap(10.0, 9.99999) == 0.0
    assert relative_gap(0.0, 3e8) == 1.0  # an empty solution is 100 % off


def _run(method: str, **fields: Any) -> dict[str, Any]:
    row = dict.fromkeys(ROW_FIELDS) | {"instance": "regional-s0", "scale": "regional", "method": method}
    return row | {"config": method, "status": "FEASIBLE", "seconds": 1.9, "time_limit": 2.0, "peak_mb": 300.0} | fields


def test_target_verdicts_follow_design_md() -> None:
    """Each scale against DESIGN.md's targets (issue 14's): regional against HiGHS in the same run, the demo region
    proven, national against the LP bound and its column-generation time, stress against a proven bound and 8 GB."""
    highs = _run("highs", objective=1000.0, seconds=60.0, time_limit=60.0)
    assert target_verdict(_run("auto", objective=999.0), [highs]) == "yes"
    assert target_verdict(_run("auto", objective=998.0), [highs]) == "no: 99.8% of HiGHS"
    assert target_verdict(_run("auto", objective=999.0, seconds=3.2), [highs]) == "no: 3.20 s"
    proven = highs | {"status": "OPTIMAL"}
    assert target_verdict(_run("auto", objective=1000.0), [proven]) == "no: not proven where HiGHS proves it"
    assert target_verdict(_run("auto", objective=1000.0, status="OPTIMAL"), [proven]) == "yes"
    assert target_verdict(_run("auto", objective=999.0), []) == "no: no HiGHS run to compare with"
    assert target_verdict(_run("auto", objective=999.0, time_limit=1.0), [highs]) == "— (measured at 2.00 s)"

    demo = {"instance": "demo_region", "scale": "file", "time_limit": 10.0, "seconds": 7.0}
    assert target_verdict(_run("auto", **demo, status="OPTIMAL")) == "yes"
    assert target_verdict(_run("auto", **demo)) == "no: not optimal"

    national = {"instance": "national-s0", "scale": "national", "time_limit": 30.0, "seconds": 27.0}
    colgen = _run("lp_colgen", **national | {"seconds": 4.2, "time_limit": None}, status="OPTIMAL")
    assert target_verdict(_run("lns", **national, gap_lp=0.0018), [colgen]) == "yes (stretch 0.1%: no)"
    assert target_verdict(_run("lns", **national, gap_lp=0.0008), [colgen]) == "yes (stretch 0.1%: yes)"
    assert target_verdict(_run("lns", **national, gap_lp=0.006), [colgen]) == "no: gap to LP 0.6%"
    slow = colgen | {"seconds": 16.0}
    assert target_verdict(_run("lns", **national, gap_lp=0.0018), [slow]) == "no: LP bound 16.00 s"

    stress = {"instance": "stress-s0", "scale": "stress", "time_limit": 300.0, "seconds": 281.0}
    assert target_verdict(_run("lagrange", **stress, gap=0.005, peak_mb=6023.0)) == "yes"
    assert target_verdict(_run("lagrange", **stress, gap=0.021, peak_mb=9000.0)) == "no: gap 2.1%, 9,000 MB"
    assert target_verdict(_run("lagrange", **stress, status="UNKNOWN")) == "no (UNKNOWN)"
    assert target_verdict(_run("auto", scale="tiny", instance="tiny-s0")) == "—"


def test_a_scale_is_benchmarked_at_the_time_limit_of_its_target() -> None:
    """Without --time-limit a run is measured at its target's limit (regional was at 1 s, its target at 2 s)."""
    for scale in ("regional", "national", "stress"):
        assert parse_spec(f"{scale}:0").time_limit == TARGETS[scale].limit


def test_comparison_lists_every_engine_method_not_the_baselines() -> None:
    """Every engine strategy gets its line against the baselines, not `cp_sat` alone (before, a run of `auto`,
    `lns` or `lagrange` left the comparison empty)."""
    highs = _run("highs", objective=1000.0, placements=10, seconds=60.0, time_limit=60.0)
    greedy = _run("greedy", objective=800.0, placements=8, seconds=0.1, time_limit=None)
    runs = [highs, greedy, _run("lp", status="OPTIMAL"), _run("auto", objective=999.5, placements=10)]
    runs.append(_run("lns", objective=990.0, placements=9))
    lines = comparison_table(runs).splitlines()[2:]
    assert [line.split(" | ")[1] for line in lines] == ["auto", "lns"]
    assert lines[0].endswith("| +0 | -0.05% | 0.03x | — | +2 | yes |")
    assert lines[1].endswith("| -1 | -1% | 0.03x | — | +1 | no: 99% of HiGHS |")


def test_phases_name_every_step_of_the_engine(tmp_path: Path) -> None:
    result = CliRunner().invoke(bench_app, ["phases", "tiny:0", "--time-limit", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for step in ("prepare: eligibility", "hint: LP", "model build", "CP-SAT search", "explain"):
        assert f"| {step}" in result.stdout


def test_whynot_counts_every_unmatched_candidate(tmp_path: Path) -> None:
    from matching.generators.generate import generate

    path = tmp_path / "round.json"
    path.write_text(generate(14, 5, seed=3, binding_budgets=True).model_dump_json(), encoding="utf-8")
    result = CliRunner().invoke(bench_app, ["whynot", str(path), "--time-limit", "2", "--seconds", "20"])
    assert result.exit_code == 0, result.output
    row = dict(part.rsplit(" ", 1) for part in result.stdout.strip().split(" | "))
    unmatched = int(row["unmatched"])
    assert unmatched > 0
    assert int(row["verified"]) + int(row["none_placed"]) + int(row["not_computed"]) == unmatched
    assert int(row["answered"]) == int(row["verified"]) + int(row["none_placed"])
    assert row["target_met"] in ("yes", "no")


def test_whynot_refuses_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(bench_app, ["whynot", str(tmp_path / "nothing.json")])
    assert result.exit_code == 2 and "no such file" in result.output
