"""Reports computed after a round is solved, within a time budget: fairness per group and the price of each floor,
shadow prices of money and seats, and why each unmatched candidate was left out with the smallest change that would
have placed them (found by re-solving)."""

from __future__ import annotations

import time

from matching.input.instance import Instance
from matching.model.solution import Out, Solution
from matching.reports.fairness import FloorPrice, GroupRow, floor_prices, group_rows
from matching.reports.prices import Prices, plain_prices, round_prices
from matching.reports.whynot import WhyNot, WhyNotSummary, summarise, why_not_all
from matching.rules.prepare import prepare


class Analysis(Out):
    """Everything a coordinator needs to defend a round, beyond the result itself."""

    fairness: list[GroupRow]
    floor_prices: list[FloorPrice]
    prices: list[Prices]
    price_lines: list[str]
    why_not: list[WhyNot]
    why_not_summary: WhyNotSummary
    seconds: float


def analyse(instance: Instance, solution: Solution, *, seconds: float) -> Analysis:
    """The round's reports; the re-solves share `seconds` (why-not gets what the others leave)."""
    started = time.monotonic()
    prep = prepare(instance)
    prices = round_prices(prep, time_limit=max(1.0, seconds / 4))
    lines = plain_prices(prices, prep=prep, time_limit=max(1.0, seconds / 8))
    floors = []
    if instance.policy.floors:
        per_floor = max(0.5, min(instance.policy.time_limit_s, seconds / 4 / len(instance.policy.floors)))
        floors = floor_prices(instance, solution, seconds=per_floor)
    left = max(0.0, seconds - (time.monotonic() - started))
    per_candidate = max(0.5, min(5.0, left / max(1, len(solution.unmatched))))
    why = why_not_all(instance, solution, seconds_total=left, per_candidate=per_candidate)
    return Analysis(
        fairness=group_rows(instance, solution),
        floor_prices=floors,
        prices=prices,
        price_lines=lines,
        why_not=why,
        why_not_summary=summarise(why),
        seconds=round(time.monotonic() - started, 3),
    )
