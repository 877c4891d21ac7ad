"""The one conversion between stored rows and the engine's input: rows -> Instance (a round's snapshot), and
Instance -> rows (the demo region, test regions, bulk loads). Nothing personal crosses: candidates are refs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.commitments import snapshot_commitments
from matching import instance as engine
from matching.validate import check_instance
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


def unit_by_ref(session: Session, region_id: int, ref: str) -> Unit | None:
    """A unit of the region by its ref."""
    return session.scalar(select(Unit).where(Unit.region_id == region_id, Unit.ref == ref))


def _rows(session: Session, table: type[Any], region_id: int, *where: Any) -> list[Any]:
    # Archived objects are kept only for the stored rounds that name them; a new round never sees them.
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


def build_instance(
    session: Session, region: Region, round_date: date, policy: engine.Policy, name: str
) -> engine.Instance:
    """A round's frozen input: the region's units, supervisors, all offers, waiting candidates, programmes (closed ones
    too) and the commitments of placements accepted earlier."""
    candidates = [engine_dict(c) for c in _rows(session, Candidate, region.id, Candidate.status == "waiting")]
    known = {c["id"] for c in candidates}
    offers = []
    for row in _rows(session, Offer, region.id):
        offer = engine_dict(row)
        # Ranked candidates who were placed since are no longer in the round.
        offer["clinic_ranking"] = [c for c in offer.get("clinic_ranking", []) if c in known]
        offers.append(offer)
    offer_ids = {o["id"] for o in offers}
    units = [engine_dict(u) for u in _rows(session, Unit, region.id)]
    supervisors = [engine_dict(s) for s in _rows(session, Supervisor, region.id)]
    # Supervisors and offers deleted or archived since are no longer named by the offers and wishes that named them.
    known_supervisors = {s["id"] for s in supervisors}
    for offer in offers:
        offer["supervisor_ids"] = [s for s in offer.get("supervisor_ids", []) if s in known_supervisors]
    wishable = offer_ids | {u["id"] for u in units}
    for cand in candidates:
        cand["wishes"] = [w for w in cand.get("wishes", []) if w in wishable]

    # Forbids and kept proposals of candidates placed since, or of offers removed since, no longer apply.
    def still_here(pairs: tuple[engine.Pair, ...]) -> tuple[engine.Pair, ...]:
        return tuple(p for p in pairs if p.candidate_id in known and p.offer_id in offer_ids)

    policy = policy.model_copy(update={"forbids": still_here(policy.forbids), "keep": still_here(policy.keep)})
    policy = _without_archived_pins(session, region.id, policy)
    instance = engine.Instance.model_validate(
        {
            "name": name,
            "round_date": round_date,
            "units": units,
            "supervisors": supervisors,
            "offers": offers,
            "candidates": candidates,
            "programmes": [engine_dict(p) for p in _rows(session, Programme, region.id)],
            # Placements accepted earlier hold their money and supervisor months in this round too.
            "commitments": [c.model_dump(mode="json") for c in snapshot_commitments(session, region.id)],
            "policy": policy.model_dump(mode="json"),
        }
    )
    check_instance(instance)
    return instance


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
