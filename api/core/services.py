"""Reads and writes of region objects, always through the access-scoped statements of models.queries."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from api.core.audit import audit
from api.core.commitments import limits_kept
from api.core.errors import Conflict, Forbidden, NotFound, Problem, Unprocessable, field_errors
from api.core.redaction import fields_with_numbers
from api.core.snapshot import CANDIDATES, OFFERS, Kind, engine_dict, engine_object, to_row_fields
from models import AuditEvent, Candidate, Offer, Region, Role, Supervisor, Unit
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


def count_rows(session: Session, statement: Select[Any]) -> int:
    """How many rows a statement selects (before any limit). The subquery keeps only the first column (the row id of
    an entity's statement): a count has no use for the rest (a round's snapshot, say)."""
    narrow = statement.with_only_columns(*list(statement.selected_columns)[:1], maintain_column_froms=True)
    return int(session.scalar(select(func.count()).select_from(narrow.subquery())) or 0)


def page_of(
    session: Session, statement: Select[Any], order_by: Any, limit: int, offset: int, view: Callable[[Any], Any]
) -> dict[str, Any]:
    """One page of a list route: the rows in `order_by` order as `view` shows them, and the total."""
    rows = session.scalars(statement.order_by(order_by).limit(limit).offset(offset))
    return {
        "items": [view(row) for row in rows],
        "total": count_rows(session, statement),
        "limit": limit,
        "offset": offset,
    }


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
    body = engine_object(kind, row).model_dump(mode="json")
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
    return page_of(session, statement, table.id, limit, offset, lambda row: read_view(kind, subject, region, row))


def validate(kind: Kind, data: dict[str, Any]) -> Any:
    """The engine object for the data, or 422 with field-level errors (a personnummer in it is one)."""
    try:
        obj = kind.engine_type.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(list(exc.errors()))
        raise Unprocessable(f"{len(errors)} invalid field(s)", errors=errors) from None
    refuse_identity_numbers(obj)
    return obj


def refuse_identity_numbers(obj: BaseModel) -> None:
    """422 if any field of a region object (its id included) holds a personnummer: identity lives only in the
    candidate's identity, where it is masked, audited and erasable."""
    fields = fields_with_numbers(obj.model_dump(mode="json"))
    if fields:
        message = "holds a personal identity number; give it only as the candidate's identity"
        errors = [{"field": f, "message": message, "type": "no_personnummer"} for f in fields]
        raise Unprocessable(f"{len(fields)} field(s) hold a personal identity number", errors=errors)


class RegionRefs:
    """The ids of one region that the subject's writes may refer to, each table loaded once and only when asked."""

    def __init__(self, session: Session, subject: Subject, region: Region) -> None:
        self.session, self.subject, self.region = session, subject, region

    def _pairs(self, statement: Select[Any], *columns: Any) -> list[Any]:
        table = columns[0].class_
        return list(
            self.session.execute(statement.where(table.region_id == self.region.id).with_only_columns(*columns))
        )

    @cached_property
    def units(self) -> dict[str, int]:
        """Unit ref -> row id, of the units the subject may see (a clinic: its own)."""
        return {ref: id_ for ref, id_ in self._pairs(q.units_readable_by(self.subject), Unit.ref, Unit.id)}

    @cached_property
    def supervisor_units(self) -> dict[str, int]:
        """Supervisor ref -> its unit's row id, of the supervisors the subject may see."""
        statement = q.supervisors_readable_by(self.subject)
        return {ref: unit for ref, unit in self._pairs(statement, Supervisor.ref, Supervisor.unit_id)}

    @cached_property
    def candidates(self) -> set[str]:
        """Refs of the candidates the subject may see (a clinic: those proposed to it)."""
        return {ref for (ref,) in self._pairs(q.candidates_readable_by(self.subject), Candidate.ref)}

    @cached_property
    def offers(self) -> set[str]:
        """Refs of the offers the subject may see."""
        return {ref for (ref,) in self._pairs(q.offers_readable_by(self.subject), Offer.ref)}


def _unknown(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message, "type": "known_id"}


def reference_errors(refs: RegionRefs, kind: Kind, obj: Any, before: Any | None = None) -> list[dict[str, str]]:
    """Every id the object names that is unknown, out of the subject's sight, or inconsistent (a supervisor of
    another unit), as field errors. An id out of sight is answered like one that does not exist, so nothing leaks.
    Only what the write changes is checked: a reference that went stale since (a supervisor moved away, a ranked
    candidate the clinic no longer sees) never blocks an unrelated edit such as a withdrawal; rounds drop it."""
    errors = []
    same_unit = before is not None and before.unit_id == obj.unit_id if kind.per_unit else False
    if kind.per_unit and not same_unit and obj.unit_id not in refs.units:
        errors.append(_unknown("unit_id", "unknown unit"))
    if kind is OFFERS:
        unit = refs.units.get(obj.unit_id)
        kept = set(before.supervisor_ids) if same_unit else set()
        for i, sid in enumerate(obj.supervisor_ids):
            if sid not in kept and (unit is None or refs.supervisor_units.get(sid) != unit):
                errors.append(_unknown(f"supervisor_ids[{i}]", "no such supervisor at the offer's unit"))
        ranked_before = set(before.clinic_ranking) if before is not None else set()
        for i, cid in enumerate(obj.clinic_ranking):
            if cid not in ranked_before and cid not in refs.candidates:
                errors.append(_unknown(f"clinic_ranking[{i}]", "no such candidate among those you may see"))
    elif kind is CANDIDATES:
        wished_before = set(before.wishes) if before is not None else set()
        for i, wish in enumerate(obj.wishes):
            if wish not in wished_before and wish not in refs.offers and wish not in refs.units:
                errors.append(_unknown(f"wishes[{i}]", "no such offer or unit in the region"))
    return errors


