"""The server-side charts: the progress series a page carries between polls, and what a chart draws."""

from __future__ import annotations

from api.web.charts import Point, format_series, gap_line, money_bars, parse_series


def test_a_series_survives_the_round_trip_and_garbage_is_skipped() -> None:
    points = [Point(1.5, 10.0, 12.0, 0.2), Point(2.5, 11.0, 12.0, None)]
    assert parse_series(format_series(points)) == points
    assert parse_series("x;1:2;a:b:c:d;<script>:1:1:1;2.0:None:None:0.5") == [Point(2.0, None, None, 0.5)]
    assert parse_series("") == []
    assert len(parse_series(";".join(["1:1:1:1"] * 1000))) == 300  # a page can never make the server draw more


def test_the_gap_line_has_one_point_per_report_and_labels_are_escaped() -> None:
    svg = gap_line([Point(1, 5, 10, 1.0), Point(2, 8, 10, 0.25), Point(3, 9, 10, None)], "Gap <over> time")
    points = svg.split('points="')[1].split('"')[0].split()
    assert len(points) == 2
    assert "Gap &lt;over&gt; time" in svg and "<script" not in svg
    bars = money_bars([("P<1>", 100, 30, 20)], "Money")
    assert "P&lt;1&gt;" in bars and bars.count("<rect") == 3


def _polyline(svg: str, css: str) -> list[tuple[float, float]]:
    found = svg.split(f'<polyline class="{css}" points="')
    if len(found) < 2:
        return []
    return [(float(x), float(y)) for x, y in (p.split(",") for p in found[1].split('"')[0].split())]


def test_the_gap_line_starts_at_the_first_progress_report_before_any_gap_is_known() -> None:
    # Reports from 0.5 s on; the first gap comes at 4 s (the solver has a solution and a bound only then).
    reports = [
        Point(0.5, None, None, None),
        Point(1.5, None, None, None),
        Point(4.0, 90, 100, 0.1),
        Point(5, 95, 100, 0.05),
    ]
    svg = gap_line(reports, "Gap")
    unknown, known = _polyline(svg, "gap-unknown"), _polyline(svg, "gap-line")
    x_of = {p.elapsed: 50 + (640 - 50 - 10) * p.elapsed / 5 for p in reports}
    assert [round(x) for x, _ in unknown] == [round(x_of[0.5]), round(x_of[4.0])]  # from the first report on
    assert [round(x) for x, _ in known] == [round(x_of[4.0]), round(x_of[5])]
    # Nothing known yet: the line still grows with the reports, along the top.
    early = gap_line(reports[:2], "Gap")
    assert [round(x) for x, _ in _polyline(early, "gap-unknown")] == [round(50 + 580 * 0.5 / 1.5), 50 + 580]
    assert _polyline(early, "gap-line") == []
