"""Swedish personal identity numbers: validation (Luhn, date, samordningsnummer) and masking."""

from __future__ import annotations

import re
from datetime import date

_FORMAT = re.compile(r"^(\d{2})?(\d{2})(\d{2})(\d{2})[-+]?(\d{3})(\d)$")


def luhn_digit(nine: str) -> int:
    """The check digit of nine digits (personnummer style: weights 2,1,2,...)."""
    total = 0
    for i, ch in enumerate(nine):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def normalise(value: str) -> str | None:
    """YYYYMMDD-NNNN for a valid personnummer or samordningsnummer (day + 60), else None."""
    match = _FORMAT.match(value.strip())
    if not match:
        return None
    century, yy, mm, dd, serial, check = match.groups()
    if luhn_digit(f"{yy}{mm}{dd}{serial}") != int(check):
        return None
    day = int(dd) - 60 if int(dd) > 60 else int(dd)
    full_century = century or ("19" if int(yy) > date.today().year % 100 else "20")
    try:
        date(int(full_century + yy), int(mm), day)
    except ValueError:
        return None
    return f"{full_century}{yy}{mm}{dd}-{serial}{check}"


def mask(value: str) -> str:
    """Show only the date part: YYYYMMDD-****."""
    return value[:9] + "****"


def fake_test_personnummer(index: int) -> str:
    """The index-th formally valid TEST personnummer: birth numbers 980-999, the range of Skatteverket's published
    test numbers (never assigned to real people). For demo data only; never real identities."""
    day = date(1980, 1, 1).toordinal() + (index // 20) * 37
    born = date.fromordinal(day)
    serial = f"{980 + index % 20:03d}"
    nine = born.strftime("%y%m%d") + serial
    return f"{born:%Y%m%d}-{serial}{luhn_digit(nine)}"
