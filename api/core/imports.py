"""Importing region objects from CSV or XLSX: read within limits, check every row (fields, references, the
export's bookkeeping columns), then write all rows or, with `partial`, the valid ones.

The route is a plain function, so FastAPI runs it in a worker thread, never on the event loop; the CPU-heavy
reading and checking of rows runs in a separate, niced process (ImportProcess), so that a big file stalls no other
request.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core import services, tabular
from api.core.audit import audit
from api.core.commitments import limits_kept
from api.core.errors import Forbidden, PayloadTooLarge, Unprocessable
from api.core.settings import Settings
from api.core.snapshot import CANDIDATES, KINDS, Kind
from models import Region
from models.queries import Subject

# Columns an export adds to the engine's fields: checked (region, version) or ignored (updated_at, and a
# candidate's status, which rounds and answers set), never imported.
BOOKKEEPING = ("region", "version", "updated_at")
# Excel drops the leading zeros of a code it reads from CSV ("0180" becomes 180): put them back.
CODE_WIDTHS = {"region": 2, "county": 2, "residence_county": 2, "municipality": 4, "residence_municipality": 4}


@dataclass
class Plan:
    """What an import would do: the valid rows (row number, object, stored row or None) and every problem."""

    refs: services.RegionRefs
    rows: list[tuple[int, Any, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _error(row: int, object_id: Any, field_: str, message: str, type_: str) -> dict[str, Any]:
    return {"row": row, "id": object_id, "field": field_, "message": message, "type": type_}


def _padded(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    for column, width in CODE_WIDTHS.items():
        value = tabular.cell_text(out.get(column))
        if value and value.isdigit() and len(value) < width:
            out[column] = value.zfill(width)
    return out


def _bookkeeping(kind: Kind, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The engine's columns and, apart, the export's bookkeeping columns (as text)."""
    meta_columns = (*BOOKKEEPING, "status") if kind is CANDIDATES else BOOKKEEPING
    data = {k: v for k, v in raw.items() if str(k).strip() not in meta_columns}
    meta = {str(k).strip(): tabular.cell_text(v) or "" for k, v in raw.items() if str(k).strip() in meta_columns}
    return data, meta


def _parse(kind: Kind, region: str, number: int, raw: dict[str, Any], errors: list[Any]) -> tuple[Any, int | None]:
    """The row's engine object and the version it was exported at, or (None, None) with its errors noted."""
    data, meta = _bookkeeping(kind, _padded(raw))
    row_id = tabular.cell_text(data.get("id"))
    if meta.get("region") and meta["region"] != region:
        errors.append(
            _error(number, row_id, "region", f"the row is of region {meta['region']}, not {region}", "region")
        )
        return None, None
    version = meta.get("version") or None
    if version is not None and not version.isdigit():
        errors.append(_error(number, row_id, "version", "not a whole number", "int_parsing"))
        return None, None
    try:
        values = tabular.coerce(kind.engine_type, tabular.unflatten(data))
    except tabular.ColumnConflict as exc:
        errors.append(_error(number, None, exc.column, str(exc), "column"))
        return None, None
    try:
        obj = services.validate(kind, values)
    except Unprocessable as exc:
        errors += [{"row": number, "id": values.get("id"), **e} for e in exc.extra["errors"]]
        return None, None
    return obj, int(version) if version is not None else None


class Unreadable(ValueError):
    """A file that is neither CSV nor XLSX as the import reads them."""


@dataclass
class Parsed:
    """A file's rows checked field by field, without the database: (row number, object, exported version) of the
    valid ones, every problem, and how many rows there were."""

    rows: list[tuple[int, Any, int | None]]
    errors: list[dict[str, Any]]
    count: int


def parse_file(kind_name: str, region: str, content: bytes, filename: str, max_rows: int, max_unpacked: int) -> Parsed:
    """Read and check every row of an upload (the CPU-heavy part of an import, run in the import process). Raises
    TooLarge past the limits and Unreadable for anything else that cannot be read."""
    kind = KINDS[kind_name]
    try:
        rows = tabular.read_rows(content, filename, max_rows, max_unpacked)
    except tabular.TooLarge:
        raise
    except Exception as exc:  # any unreadable file is the client's problem, never a 500
        raise Unreadable(type(exc).__name__) from None
    parsed, errors, seen = [], [], set()
    for number, raw in enumerate(rows, start=2):  # row 1 is the header
        obj, version = _parse(kind, region, number, raw, errors)
        if obj is None:
            continue
        if obj.id in seen:
            errors.append(_error(number, obj.id, "id", "listed twice", "unique_id"))
            continue
        seen.add(obj.id)
        parsed.append((number, obj, version))
    return Parsed(parsed, errors, len(rows))


