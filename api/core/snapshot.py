"""The one conversion between stored rows and the engine's input: rows -> Instance (a round's snapshot), and
Instance -> rows (the demo region, test regions, bulk loads). Nothing personal crosses: candidates are refs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.commitments import snapshot_commitments
from matching.input import instance as engine
from matching.input.validate import Issue, check_instance, round_date_issues
from models import Candidate, Offer, Programme, Region, Supervisor, Unit
from models.base import Base


@dataclass(frozen=True)
class Kind:
    """A resource kind: its table, its engine type and whether it belongs to a unit."""

    name: str
    table: type[Base]
    engine_type: type[engine.Frozen]
    per_unit: bool


UNITS = Kind("units", Unit, engine.Unit, per_unit=False)
SUPERVISORS = Kind("supervisors", Supervisor, engine.Supervisor, per_unit=True)
OFFERS = Kind("offers", Offer, engine.Offer, per_unit=True)
CANDIDATES = Kind("candidates", Candidate, engine.Candidate, per_unit=False)
PROGRAMMES = Kind("programmes", Programme, engine.Programme, per_unit=False)
KINDS = {k.name: k for k in (UNITS, SUPERVISORS, OFFERS, CANDIDATES, PROGRAMMES)}


def engine_dict(row: Any) -> dict[str, Any]:
    """The engine's JSON form of a stored object (its ref is the engine id)."""
    return {"id": row.ref, **row.data}


def engine_object(kind: Kind, row: Any) -> Any:
    """The engine object of a stored row. Text stored before control characters were refused reads with U+FFFD in
    their place, so that one old row never breaks a read, an export or a round; raises ValidationError if the row
    breaks another rule."""
    data = engine_dict(row)
    try:
        return kind.engine_type.model_validate(data)
    except ValidationError:
        return kind.engine_type.model_validate(_printable(data))


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return engine.CONTROL_CHARACTERS.sub("\ufffd", value)
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def to_row_fields(kind: Kind, obj: engine.Frozen) -> dict[str, Any]:
    """Typed columns and the `data` document of an engine object."""
    data = obj.model_dump(mode="json", exclude={"id"}, exclude_defaults=True)
    fields: dict[str, Any] = {"ref": obj.id, "data": data}  # type: ignore[attr-defined]
    if kind is OFFERS:
        fields.update(status=obj.status.value, profession=obj.profession.value)  # type: ignore[attr-defined]
    elif kind is CANDIDATES:
        fields["profession"] = obj.profession.value  # type: ignore[attr-defined]
    elif kind in (UNITS, PROGRAMMES):
        fields["name"] = obj.name  # type: ignore[attr-defined]
    return fields


def _rows(session: Session, table: type[Any], region_id: int, *where: Any) -> list[Any]:
    # Archived objects are kept only for the stored rounds that name them; a new round never sees them (and
    # _drop_dangling drops the references to them).
    live = table.archived_at.is_(None)
    return list(session.scalars(select(table).where(table.region_id == region_id, live, *where).order_by(table.id)))


def _without_archived_pins(session: Session, region_id: int, policy: engine.Policy) -> engine.Policy:
    """Pins (a re-run inherits its round's) that name a candidate or offer deleted since no longer apply."""
    archived = {
        (table, ref)
        for table in (Candidate, Offer)
        for ref in session.scalars(
            select(table.ref).where(table.region_id == region_id, table.archived_at.is_not(None))
        )
    }
    pins = tuple(p for p in policy.pins if not {(Candidate, p.candidate_id), (Offer, p.offer_id)} & archived)
    return policy.model_copy(update={"pins": pins})


@dataclass(frozen=True)
class Snapshot:
    """A round's frozen input and what was left out of it, or is closed at its date, to keep it buildable."""

    instance: engine.Instance
    warnings: list[Issue]


def _valid(kind: Kind, rows: list[Any], warnings: list[Issue]) -> list[dict[str, Any]]:
    """The rows' engine objects; a row that no longer validates (stored before a newer rule) is left out."""
    out = []
    for row in rows:
        try:
            obj = engine_object(kind, row)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(object)"
            message = f"left out of the round: no longer valid ({first['msg']})"
            warnings.append(Issue(kind.name, row.ref, field, "stored_object_invalid", message))
            continue
        out.append(obj.model_dump(mode="json"))
    return out


def _keep_known(
    objects: list[dict[str, Any]], kind: str, field: str, allowed: Any, warnings: list[Issue], what: str
) -> None:
    """Drop the ids in each object's list `field` that `allowed(object, id)` refuses, with a warning for each."""
    for obj in objects:
        kept = []
        for value in obj.get(field, []):
            if allowed(obj, value):
                kept.append(value)
            else:
                message = f"{value!r} dropped: {what}"
                warnings.append(Issue(kind, obj["id"], field, "dangling_reference", message))
        obj[field] = kept


