"""Reads and writes of region objects, always through the access-scoped statements of models.queries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from api.commitments import limits_kept
from api.deps import audit
from api.errors import Conflict, Forbidden, NotFound, Unprocessable, field_errors
from api.redaction import fields_with_numbers
from api.snapshot import CANDIDATES, OFFERS, Kind, engine_dict, to_row_fields, unit_by_ref
from models import Region, Role, Unit
from models import queries as q
from models.queries import Subject

READERS = {
    "units": q.units_readable_by,
    "supervisors": q.supervisors_readable_by,
    "offers": q.offers_readable_by,
    "candidates": q.candidates_readable_by,
    "programmes": q.programmes_readable_by,
}
WRITERS = {
    "units": q.units_writable_by,
    "supervisors": q.supervisors_writable_by,
    "offers": q.offers_writable_by,
    "candidates": q.candidates_writable_by,
    "programmes": q.programmes_writable_by,
}
CLINIC_CANDIDATE_FIELDS = (
    "profession",
    "cefr",
    "language_proof",
    "specialty",
    "experience_years",
    "available_from",
    "available_until",
    "part_time",
)


def region_for(session: Session, subject: Subject, code: str) -> Region:
    """The region with this code if the subject may see it; 404 otherwise."""
    region = session.scalar(q.regions_readable_by(subject).where(Region.code == code))
    if region is None:
        raise NotFound(f"region {code} not found")
    return region


def scoped(kind: Kind, subject: Subject, region: Region, *, write: bool = False, archived: bool = False) -> Select[Any]:
    """The statement of the kind's objects in the region the subject may read (or write); archived objects (kept
    only for the rounds that name them) instead when `archived`."""
    table: Any = kind.table
    statement = (WRITERS if write else READERS)[kind.name](subject)
    kept = table.archived_at.is_not(None) if archived else table.archived_at.is_(None)
    return statement.where(table.region_id == region.id, kept)


def get_object(session: Session, kind: Kind, subject: Subject, region: Region, ref: str, *, write: bool = False) -> Any:
    """One object by ref: 404 if not readable, 403 if readable but not writable."""
    table: Any = kind.table
    row = session.scalar(scoped(kind, subject, region).where(table.ref == ref))
    if row is None:
        raise NotFound(f"{kind.name[:-1]} {ref} not found in region {region.code}")
    if write and session.scalar(scoped(kind, subject, region, write=True).where(table.id == row.id)) is None:
        raise Forbidden(f"your role may not change this {kind.name[:-1]}")
    return row


def read_view(kind: Kind, subject: Subject, region: Region, row: Any) -> dict[str, Any]:
    """The API form of a row; clinics see a reduced candidate."""
    body = kind.engine_type.model_validate(engine_dict(row)).model_dump(mode="json")
    if kind is CANDIDATES and subject.role is Role.CLINIC:
        return {"id": row.ref, **{k: body.get(k) for k in CLINIC_CANDIDATE_FIELDS}}
    body.update(region=region.code, version=row.version, updated_at=row.updated_at, archived_at=row.archived_at)
    if kind is CANDIDATES:
        body.update(status=row.status, withdrawn_at=row.withdrawn_at, erased_at=row.erased_at)
    return body


def list_objects(
    session: Session,
    kind: Kind,
    subject: Subject,
    region: Region,
    filters: dict[str, Any],
    limit: int,
    offset: int,
    archived: bool = False,
) -> dict[str, Any]:
    """A page of the kind's readable objects (or of the archived ones), filtered by typed columns."""
    table: Any = kind.table
    statement = scoped(kind, subject, region, archived=archived)
    for column, value in filters.items():
        if value is None:
            continue
        if column == "unit":
            statement = statement.join(Unit, Unit.id == table.unit_id).where(Unit.ref == value)
        else:
            statement = statement.where(getattr(table, column) == value)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.scalars(statement.order_by(table.id).limit(limit).offset(offset))
    items = [read_view(kind, subject, region, row) for row in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def validate(kind: Kind, data: dict[str, Any]) -> Any:
    """The engine object for the data, or 422 with field-level errors."""
    try:
        return kind.engine_type.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(list(exc.errors()))
        raise Unprocessable(f"{len(errors)} invalid field(s)", errors=errors) from None


def refuse_identity_numbers(obj: BaseModel) -> None:
    """422 if any field of a region object (its id included) holds a personnummer: identity lives only in the
    candidate's identity, where it is masked, audited and erasable."""
    fields = fields_with_numbers(obj.model_dump(mode="json"))
    if fields:
        message = "holds a personal identity number; give it only as the candidate's identity"
        errors = [{"field": f, "message": message, "type": "no_personnummer"} for f in fields]
        raise Unprocessable(f"{len(fields)} field(s) hold a personal identity number", errors=errors)


def _unit_for(session: Session, kind: Kind, subject: Subject, region: Region, obj: Any) -> Unit | None:
    if not kind.per_unit:
        return None
    unit = session.scalar(q.units_readable_by(subject).where(Unit.region_id == region.id, Unit.ref == obj.unit_id))
    if unit is None:
        raise Unprocessable(
            f"unit {obj.unit_id} not found in region {region.code}",
            errors=[{"field": "unit_id", "message": "unknown unit", "type": "known_id"}],
        )
    return unit


def create_object(session: Session, kind: Kind, subject: Subject, region: Region, obj: BaseModel) -> Any:
    """Store a new object of the region; 409 if its ref is taken."""
    table: Any = kind.table
    if session.scalar(select(table.id).where(table.region_id == region.id, table.ref == obj.id)):  # type: ignore[attr-defined]
        raise Conflict(f"{kind.name[:-1]} {obj.id} already exists in region {region.code}", slug="duplicate")  # type: ignore[attr-defined]
    if not may_create(subject, kind, region):
        raise Forbidden(f"your role may not create {kind.name}")
    refuse_identity_numbers(obj)
    unit = _unit_for(session, kind, subject, region, obj)
    row = table(region_id=region.id, **to_row_fields(kind, obj))  # type: ignore[arg-type]
    if unit is not None:
        row.unit_id = unit.id
    session.add(row)
    session.flush()
    audit(session, subject, f"{kind.name[:-1]}.create", kind.name[:-1], row.ref, region.id)
    return row


def may_create(subject: Subject, kind: Kind, region: Region) -> bool:
    """Whether the subject's role may add objects of the kind to the region (clinics: only their unit's)."""
    if subject.role is Role.CLINIC:
        return kind.per_unit
    return subject.is_admin or subject.region_id == region.id


def update_object(
    session: Session, kind: Kind, subject: Subject, region: Region, row: Any, changes: dict[str, Any]
) -> Any:
    """Apply a partial change, validated as a whole by the engine type."""
    if "id" in changes and changes["id"] != row.ref:
        raise Unprocessable(
            "the id cannot change", errors=[{"field": "id", "message": "immutable", "type": "immutable"}]
        )
    obj = validate(kind, {**engine_dict(row), **changes})
    refuse_identity_numbers(obj)
    unit = _unit_for(session, kind, subject, region, obj)
    with limits_kept(session, region.id, kind.name):
        for name, value in to_row_fields(kind, obj).items():
            setattr(row, name, value)
        if unit is not None:
            row.unit_id = unit.id
        row.version += 1
        session.flush()
    audit(session, subject, f"{kind.name[:-1]}.update", kind.name[:-1], row.ref, region.id, fields=sorted(changes))
    return row


def set_offer_status(session: Session, subject: Subject, region: Region, row: Any, status: str) -> Any:
    """Publish or withdraw an offer."""
    return update_object(session, OFFERS, subject, region, row, {"status": status})


def unit_ref_of(session: Session, region: Region, ref: str) -> Unit | None:
    """A unit by ref (for imports)."""
    return unit_by_ref(session, region.id, ref)
