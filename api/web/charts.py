"""Charts drawn on the server as SVG: no script, no inline style (colours come from classes in app.css), a title
and a description for screen readers, and the same figures in a table beside each chart."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 640
LABEL_W = 130
BAR_H = 18


def _svg(title: str, height: int, body: str, ident: str) -> Markup:
    return Markup(
        f'<svg class="chart" role="img" aria-labelledby="{ident}-t" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-t">{escape(title)}</title>{body}</svg>'
    )


def money_bars(rows: list[tuple[str, int, int, int]], title: str, ident: str = "money") -> Markup:
    """Per row (label, budget or cap, committed before, granted now): a grey bar for the budget, over it a bar
    for what was committed earlier and, after it, what this round grants."""
    scale = max([max(budget, committed + granted) for _, budget, committed, granted in rows] + [1])
    plot = WIDTH - LABEL_W - 10
    parts = []
    for i, (label, budget, committed, granted) in enumerate(rows):
        y = 10 + i * (BAR_H + 10)
        parts.append(f'<text x="0" y="{y + 13}">{escape(label)}</text>')
        parts.append(
            f'<rect class="budget" x="{LABEL_W}" y="{y}" width="{plot * budget / scale:.1f}" height="{BAR_H}"/>'
        )
        c_w = plot * committed / scale
        parts.append(f'<rect class="committed" x="{LABEL_W}" y="{y + 4}" width="{c_w:.1f}" height="{BAR_H - 8}"/>')
        g_w = plot * granted / scale
        parts.append(
            f'<rect class="granted" x="{LABEL_W + c_w:.1f}" y="{y + 4}" width="{g_w:.1f}" height="{BAR_H - 8}"/>'
        )
    return _svg(title, 20 + len(rows) * (BAR_H + 10), "".join(parts), ident)


@dataclass(frozen=True)
class Point:
    """One progress report of a solving round."""

    elapsed: float
    objective: float | None
    bound: float | None
    gap: float | None


def parse_series(text: str) -> list[Point]:
    """Points carried by the page between polls as 'elapsed:objective:bound:gap;...' (bad parts are skipped)."""
    points = []
    for part in text.split(";")[-300:]:
        fields = part.split(":")
        if len(fields) != 4:
            continue
        try:
            values = [float(f) if f not in ("", "None") else None for f in fields]
        except ValueError:
            continue
        if values[0] is not None:
            points.append(Point(values[0], values[1], values[2], values[3]))
    return points


def format_series(points: list[Point]) -> str:
    """The inverse of parse_series."""
    return ";".join(f"{p.elapsed}:{p.objective}:{p.bound}:{p.gap}" for p in points)


def gap_line(points: list[Point], title: str, ident: str = "gap") -> Markup:
    """The gap (as a share of the bound) over elapsed seconds: a line that grows while the round solves, from the
    first progress report on. Until the solver has both a solution and a bound there is no gap to draw: that stretch
    is a dotted line along the top ("not known yet"), so the line starts when solving starts, not when the first
    bound arrives."""
    height, left, bottom = 200, 50, 30
    plot_w, plot_h = WIDTH - left - 10, height - bottom - 10
    known = [p for p in points if p.gap is not None]
    t_max = max([p.elapsed for p in points] + [1.0])
    g_max = max([p.gap or 0.0 for p in known] + [0.01])

    def x(t: float) -> str:
        return f"{left + plot_w * t / t_max:.1f}"

    parts = [
        f'<line class="axis" x1="{left}" y1="10" x2="{left}" y2="{10 + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{10 + plot_h}" x2="{left + plot_w}" y2="{10 + plot_h}"/>',
        f'<text x="0" y="16">{g_max * 100:.1f} %</text>',
        f'<text x="0" y="{10 + plot_h}">0 %</text>',
        f'<text x="{left}" y="{height - 5}">0 s</text>',
        f'<text x="{left + plot_w - 40}" y="{height - 5}">{t_max:.1f} s</text>',
    ]
    if points:
        # Before the first gap: from the first report to the first gap (or to the latest report if none yet).
        first_gap = known[0].elapsed if known else points[-1].elapsed
        unknown = [p.elapsed for p in points if p.elapsed <= first_gap]
        if unknown and first_gap > unknown[0]:
            parts.append(f'<polyline class="gap-unknown" points="{x(unknown[0])},10 {x(first_gap)},10"/>')
    if known:
        coords = " ".join(f"{x(p.elapsed)},{10 + plot_h - plot_h * (p.gap or 0.0) / g_max:.1f}" for p in known)
        parts.append(f'<polyline class="gap-line" points="{coords}"/>')
    return _svg(title, height, "".join(parts), ident)


def objective_lines(points: list[Point], title: str, ident: str = "objective") -> Markup:
    """The best objective found (solid) and the bound (dashed) over elapsed seconds, on one scale: the gap is the
    space between them."""
    height, left, bottom = 200, 70, 30
    plot_w, plot_h = WIDTH - left - 10, height - bottom - 10
    values = [v for p in points for v in (p.objective, p.bound) if v is not None]
    t_max = max([p.elapsed for p in points] + [1.0])
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    span = (high - low) or max(abs(high), 1.0)
    low = low - span * 0.05

    def coords(pick: str) -> str:
        shown = [(p.elapsed, getattr(p, pick)) for p in points if getattr(p, pick) is not None]
        return " ".join(
            f"{left + plot_w * t / t_max:.1f},{10 + plot_h - plot_h * (v - low) / (high - low or 1):.1f}"
            for t, v in shown
        )

    parts = [
        f'<line class="axis" x1="{left}" y1="10" x2="{left}" y2="{10 + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{10 + plot_h}" x2="{left + plot_w}" y2="{10 + plot_h}"/>',
        f'<text x="0" y="16">{high:,.0f}</text>'.replace(",", "\u00a0"),
        f'<text x="0" y="{10 + plot_h}">{low:,.0f}</text>'.replace(",", "\u00a0"),
        f'<text x="{left}" y="{height - 5}">0 s</text>',
        f'<text x="{left + plot_w - 40}" y="{height - 5}">{t_max:.1f} s</text>',
        f'<polyline class="obj-line" points="{coords("objective")}"/>',
        f'<polyline class="bound-line" points="{coords("bound")}"/>',
    ]
    return _svg(title, height, "".join(parts), ident)
