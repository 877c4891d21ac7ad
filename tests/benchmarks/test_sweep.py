"""Parameter sweeps: the grid, the ranking, and a real sweep on a tiny instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks.cli import bench_app
from benchmarks.run import SolverConfig
from benchmarks.sweep import best_configs, coerce_param, parse_grid, summarise


def test_grid_is_the_product_of_its_axes_with_typed_values() -> None:
    configs = parse_grid(["workers=1,2", "linearization_level=0,2", "hint=off", "time_limit=1.5"])
    assert [c.label for c in configs] == [
        "workers=1 linearization_level=0 hint=off time_limit=1.5",
        "workers=1 linearization_level=2 hint=off time_limit=1.5",
        "workers=2 linearization_level=0 hint=off time_limit=1.5",
        "workers=2 linearization_level=2 hint=off time_limit=1.5",
    ]
    assert configs[1] == SolverConfig(
        label=configs[1].label, workers=1, time_limit=1.5, hint=False, params={"linearization_level": 2}
    )


def test_parameters_take_their_field_types() -> None:
    assert coerce_param("search_branching", "FIXED_SEARCH") == 1
    assert coerce_param("use_lns_only", "true") is True
    assert coerce_param("relative_gap_limit", "0.001") == 0.001
    assert coerce_param("num_workers", "3") == 3


@pytest.mark.parametrize(
    ("axis", "message"),
    [
        ("no_such_parameter=1", "unknown CP-SAT parameter"),
        ("linearization_level=high", "not a valid value"),
        ("subsolvers=a,b", "is a list"),
        ("workers", "expected KEY=VALUE"),
        ("hint=maybe", "on/off"),
    ],
)
def test_bad_grid_axes_are_refused(axis: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_grid([axis])


def _row(scale: str, config: str, status: str, gap: float | None, seconds: float) -> dict[str, Any]:
    return {"method": "cp_sat", "scale": scale, "config": config, "status": status, "gap": gap,
            "seconds": seconds, "peak_mb": 200.0}  # fmt: skip


def test_summary_ranks_solved_then_gap_then_proofs_then_time() -> None:
    rows = [
        _row("regional", "a", "FEASIBLE", 0.01, 1.0),
        _row("regional", "b", "OPTIMAL", 0.0, 9.0),
        _row("regional", "c", "OPTIMAL", 0.0, 3.0),
        _row("regional", "d", "TIMEOUT", None, 1.0),
        _row("national", "a", "FEASIBLE", 0.02, 30.0),
    ]
    summary = summarise(rows)
    assert [(s["scale"], s["config"]) for s in summary] == [
        ("national", "a"), ("regional", "c"), ("regional", "b"), ("regional", "a"), ("regional", "d")
    ]  # fmt: skip
    assert best_configs(summary) == {"national": "a", "regional": "c"}


def test_a_real_sweep_writes_its_summary(tmp_path: Path) -> None:
    args = ["sweep", "tiny:0", "--grid", "workers=1,2", "--time-limit", "2", "--out", str(tmp_path), "--no-progress"]
    result = CliRunner().invoke(bench_app, args)
    assert result.exit_code == 0, result.output
    assert "best for tiny: workers=" in result.stdout
    text = (tmp_path / "sweep.md").read_text()
    assert "| tiny | workers=1 | 1 | 1 |" in text and "Best for tiny" in text
    for name in ("sweep.csv", "sweep.json", "sweep_gap_vs_time.png", "gap_vs_time.png", "time_vs_size.png"):
        assert (tmp_path / name).stat().st_size > 0
