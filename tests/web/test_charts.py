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
