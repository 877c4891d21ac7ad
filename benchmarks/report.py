"""Benchmark results as CSV, JSON, markdown tables and PNG plots."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from benchmarks.run import ROW_FIELDS, BenchResult, Row, fill_gaps

SOLVED = ("OPTIMAL", "FEASIBLE")
# DESIGN.md, Performance: (seconds end to end, largest gap accepted, peak MB) per scale; gap 0 means proven optimal.
TARGETS: dict[str, tuple[float, float, float | None]] = {
    "regional": (1.0, 0.0, None),
    "national": (30.0, 0.001, None),
    "stress": (300.0, 0.01, 8192.0),
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
    parts = ["### Results", "", results_table(result.rows), "", "### CP-SAT against the baselines", ""]
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
    """Per instance and CP-SAT configuration: objective and time against HiGHS, flow and greedy, and the target."""
    header = (
        "instance", "CP-SAT config", "HiGHS", "placed vs HiGHS", "objective vs HiGHS", "time / HiGHS", "time / flow",
        "placed vs greedy", "scale target met",
    )  # fmt: skip
    body = []
    for instance, runs in _by_instance(rows).items():
        highs, flow, greedy = (_solved(runs, m) for m in ("highs", "flow", "greedy"))
        highs_run = next((r for r in runs if r["method"] == "highs"), None)
        for cp in (r for r in runs if r["method"] == "cp_sat"):
            body.append(
                (
                    instance,
                    cp["config"],
                    _status_line(highs_run),
                    _delta(cp, highs, "placements"),
                    _relative(cp, highs),
                    _ratio(cp, highs),
                    _ratio(cp, flow),
                    _delta(cp, greedy, "placements"),
                    target_verdict(cp),
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


def target_verdict(row: Row) -> str:
    """Whether a CP-SAT run meets its scale's target of DESIGN.md, and if not, why."""
    if row["scale"] not in TARGETS:
        return "—"
    seconds, gap, memory = TARGETS[row["scale"]]
    misses = []
    if row["status"] not in SOLVED:
        return f"no ({row['status']})"
    proven = row["status"] == "OPTIMAL" or (gap > 0 and row["gap"] is not None and row["gap"] <= gap)
    if not proven:
        misses.append("not optimal" if gap == 0 else f"gap {fmt(row['gap'], 'pct')}")
    if row["seconds"] is None or row["seconds"] > seconds:
        misses.append(f"{fmt(row['seconds'], 's')} s")
    if memory is not None and (row["peak_mb"] or 0) > memory:
        misses.append(f"{fmt(row['peak_mb'], 'int')} MB")
    return "yes" if not misses else "no: " + ", ".join(misses)


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
