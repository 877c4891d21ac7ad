"""Calendar months as integers: a placement occupies whole months counted from its start's month."""

from __future__ import annotations

import calendar
from datetime import date

import numpy as np

NEVER = np.iinfo(np.int64).max // 4  # an ordinal later than any date


def month_index(day: date) -> int:
    """Months since year 0; consecutive months differ by one."""
    return day.year * 12 + day.month - 1


def last_full_month(day: date | None) -> int:
    """The last month that ends on or before `day` (a far-future month for None)."""
    if day is None:
        return NEVER
    last_day = calendar.monthrange(day.year, day.month)[1]
    return month_index(day) if day.day == last_day else month_index(day) - 1


def month_label(month: int) -> str:
    """'2027-03' for a month index."""
    year, month0 = divmod(month, 12)
    return f"{year}-{month0 + 1:02d}"