def _drop_dangling(
    session: Session, region: Region, parts: dict[str, list[dict[str, Any]]], warnings: list[Issue]
) -> None:
    """References stored data may hold that no longer fit (a supervisor moved to another unit, a ranked candidate
    or a wish that names nothing) are dropped with a warning: what one clinic writes never stops the region's
    round."""
    supervisor_unit = {s["id"]: s["unit_id"] for s in parts["supervisors"]}
    wishable = {o["id"] for o in parts["offers"]} | {u["id"] for u in parts["units"]}
    waiting = {c["id"] for c in parts["candidates"]}
    # Ranked candidates placed (or otherwise out of the queue) since are simply not in this round.
    gone = set(session.scalars(select(Candidate.ref).where(Candidate.region_id == region.id))) - waiting
    for offer in parts["offers"]:
        offer["clinic_ranking"] = [c for c in offer.get("clinic_ranking", []) if c not in gone]

    def at_offer_unit(offer: dict[str, Any], sid: str) -> bool:
        return supervisor_unit.get(sid) == offer["unit_id"]

    _keep_known(parts["offers"], "offers", "supervisor_ids", at_offer_unit, warnings, "no supervisor at its unit")
    _keep_known(parts["offers"], "offers", "clinic_ranking", lambda _, c: c in waiting, warnings, "no such candidate")
    _keep_known(parts["candidates"], "candidates", "wishes", lambda _, w: w in wishable, warnings, "no such offer/unit")


def _policy_in_round(policy: engine.Policy, candidates: set[str], offers: set[str]) -> engine.Policy:
    """Forbids and kept proposals of candidates placed since, or of offers gone since, no longer apply."""

    def still_here(pairs: tuple[engine.Pair, ...]) -> tuple[engine.Pair, ...]:
        return tuple(p for p in pairs if p.candidate_id in candidates and p.offer_id in offers)

    return policy.model_copy(update={"forbids": still_here(policy.forbids), "keep": still_here(policy.keep)})


def build_instance(session: Session, region: Region, round_date: date, policy: engine.Policy, name: str) -> Snapshot:
    """A round's frozen input: the region's units, supervisors, all offers, waiting candidates, programmes (closed ones
    too) and the commitments of placements accepted earlier; with warnings for what was left out and for programmes
    and offers closed at the round date."""
    warnings: list[Issue] = []
    parts: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS.values():
        where = [Candidate.status == "waiting"] if kind is CANDIDATES else []
        parts[kind.name] = _valid(kind, _rows(session, kind.table, region.id, *where), warnings)
    _drop_dangling(session, region, parts, warnings)
    policy = _policy_in_round(policy, {c["id"] for c in parts["candidates"]}, {o["id"] for o in parts["offers"]})
    policy = _without_archived_pins(session, region.id, policy)
    instance = engine.Instance.model_validate(
        {
            "name": name,
            "round_date": round_date,
            **parts,
            # Placements accepted earlier hold their money and supervisor months in this round too.
            "commitments": [c.model_dump(mode="json") for c in snapshot_commitments(session, region.id)],
            "policy": policy.model_dump(mode="json"),
        }
    )
    check_instance(instance)
    return Snapshot(instance, warnings + round_date_issues(instance))


def import_instance(session: Session, region: Region, instance: engine.Instance) -> dict[str, int]:
    """Store every object of an engine instance as rows of the region (ids become refs)."""
    units: dict[str, Unit] = {}
    for unit in instance.units:
        row = Unit(region_id=region.id, **to_row_fields(UNITS, unit))
        session.add(row)
        units[unit.id] = row
    session.flush()
    for sup in instance.supervisors:
        session.add(Supervisor(region_id=region.id, unit_id=units[sup.unit_id].id, **to_row_fields(SUPERVISORS, sup)))
    for offer in instance.offers:
        session.add(Offer(region_id=region.id, unit_id=units[offer.unit_id].id, **to_row_fields(OFFERS, offer)))
    for cand in instance.candidates:
        session.add(Candidate(region_id=region.id, **to_row_fields(CANDIDATES, cand)))
    for prog in instance.programmes:
        session.add(Programme(region_id=region.id, **to_row_fields(PROGRAMMES, prog)))
    session.flush()
    return {
        "units": len(instance.units),
        "supervisors": len(instance.supervisors),
        "offers": len(instance.offers),
        "candidates": len(instance.candidates),
        "programmes": len(instance.programmes),
    }