def check_references(refs: RegionRefs, kind: Kind, obj: Any, before: Any | None = None) -> None:
    """422 naming every broken reference of the object (see reference_errors)."""
    errors = reference_errors(refs, kind, obj, before)
    if errors:
        raise Unprocessable(f"{len(errors)} reference(s) to unknown objects", errors=errors)


def taken_problem(session: Session, kind: Kind, subject: Subject, region: Region, row: Any) -> Problem:
    """The answer to a new object whose ref is taken: 409 if the subject can see the holder, else the 404 a read
    of it gives (so a clinic learns no more about another unit's objects than a read would tell it)."""
    table: Any = kind.table
    visible = scoped(kind, subject, region, archived=row.archived_at is not None)
    if session.scalar(visible.where(table.id == row.id)) is None:
        return NotFound(f"{kind.name[:-1]} {row.ref} not found in region {region.code}")
    gone = " (archived: stored rounds know it by this id)" if row.archived_at is not None else ""
    return Conflict(f"{kind.name[:-1]} {row.ref} already exists in region {region.code}{gone}", slug="duplicate")


def create_object(
    session: Session, kind: Kind, subject: Subject, region: Region, obj: BaseModel, refs: RegionRefs | None = None
) -> Any:
    """Store a new object of the region: 409 if its ref is taken by one the subject can see (404 otherwise), 422
    if it names unknown objects."""
    table: Any = kind.table
    taken = session.scalar(select(table).where(table.region_id == region.id, table.ref == obj.id))  # type: ignore[attr-defined]
    if taken is not None:
        raise taken_problem(session, kind, subject, region, taken)
    if not may_create(subject, kind, region):
        raise Forbidden(f"your role may not create {kind.name}")
    refuse_identity_numbers(obj)
    refs = refs or RegionRefs(session, subject, region)
    check_references(refs, kind, obj)
    return insert_object(session, kind, subject, region, obj, refs)


def insert_object(session: Session, kind: Kind, subject: Subject, region: Region, obj: Any, refs: RegionRefs) -> Any:
    """Add a checked object as a row of the region, audited."""
    table: Any = kind.table
    row = table(region_id=region.id, **to_row_fields(kind, obj))
    if kind.per_unit:
        row.unit_id = refs.units[obj.unit_id]
    session.add(row)
    session.flush()
    audit(session, subject, f"{kind.name[:-1]}.create", kind.name[:-1], row.ref, region.id)
    return row


def insert_objects(
    session: Session, kind: Kind, subject: Subject, region: Region, objs: list[Any], refs: RegionRefs
) -> None:
    """Add many checked objects (an import) in one statement, and their audit events in another."""
    if not objs:
        return
    table: Any = kind.table
    rows = []
    for obj in objs:
        row = {"region_id": region.id, **to_row_fields(kind, obj)}
        if kind.per_unit:
            row["unit_id"] = refs.units[obj.unit_id]
        rows.append(row)
    session.execute(insert(table), rows)
    singular = kind.name[:-1]
    actor = {"actor_id": subject.user_id, "actor_role": subject.role.value, "region_id": region.id, "detail": {}}
    events = [{"action": f"{singular}.create", "object_type": singular, "object_id": obj.id, **actor} for obj in objs]
    session.execute(insert(AuditEvent), events)


def may_create(subject: Subject, kind: Kind, region: Region) -> bool:
    """Whether the subject's role may add objects of the kind to the region (clinics: only their unit's)."""
    if subject.role is Role.CLINIC:
        return kind.per_unit
    return subject.is_admin or subject.region_id == region.id


def update_object(
    session: Session, kind: Kind, subject: Subject, region: Region, row: Any, changes: dict[str, Any]
) -> Any:
    """Apply a partial change, validated as a whole by the engine type and checked for references."""
    if "id" in changes and changes["id"] != row.ref:
        raise Unprocessable(
            "the id cannot change", errors=[{"field": "id", "message": "immutable", "type": "immutable"}]
        )
    obj = validate(kind, {**engine_dict(row), **changes})
    refs = RegionRefs(session, subject, region)
    check_references(refs, kind, obj, before=stored(kind, row))
    with limits_kept(session, region.id, kind.name):
        replace_object(session, kind, subject, region, row, obj, refs, fields=sorted(changes))
    return row


def stored(kind: Kind, row: Any) -> Any:
    """The engine object of a stored row (None if it no longer validates, e.g. stored before a newer rule)."""
    try:
        return engine_object(kind, row)
    except ValidationError:
        return None


def replace_object(
    session: Session,
    kind: Kind,
    subject: Subject,
    region: Region,
    row: Any,
    obj: Any,
    refs: RegionRefs,
    fields: list[str],
) -> bool:
    """Write a checked object over its row; False (nothing written, no new version) if nothing changed."""
    new = to_row_fields(kind, obj)
    unit_id = refs.units[obj.unit_id] if kind.per_unit else None
    if new["data"] == row.data and (unit_id is None or unit_id == row.unit_id):
        return False
    for name, value in new.items():
        setattr(row, name, value)
    if unit_id is not None:
        row.unit_id = unit_id
    row.version += 1
    session.flush()
    audit(session, subject, f"{kind.name[:-1]}.update", kind.name[:-1], row.ref, region.id, fields=fields)
    return True


def set_offer_status(session: Session, subject: Subject, region: Region, row: Any, status: str) -> Any:
    """Publish or withdraw an offer."""
    return update_object(session, OFFERS, subject, region, row, {"status": status})
