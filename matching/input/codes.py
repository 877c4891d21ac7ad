"""Swedish reference codes: counties, municipalities with their seats, organisation numbers and HSA-ids."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from stdnum.se import orgnr as _orgnr


@dataclass(frozen=True, slots=True)
class Municipality:
    """An SCB municipality and the WGS84 coordinates of its seat."""

    code: str
    name: str
    county: str
    latitude: float
    longitude: float


@cache
def municipalities() -> dict[str, Municipality]:
    """The 290 municipalities by SCB code, from the packaged reference CSV."""
    text = resources.files("matching").joinpath("data/municipalities.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return {
        row["municipality_code"]: Municipality(
            code=row["municipality_code"],
            name=row["municipality_name"],
            county=row["county_code"],
            latitude=float(row["latitude"]),
            longitude=float(row["longitude"]),
        )
        for row in rows
    }


@cache
def county_codes() -> frozenset[str]:
    """The 21 county (län) codes in use."""
    return frozenset(m.county for m in municipalities().values())


def is_county_code(value: str) -> bool:
    """True for a two-digit county code in use, e.g. '01' for Stockholm."""
    return value in county_codes()


def is_municipality_code(value: str) -> bool:
    """True for a four-digit SCB municipality code in use."""
    return value in municipalities()


def is_orgnr(value: str) -> bool:
    """True for a valid Swedish organisation number (10 digits, Luhn, group digits >= 20)."""
    return bool(_orgnr.is_valid(value))


_HSA = re.compile(r"^SE(?:16)?(\d{10})-[A-Za-z0-9]+$")


def is_hsa_id(value: str) -> bool:
    """True for an HSA-id: SE + the catalogue owner's organisation number + '-' + suffix, at most 31 characters."""
    match = _HSA.match(value)
    return bool(match) and len(value) <= 31 and is_orgnr(match.group(1))  # type: ignore[union-attr]
