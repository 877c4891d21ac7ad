"""Benchmark results as CSV, JSON, markdown tables and PNG plots."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from benchmarks.run import ROW_FIELDS, BenchResult, Row, fill_gaps

SOLVED = ("OPTIMAL", "FEASIBLE")
BASELINES = ("highs", "greedy", "flow", "lp", "lp_colgen")  # every other method is the engine's


@dataclass(frozen=True)
class Target:
    """A scale's target of DESIGN.md (Performance): measured at a time limit, within end-to-end seconds, and what the
    result must reach there (None: not asked)."""

    limit: float
    seconds: float
    share_of_highs: float | None = None  # at least this share of HiGHS's objective, and proven where HiGHS proves it
    optimal: bool = False  # proven optimal
    gap_lp: float | None = None  # at most this gap to the LP bound
    stretch_gap_lp: float | None = None
    gap: float | None = None  # at most this gap to the best proven bound of the instance
    lp_seconds: float | None = None  # the LP bound by column generation within this many seconds
    peak_mb: float | None = None


# By scale, and by instance name for instances read from a file.
TARGETS: dict[str, Target] = {
    "regional": Target(limit=2.0, seconds=3.0, share_of_highs=0.999),
    "demo_region": Target(limit=10.0, seconds=11.0, optimal=True),
    "national": Target(limit=30.0, seconds=33.0, gap_lp=0.005, stretch_gap_lp=0.001, lp_seconds=15.0),
    "stress": Target(limit=300.0, seconds=330.0, gap=0.02, peak_mb=8192.0),
}


# --- files --------------------------------------------------------------------------------------------------------


def clean(value: Any) -> Any:
    """NaN and infinities as None, so that JSON stays strict and CSV cells stay empty."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def write_csv(rows: Sequence[Row], path: Path) -> None:
    """One line per run, columns as in ROW_FIELDS."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(ROW_FIELDS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if clean(row.get(k)) is None else row.get(k) for k in ROW_FIELDS})


def write_json(result: BenchResult, path: Path) -> None:
    """Rows, CP-SAT trajectories and the machine, in one strict JSON document."""
    data = {"meta": result.meta, "rows": result.rows, "trajectories": result.trajectories}
    path.write_text(json.dumps(clean(data), indent=1, allow_nan=False) + "\n", encoding="utf-8")


def read_json(paths: Iterable[Path]) -> BenchResult:
    """Merge benchmark JSON files (rows in order, the first file's machine)."""
    rows: list[Row] = []
    trajectories: dict[str, list[list[float]]] = {}
    meta: dict[str, Any] = {}
    started: list[str] = []
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows += fill_gaps(data["rows"])
        trajectories.update(data.get("trajectories", {}))
        meta = meta or dict(data.get("meta", {}))
        started += [t for t in str(data.get("meta", {}).get("started", "")).split(", ") if t and t not in started]
    if started:
        meta["started"] = ", ".join(started)
    return BenchResult(rows=rows, trajectories=trajectories, meta=meta)


def write_all(result: BenchResult, out: Path, name: str = "results") -> dict[str, Path]:
    """CSV, JSON, markdown and both plots into `out`; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / f"{name}.csv",
        "json": out / f"{name}.json",
        "markdown": out / f"{name}.md",
        "time_vs_size": out / "time_vs_size.png",
        "gap_vs_time": out / "gap_vs_time.png",
    }
    write_csv(result.rows, paths["csv"])
    write_json(result, paths["json"])
    paths["markdown"].write_text(markdown(result) + "\n", encoding="utf-8")
    plot_time_vs_size(result.rows, paths["time_vs_size"])
    plot_gap_vs_time(result.rows, result.trajectories, paths["gap_vs_time"])
    return paths


# --- markdown -----------------------------------------------------------------------------------------------------


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table; columns of numbers are right-aligned."""
    body = [list(r) for r in rows]
    numeric = [all(_is_number(r[i]) for r in body) and bool(body) for i in range(len(header))]
    align = ["---:" if n else "---" for n in numeric]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%x"))
    except ValueError:
        return text in ("", "—")
    return True


def fmt(value: Any, kind: str = "") -> str:
    """A table cell: percentages, seconds, thousands; '—' for unknown."""
    value = clean(value)
    if value is None:
        return "—"
    if kind == "pct":
        return f"{100 * value:.3g}%" if value else "0%"
    if kind == "s":
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "ratio":
        return f"{value:.2f}x"
    return str(value)


def markdown(result: BenchResult) -> str:
    """The results table, the comparison against baselines, and the machine it ran on."""
    parts = [
        "### Results",
        "",
        results_table(result.rows),
        "",
        "### The engine against the baselines and its target",
        "",
    ]
    parts += [comparison_table(result.rows), "", machine_line(result.meta)]
    return "\n".join(parts)


def results_table(rows: Sequence[Row]) -> str:
    """Every run: status, matched, objective, gaps, money, time and memory."""
    header = (
        "instance", "pairs", "method", "status", "placed", "score", "gap", "gap to LP", "money (SEK)",
        "time (s)", "solve (s)", "peak MB",
    )  # fmt: skip
    return md_table(header, [_result_cells(r) for r in rows])


def _result_cells(r: Row) -> tuple[str, ...]:
    # A run without a solution has nothing to count; show that rather than zeros.
    solved = r["status"] in SOLVED and r["method"] not in ("lp", "lp_colgen")
    return (
        r["instance"],
        fmt(r["pairs"], "int"),
        r["config"],
        r["status"],
        fmt(r["placements"] if solved else None, "int"),
        fmt(r["score"] if solved else None, "int"),
        fmt(r["gap"], "pct"),
        fmt(r["gap_lp"], "pct"),
        fmt(r["money"] if solved else None, "int"),
        fmt(r["seconds"], "s"),
        fmt(r["solve_s"], "s"),
        fmt(r["peak_mb"], "int"),
    )


def comparison_table(rows: Sequence[Row]) -> str:
    """Per instance and engine method (every method but the baselines): objective and time against HiGHS, flow and
    greedy, and the scale's target."""
    header = (
        "instance", "method", "HiGHS", "placed vs HiGHS", "objective vs HiGHS", "time / HiGHS", "time / flow",
        "placed vs greedy", "target met",
    )  # fmt: skip
    body = []
    for instance, runs in _by_instance(rows).items():
        highs, flow, greedy = (_solved(runs, m) for m in ("highs", "flow", "greedy"))
        highs_run = next((r for r in runs if r["method"] == "highs"), None)
        for run in (r for r in runs if r["method"] not in BASELINES):
            body.append(
                (
                    instance,
                    run["config"],
                    _status_line(highs_run),
                    _delta(run, highs, "placements"),
                    _relative(run, highs),
                    _ratio(run, highs),
                    _ratio(run, flow),
                    _delta(run, greedy, "placements"),
                    target_verdict(run, runs),
                )
            )
    return md_table(header, body)


def _by_instance(rows: Sequence[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        grouped[r["instance"]].append(r)
    return grouped


def _status_line(row: Row | None) -> str:
    """A baseline's status and end-to-end seconds (wall time if it was killed)."""
    if row is None:
        return "—"
    seconds = row["seconds"] if row["seconds"] is not None else row["wall_s"]
    return f"{row['status']}, {fmt(seconds, 's')} s"


def _solved(runs: list[Row], method: str) -> Row | None:
    return next((r for r in runs if r["method"] == method and r["status"] in SOLVED), None)


def _delta(row: Row, other: Row | None, key: str) -> str:
    if other is None or row["status"] not in SOLVED:
        return "—"
    return f"{row[key] - other[key]:+,}"


def _relative(row: Row, other: Row | None) -> str:
    if other is None or row["status"] not in SOLVED:
        return "—"
    return f"{100 * (row['objective'] - other['objective']) / max(1.0, abs(other['objective'])):+.3g}%"


def _ratio(row: Row, other: Row | None) -> str:
    if other is None or not row["seconds"] or not other["seconds"]:
        return "—"
    return fmt(row["seconds"] / other["seconds"], "ratio")


def target_verdict(row: Row, runs: Sequence[Row] = ()) -> str:
    """Whether an engine run meets its scale's target of DESIGN.md, and if not, why; `runs`: the instance's runs,
    for the targets measured against HiGHS or the LP bound by column generation."""
    target = TARGETS.get(row["instance"] if row["scale"] == "file" else row["scale"])
    if target is None:
        return "—"
    if row["time_limit"] != target.limit:
        return f"— (measured at {fmt(target.limit, 's')} s)"
    if row["status"] not in SOLVED:
        return f"no ({row['status']})"
    highs = _solved(list(runs), "highs")
    misses = _result_misses(row, target, highs)
    if row["seconds"] is None or row["seconds"] > target.seconds:
        misses.append(f"{fmt(row['seconds'], 's')} s")
    if target.peak_mb is not None and (row["peak_mb"] or 0) > target.peak_mb:
        misses.append(f"{fmt(row['peak_mb'], 'int')} MB")
    colgen = next((r for r in runs if r["method"] == "lp_colgen" and r["status"] == "OPTIMAL"), None)
    if target.lp_seconds is not None and colgen is not None and colgen["seconds"] > target.lp_seconds:
        misses.append(f"LP bound {fmt(colgen['seconds'], 's')} s")
    verdict = "yes" if not misses else "no: " + ", ".join(misses)
    if target.stretch_gap_lp is not None and not misses:
        reached = "yes" if _within(row["gap_lp"], target.stretch_gap_lp) else "no"
        verdict += f" (stretch {fmt(target.stretch_gap_lp, 'pct')}: {reached})"
    return verdict


def _result_misses(row: Row, target: Target, highs: Row | None) -> list[str]:
    """What the run's result lacks: optimality, its share of HiGHS's objective, a gap."""
    misses = []
    proven = row["status"] == "OPTIMAL"
    if target.share_of_highs is not None:
        if highs is None:
            misses.append("no HiGHS run to compare with")
        elif row["objective"] < target.share_of_highs * highs["objective"]:
            misses.append(f"{fmt(row['objective'] / highs['objective'], 'pct')} of HiGHS")
        elif highs["status"] == "OPTIMAL" and not proven:
            misses.append("not proven where HiGHS proves it")
    elif target.optimal and not proven:
        misses.append("not optimal")
    if target.gap_lp is not None and not _within(row["gap_lp"], target.gap_lp):
        misses.append(f"gap to LP {fmt(row['gap_lp'], 'pct')}")
    if target.gap is not None and not _within(row["gap"], target.gap):
        misses.append(f"gap {fmt(row['gap'], 'pct')}")
    return misses


def _within(gap: float | None, largest: float) -> bool:
    return gap is not None and gap <= largest


def machine_line(meta: dict[str, Any]) -> str:
    """Where and with what the numbers were measured."""
    if not meta:
        return ""
    return (
        f"Measured {meta.get('started', '?')} on {meta.get('cpu', '?')} ({meta.get('cpus', '?')} CPUs), "
        f"Python {meta.get('python', '?')}, OR-Tools {meta.get('ortools', '?')}, SciPy {meta.get('scipy', '?')}, "
        f"commit {meta.get('commit') or '?'}."
    )


# --- plots --------------------------------------------------------------------------------------------------------


def plot_time_vs_size(rows: Sequence[Row], path: Path) -> None:
    """End-to-end seconds against eligible pairs, one line per method (median over seeds)."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    series: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["seconds"] and r["pairs"] and r["status"] not in ("N/A", "ERROR"):
            series[_series(r)][int(r["pairs"])].append(float(r["seconds"]))
    for label, points in sorted(series.items()):
        xs = sorted(points)
        ax.plot(xs, [_median(points[x]) for x in xs], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eligible (candidate, offer) pairs")
    ax.set_ylabel("seconds, end to end (median over seeds)")
    ax.set_title("Time against size")
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def _series(row: Row) -> str:
    """One line per method and instance variant: a flow variant is a different problem of the same size."""
    variant = row.get("variant") or "binding"
    return row["config"] if variant == "binding" else f"{row['config']} ({variant})"


def plot_gap_vs_time(rows: Sequence[Row], trajectories: dict[str, list[list[float]]], path: Path) -> None:
    """Gap to the LP bound against time: each run's final point, and CP-SAT's incumbents as it searched."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    bound_of = {r["instance"]: r["bound_lp"] for r in rows if r["bound_lp"] is not None}
    colours: dict[str, str] = {}
    for r in rows:
        if r["gap_lp"] is None or not r["seconds"]:
            continue
        colour = colours.setdefault(r["config"], f"C{len(colours) % 10}")
        label = r["config"] if _first(rows, r) else None
        ax.scatter([r["seconds"]], [100 * r["gap_lp"]], color=colour, label=label, zorder=3)
    final = {f"{r['instance']}|{r['config']}": r for r in rows if r["gap_lp"] is not None and r["seconds"]}
    for key, points in trajectories.items():
        instance, config = key.split("|", 1)
        bound = bound_of.get(instance)
        if bound is None or not points:
            continue
        # The engine reports incumbents at most once a second; the run's final answer closes the line.
        ends = [(float(final[key]["seconds"]), float(final[key]["objective"]))] if key in final else []
        line = [(t, obj) for t, obj, _ in points] + ends
        colour = colours.setdefault(config, f"C{len(colours) % 10}")
        gaps = [100 * max(0.0, (bound - obj) / max(1.0, abs(bound))) for _, obj in line]
        ax.plot([t for t, _ in line], gaps, color=colour, alpha=0.5, linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds, end to end")
    ax.set_ylabel("gap to the LP bound (%)")
    ax.set_title("Gap against time (lines: CP-SAT incumbents)")
    ax.grid(True, which="both", alpha=0.3)
    if colours:
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def _first(rows: Sequence[Row], row: Row) -> bool:
    """True for the first plotted row of its configuration (one legend entry each)."""
    first = next(r for r in rows if r["config"] == row["config"] and r["gap_lp"] is not None and r["seconds"])
    return first is row


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
