"""What a response may hold for its reader: every id it mentions (in any field, key or sentence) must be one the
reader may see, and a clinic user's answers must carry none of the region-wide fields.

A clinic user may see its own unit, that unit's offers and supervisors (and the ids they name), the candidates
proposed to it in published rounds, and the programmes and earmarks that pay its proposals and commitments. The
region's ids are read fresh as the admin, so the check follows what the tests change."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from openpyxl import load_workbook

from tests.service.conftest import Service

R = "/regions/01"
KINDS = ("units", "supervisors", "offers", "candidates", "programmes")
CLINIC_UNITS = {"clinic_u1": "U1", "clinic_u2": "U2"}
# Fields that only a region-wide reader may get (a clinic user's answers never hold them with a value).
REGION_FIELDS = frozenset(
    {
        "result",
        "unmatched",
        "money",
        "floors",
        "input_hash",
        "previous_round_id",
        "competitor_id",
        "rival_id",
        "budget",
        "personnummer",
        "analysis_error",
    }
)
TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def _all(service: Service, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = service.call("admin", "GET", path, params={**params, "limit": 200, "offset": len(items)}).json()
        items += page["items"]
        if len(items) >= page["total"]:
            return items


@dataclass(frozen=True)
class RegionIds:
    """Every id of region 01, and what each clinic user may see of them."""

    every: frozenset[str]
    clinic: dict[str, frozenset[str]]


def region_ids(service: Service) -> RegionIds:
    """Read region 01 as the admin."""
    objects = {kind: _all(service, f"{R}/{kind}") + _all(service, f"{R}/{kind}", archived=True) for kind in KINDS}
    every = {o["id"] for kind in KINDS for o in objects[kind]}
    every |= {e["id"] for p in objects["programmes"] for e in p.get("earmarks", [])}
    published = [r["id"] for r in _all(service, f"{R}/rounds", status="published")]
    proposals = [p for rid in published for p in _all(service, f"{R}/rounds/{rid}/proposals")]
    commitments = _all(service, f"{R}/commitments")
    clinic = {}
    for user, unit in CLINIC_UNITS.items():
        offers = [o for o in objects["offers"] if o["unit_id"] == unit]
        supervisors = [s for s in objects["supervisors"] if s["unit_id"] == unit]
        own = {unit} | {o["id"] for o in offers} | {s["id"] for s in supervisors}
        own |= {ref for o in offers for ref in (*o.get("supervisor_ids", []), *o.get("clinic_ranking", []))}
        offer_ids = {o["id"] for o in offers}
        for item in [p for p in proposals if p["offer_ref"] in offer_ids] + [
            c for c in commitments if c["offer_ref"] in offer_ids
        ]:
            own |= {item["candidate_ref"], item["supervisor_ref"], item["programme_ref"], item.get("earmark_ref")}
        clinic[user] = frozenset(own - {None})
    return RegionIds(frozenset(every), clinic)


def texts(response: httpx.Response) -> Iterator[str]:
    """Every piece of text in a response: JSON keys and values, CSV, or the cells of an XLSX workbook."""
    kind = response.headers.get("content-type", "")
    if "spreadsheetml" in kind:
        book = load_workbook(io.BytesIO(response.content), read_only=True)
        for sheet in book.worksheets:
            yield sheet.title
            for row in sheet.iter_rows(values_only=True):
                yield from (str(cell) for cell in row if cell is not None)
        book.close()
        return
    yield response.text


def _keys_with_values(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if inner not in (None, [], {}, ""):
                yield key
            yield from _keys_with_values(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys_with_values(inner)


def problems(ids: RegionIds, user: str | None, response: httpx.Response) -> list[str]:
    """What the response holds that its reader may not see (empty: nothing)."""
    found = {token for text in texts(response) for token in TOKEN.findall(text)} & ids.every
    out = []
    if user in ids.clinic:
        out += [f"id {ref} is not {user}'s" for ref in sorted(found - ids.clinic[user])]
        if "json" in response.headers.get("content-type", ""):
            out += [f"field {key}" for key in sorted(set(_keys_with_values(response.json())) & REGION_FIELDS)]
    if user == "coord01" and "json" in response.headers.get("content-type", ""):
        regions = set(_values_of(response.json(), "region")) - {"01"}
        out += [f"region {code}" for code in sorted(regions)]
    return out


def _values_of(value: Any, name: str) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == name and isinstance(inner, str):
                yield inner
            yield from _values_of(inner, name)
    elif isinstance(value, list):
        for inner in value:
            yield from _values_of(inner, name)


class ScopeCheck:
    """Checks responses against the region's ids, read again when the data may have changed since."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.ids = region_ids(service)

    def __call__(self, user: str | None, response: httpx.Response, where: object = "") -> None:
        """Fail if a successful response holds what its reader may not see."""
        if response.status_code >= 300:
            return
        found = problems(self.ids, user, response)
        if found:  # perhaps a proposal was published or an object created since: look again before failing
            self.ids = region_ids(self.service)
            found = problems(self.ids, user, response)
        assert not found, (where, user, found, response.text[:2000])
