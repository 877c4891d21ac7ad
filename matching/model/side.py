"""Side rules a coordinator may add to a round: floors per group and no blocking pairs.

Both are linear rows over the pair variables, `sum(coef * x[pair]) >= rhs`, shared by the CP-SAT model, the
HiGHS model and the checks of starting points (a greedy start may break them; the solver must not fall back to it).
"""

from __future__ import annotations

import numpy as np

from matching.input.validate import InvalidInstance, Issue
from matching.model.stability import TooManyTerms, no_blocking_rows
from matching.rules.groups import floor_targets
from matching.rules.prepare import Prepared
from matching.rules.tables import IntArray

Row = tuple[IntArray, IntArray, int]


def floor_rows(prep: Prepared) -> list[Row]:
    """One row per floor: at least `required` of the group's candidates placed."""
    rows = []
    for _, group, required in floor_targets(prep.instance):
        in_group = np.zeros(len(prep.instance.candidates), dtype=bool)
        in_group[group] = True
        pairs = np.flatnonzero(in_group[prep.pairs.cand]).astype(np.int64)
        rows.append((pairs, np.ones(len(pairs), dtype=np.int64), required))
    return rows


def side_rows(prep: Prepared) -> list[Row]:
    """Every side row of the round's policy."""
    rows = floor_rows(prep)
    if prep.instance.policy.forbid_blocking:
        try:
            rows += no_blocking_rows(prep)
        except TooManyTerms as exc:
            raise InvalidInstance([Issue("policy", None, "forbid_blocking", "stable_model_size", str(exc))]) from None
    return rows


def has_side_rules(prep: Prepared) -> bool:
    """True when the policy adds floors or forbids blocking pairs."""
    policy = prep.instance.policy
    return bool(policy.floors) or policy.forbid_blocking


def satisfied(rows: list[Row], chosen: IntArray | list[int]) -> bool:
    """True when the chosen pairs meet every row."""
    x = np.zeros(max([0, *(int(p.max()) + 1 for p, _, _ in rows if len(p))]), dtype=np.int64)
    picked = np.asarray(chosen, dtype=np.int64)
    x[picked[picked < len(x)]] = 1
    return all(int((coef * x[pairs]).sum()) >= rhs for pairs, coef, rhs in rows)
