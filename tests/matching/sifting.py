"""GLOP's sifting (`matching.solvers.simplex._sift`) made to run out of time in a chosen round, for the tests of
what a master cut short keeps."""

from __future__ import annotations

import pytest

from matching.solvers import simplex


def sifting_cut_at(monkeypatch: pytest.MonkeyPatch, call: int) -> list[int]:
    """Sifting for masters of any size, and GLOP out of time at the `call`-th round of every sifting (the real GLOP
    solves the others): the rounds' sizes, as they come."""
    monkeypatch.setattr(simplex, "SIFT_MIN_COLUMNS", 0)
    monkeypatch.setattr(simplex, "SIFT_COLUMNS_PER_ROW", 0.0)
    monkeypatch.setattr(simplex, "SIFT_FIRST", 0.02)
    rounds: list[int] = []
    solve, sift = simplex._solve, simplex._sift

    def sifting(arrays: simplex.Arrays, seconds: float, glop: str, start: simplex.Basis) -> simplex.Simplex:
        rounds.clear()
        return sift(arrays, seconds, glop, start)

    def out_of_time(arrays: simplex.Arrays, seconds: float, glop: str, start: simplex.Basis | None) -> simplex.Simplex:
        if simplex.SIFT_GLOP not in glop:
            return solve(arrays, seconds, glop, start)
        rounds.append(len(arrays[0]))
        if len(rounds) == call:
            return simplex._failed(len(arrays[0]), len(arrays[3]), "TERMINATION_REASON_FEASIBLE", 7)
        return solve(arrays, seconds, glop, start)

    monkeypatch.setattr(simplex, "_sift", sifting)
    monkeypatch.setattr(simplex, "_solve", out_of_time)
    return rounds
