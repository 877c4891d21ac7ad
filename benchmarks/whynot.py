"""The why-not target: every unmatched candidate's verified smallest change (or a proven "none of the tried changes")
within the analysis budget. Solves the round, then runs `why_not_all` as `vardmatch analyse` does and counts."""

from __future__ import annotations

import time
from pathlib import Path

from matching.input.validate import load_instance
from matching.reports.whynot import summarise, why_not_all
from matching.solvers.solve import solve


def measure(path: Path, *, time_limit: float, seconds: float) -> dict[str, float | int | str]:
    """Solve the instance at `time_limit` (wall clock, as the benchmarks do), then why-not for every unmatched
    candidate within `seconds`: how many got a verified change, a "none of the tried changes placed them" and
    nothing ("not computed"), and how long it took."""
    instance = load_instance(path)
    instance = instance.with_policy(time_limit_s=time_limit, deterministic=False)
    solution = solve(instance)
    started = time.monotonic()
    per_candidate = max(0.5, min(5.0, seconds / max(1, len(solution.unmatched))))
    results = why_not_all(instance, solution, seconds_total=seconds, per_candidate=per_candidate)
    elapsed = time.monotonic() - started
    summary = summarise(results)
    answered = summary.verified + summary.not_placed
    # A "none placed" is complete when every change planned for the candidate was tried (or there was none to try),
    # and cut short when the budget ended after some of them.
    cut = sum(1 for w in results if w.computed and not w.verified and w.note.startswith("time budget used up"))
    return {
        "instance": path.stem,
        "placements": solution.placements,
        "unmatched": summary.total,
        "verified": summary.verified,
        "none_placed": summary.not_placed,
        "none_all_tried": summary.not_placed - cut,
        "none_cut_short": cut,
        "not_computed": summary.not_computed,
        "answered": answered,
        "seconds": round(elapsed, 2),
        "budget": seconds,
        "target_met": "yes" if answered == summary.total and not cut and elapsed <= seconds * 1.1 else "no",
    }
