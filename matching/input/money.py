"""Whole-krona arithmetic: shares (co-funding, part time) are applied exactly as written and rounded half up."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def decimal_ratio(value: float) -> tuple[int, int]:
    """A share as the decimal it is written as, exactly: 0.29 -> (29, 100) (not the binary float's 0.28999...)."""
    return Decimal(repr(float(value))).as_integer_ratio()


def half_up(amount: IntArray, numerator: int | IntArray, denominator: int | IntArray) -> IntArray:
    """amount x numerator / denominator rounded half up to a whole krona, in integer arithmetic."""
    a, n, d = (np.asarray(v, dtype=np.int64) for v in (amount, numerator, denominator))
    if a.size and int(np.abs(a).max()) * max(1, int(n.max())) >= 2**61:
        a, n, d = (v.astype(object) for v in (a, n, d))  # Python integers where int64 could overflow
    return np.asarray((2 * a * n + d) // (2 * d), dtype=np.int64)
