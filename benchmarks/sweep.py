"""Parameter sweeps: CP-SAT over a grid of settings on a set of instances, summarised per scale and configuration."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from ortools.sat import sat_parameters_pb2

from benchmarks.instances import InstanceSpec
from benchmarks.report import fmt, md_table, results_table, write_all
from benchmarks.run import BenchResult, Row, Settings, SolverConfig, bench

ParamValue = bool | int | float | str
# Grid keys that are the benchmark's own settings rather than CP-SAT parameters.
CONFIG_KEYS = ("workers", "time_limit", "hint", "deterministic", "seed")
_FIELDS = sat_parameters_pb2.SatParameters.DESCRIPTOR.fields_by_name


def parse_bool(text: str) -> bool:
    """on/off, true/false, yes/no, 1/0."""
    lowered = text.strip().lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise ValueError(f"{text!r} is not on/off or true/false")


def coerce_param(name: str, text: str) -> ParamValue:
    """A CP-SAT parameter value of the field's own type (enums by name or number)."""
    field = _FIELDS.get(name)
    if field is None:
        raise ValueError(f"unknown CP-SAT parameter {name!r} (see SatParameters in OR-Tools)")
    if field.is_repeated:
        raise ValueError(f"CP-SAT parameter {name!r} is a list; lists are not supported here")
    try:
        if field.type == field.TYPE_BOOL:
            return parse_bool(text)
        if field.type in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
            return float(text)
        if field.type == field.TYPE_ENUM:
            values = field.enum_type.values_by_name
            return values[text].number if text in values else int(text)
        if field.type == field.TYPE_STRING:
            return text
        return int(text)
    except (ValueError, KeyError):
        raise ValueError(f"CP-SAT parameter {name}: {text!r} is not a valid value") from None


def parse_assignment(text: str) -> tuple[str, str]:
    """KEY=VALUE into its two parts."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"{text!r}: expected KEY=VALUE")
    return key.strip(), value.strip()


def config_value(key: str, text: str) -> ParamValue:
    """The typed value of a grid key: a benchmark setting or a CP-SAT parameter."""
    if key in ("workers", "seed"):
        return int(text)
    if key == "time_limit":
        return float(text)
    if key in ("hint", "deterministic"):
        return parse_bool(text)
    return coerce_param(key, text)


def parse_grid(axes: Sequence[str]) -> list[SolverConfig]:
    """Every combination of `KEY=V1,V2,...` axes as a CP-SAT configuration, labelled by its values."""
    keys, choices = [], []
    for axis in axes:
        key, values = parse_assignment(axis)
        if key in keys:
            raise ValueError(f"grid key {key!r} given twice")
        keys.append(key)
        choices.append([(text, config_value(key, text)) for text in values.split(",") if text.strip()])
    configs = []
    for combo in itertools.product(*choices):
        label = " ".join(f"{k}={text}" for k, (text, _) in zip(keys, combo, strict=True)) or "cp_sat"
        settings: dict[str, Any] = {}
        params: dict[str, ParamValue] = {}
        for key, (_, value) in zip(keys, combo, strict=True):
            (settings if key in CONFIG_KEYS else params)[key] = value
        configs.append(SolverConfig(label=label, params=params, **settings))
    return configs


def sweep(specs: Sequence[InstanceSpec], configs: Sequence[SolverConfig], settings: Settings, workdir: Path,
          progress: bool | None = None) -> BenchResult:  # fmt: skip
    """CP-SAT in every configuration on every instance (with the LP bound of each instance for the gaps)."""
    return bench(specs, replace(settings, methods=("cp_sat",), configs=tuple(configs)), workdir, progress)


def summarise(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Per scale and configuration: how many were solved and proven, gaps and times; best first within a scale."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r["method"] == "cp_sat":
            groups[(r["scale"], r["config"])].append(r)
    out = []
    for (scale, config), runs in groups.items():
        gaps = [r["gap"] for r in runs if r["gap"] is not None]
        seconds = [r["seconds"] for r in runs if r["seconds"] is not None]
        out.append(
            {
                "scale": scale,
                "config": config,
                "runs": len(runs),
                "optimal": sum(r["status"] == "OPTIMAL" for r in runs),
                "solved": len(gaps),
                "mean_gap": sum(gaps) / len(gaps) if gaps else None,
                "max_gap": max(gaps) if gaps else None,
                "mean_seconds": sum(seconds) / len(seconds) if seconds else None,
                "max_peak_mb": max((r["peak_mb"] or 0.0 for r in runs), default=None),
            }
        )
    return sorted(out, key=_rank)


def _rank(s: dict[str, Any]) -> tuple[Any, ...]:
    # Unsolved runs count as the worst gap; ties go to the configuration that proves more, then to the faster.
    missing = s["runs"] - s["solved"]
    gap = s["mean_gap"] if s["mean_gap"] is not None else float("inf")
    return (s["scale"], missing, gap, -s["optimal"], s["mean_seconds"] or float("inf"))


def summary_table(summary: Sequence[dict[str, Any]]) -> str:
    """The sweep summary as markdown; the first row of each scale is its best configuration."""
    header = ("scale", "configuration", "runs", "proven optimal", "mean gap", "max gap", "mean time (s)", "peak MB")
    body = [
        (
            s["scale"],
            s["config"],
            str(s["runs"]),
            str(s["optimal"]),
            fmt(s["mean_gap"], "pct"),
            fmt(s["max_gap"], "pct"),
            fmt(s["mean_seconds"], "s"),
            fmt(s["max_peak_mb"], "int"),
        )
        for s in summary
    ]
    return md_table(header, body)


def best_configs(summary: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The best configuration of each scale."""
    best: dict[str, str] = {}
    for s in summary:
        best.setdefault(s["scale"], s["config"])
    return best


def write_sweep(result: BenchResult, out: Path) -> dict[str, Path]:
    """The run files (as for `bench run`, named sweep.*), the summary in markdown, and a gap-vs-time plot per config."""
    paths = write_all(result, out, name="sweep")
    summary = summarise(result.rows)
    text = ["### Sweep summary (best first per scale)", "", summary_table(summary), ""]
    text += [f"Best for {scale}: `{config}`" for scale, config in best_configs(summary).items()]
    text += ["", "### Every run", "", results_table(result.rows), ""]
    paths["markdown"].write_text("\n".join(text), encoding="utf-8")
    paths["summary_plot"] = out / "sweep_gap_vs_time.png"
    plot_summary(summary, paths["summary_plot"])
    return paths


def plot_summary(summary: Sequence[dict[str, Any]], path: Path) -> None:
    """Mean gap against mean time, one point per configuration and scale."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for i, s in enumerate(summary):
        if s["mean_gap"] is None or not s["mean_seconds"]:
            continue
        ax.scatter([s["mean_seconds"]], [100 * s["mean_gap"]], color=f"C{i % 10}", label=f"{s['scale']}: {s['config']}")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("mean seconds, end to end")
    ax.set_ylabel("mean gap to the best bound (%)")
    ax.set_title("Parameter sweep")
    ax.grid(True, which="both", alpha=0.3)
    if summary:
        ax.legend(fontsize="x-small")
    fig.savefig(path, dpi=110)