class ImportProcess:
    """One process, started on the first import, that reads and checks uploads: their CPU work never holds the
    service's interpreter (and its lock) from answering requests, and it runs niced like the solver."""

    def __init__(self, nice: int) -> None:
        self.nice = nice
        self.lock = threading.Lock()
        self.pool: ProcessPoolExecutor | None = None

    def parse(self, *args: Any) -> Parsed:
        """parse_file(*args) in the import process (started again if it died)."""
        with self.lock:
            if self.pool is None:
                context = multiprocessing.get_context("spawn")
                self.pool = ProcessPoolExecutor(1, mp_context=context, initializer=os.nice, initargs=(self.nice,))
            pool = self.pool
        try:
            return pool.submit(parse_file, *args).result()
        except BrokenProcessPool:
            with self.lock:
                if self.pool is pool:
                    self.pool = None
            raise Unreadable("the import process ended while reading the file") from None

    def stop(self) -> None:
        """End the import process (server shutdown)."""
        with self.lock:
            pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def plan_import(session: Session, kind: Kind, subject: Subject, region: Region, parsed: Parsed) -> Plan:
    """Check the parsed rows against the database (ids taken, versions, references); nothing is written."""
    table: Any = kind.table
    plan = Plan(services.RegionRefs(session, subject, region), errors=list(parsed.errors))
    seen = {obj.id for _, obj, _ in parsed.rows}
    # The region's rows of the kind, whoever may see them (no IN list: a file may hold more ids than a database
    # takes as parameters).
    taken = {r.ref: r for r in session.scalars(select(table).where(table.region_id == region.id)) if r.ref in seen}
    writable = set(session.scalars(services.scoped(kind, subject, region, write=True).with_only_columns(table.ref)))
    for number, obj, version in parsed.rows:
        row = taken.get(obj.id)
        if row is not None and obj.id not in writable:
            problem = services.taken_problem(session, kind, subject, region, row)
            plan.errors.append(_error(number, obj.id, "id", problem.detail, problem.slug))
            continue
        if row is not None and version is not None and version != row.version:
            message = f"changed since it was exported (version {version}, now {row.version}); export it again"
            plan.errors.append(_error(number, obj.id, "version", message, "stale_version"))
            continue
        before = services.stored(kind, row) if row is not None else None
        errors = services.reference_errors(plan.refs, kind, obj, before)
        if errors:
            plan.errors += [{"row": number, "id": obj.id, **e} for e in errors]
            continue
        plan.rows.append((number, obj, row))
    plan.errors.sort(key=lambda e: e["row"])
    return plan


def write_plan(session: Session, kind: Kind, subject: Subject, region: Region, plan: Plan) -> dict[str, int]:
    """Write the plan's valid rows: counts of created, updated and unchanged objects."""
    new = [obj for _, obj, row in plan.rows if row is None]
    services.insert_objects(session, kind, subject, region, new, plan.refs)
    counts = {"created": len(new), "updated": 0, "unchanged": 0}
    # Edits of programmes, units and supervisors must leave accepted placements within every limit, as a PATCH must.
    with limits_kept(session, region.id, kind.name):
        for _, obj, row in plan.rows:
            if row is not None:
                changed = services.replace_object(session, kind, subject, region, row, obj, plan.refs, ["(import)"])
                counts["updated" if changed else "unchanged"] += 1
    return counts


def upload_name(filename: str | None) -> str:
    """The upload's file name as an audit object id: printable characters only, at most the column's 64."""
    name = "".join(c for c in filename or "" if c.isprintable())[:64]
    return name or "upload"


def import_file(
    session: Session,
    kind: Kind,
    subject: Subject,
    region: Region,
    content: bytes,
    filename: str,
    partial: bool,
    settings: Settings,
    reader: ImportProcess,
) -> dict[str, Any]:
    """Read, check and write one upload; 413 past the limits, 422 listing every problem (nothing written unless
    `partial`)."""
    if not services.may_create(subject, kind, region):
        raise Forbidden(f"your role may not import {kind.name}")
    limits = (settings.max_import_rows, settings.max_unpacked_bytes)
    try:
        parsed = reader.parse(kind.name, region.code, content, filename, *limits)
    except tabular.TooLarge as exc:
        raise PayloadTooLarge(f"the file is too large to import: {exc}") from None
    except Unreadable as exc:
        raise Unprocessable(f"cannot read the file as CSV or XLSX: {exc}", slug="import-rejected") from None
    plan = plan_import(session, kind, subject, region, parsed)
    if plan.errors and not partial:
        raise Unprocessable(
            f"{len(plan.errors)} problem(s) in {parsed.count} row(s); nothing was imported",
            slug="import-rejected",
            errors=plan.errors,
        )
    counts = write_plan(session, kind, subject, region, plan)
    singular = kind.name[:-1]
    audit(session, subject, f"{singular}.import", singular, upload_name(filename), region.id, **counts)
    imported = counts["created"] + counts["updated"] + counts["unchanged"]
    return {"imported": imported, **counts, "errors": plan.errors}
