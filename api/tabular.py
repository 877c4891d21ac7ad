"""CSV and XLSX: engine objects flattened to one row each (nested fields as dotted columns, lists joined by ';',
lists of objects as JSON), read back with the engine's field types, and exported with formula characters escaped."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import types
import typing
from datetime import date, datetime
from typing import Any

from fastapi import Response
from openpyxl import Workbook, load_workbook
from pydantic import BaseModel

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
LIST_SEPARATOR = ";"


def escape_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: text starting with = + - @ TAB or CR gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _unescape(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """One level of columns for a nested engine dict."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key != "solver_parameters":
            out.update(flatten(value, name + "."))
        elif isinstance(value, list | tuple):
            if any(isinstance(v, dict) for v in value):
                out[name] = json.dumps(value, ensure_ascii=False)
            else:
                out[name] = LIST_SEPARATOR.join(str(v) for v in value)
        elif isinstance(value, dict):
            out[name] = json.dumps(value)
        elif isinstance(value, date):
            out[name] = value.isoformat()
        else:
            out[name] = value
    return out


def _base(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _coerce(annotation: Any, value: Any) -> Any:
    base = _base(annotation)
    origin = typing.get_origin(base)
    if isinstance(base, type) and issubclass(base, BaseModel):
        if isinstance(value, dict):
            return coerce(base, value)
        return json.loads(value) if isinstance(value, str) else value
    if origin in (tuple, list):
        item = typing.get_args(base)[0]
        if isinstance(value, str):
            if isinstance(_base(item), type) and issubclass(_base(item), BaseModel):
                return json.loads(value)
            return [_coerce(item, v.strip()) for v in value.split(LIST_SEPARATOR) if v.strip()]
        return value
    if not isinstance(value, str):
        return value
    if base is bool:
        lowered = value.strip().lower()
        return {
            "true": True,
            "1": True,
            "yes": True,
            "ja": True,
            "false": False,
            "0": False,
            "no": False,
            "nej": False,
        }.get(lowered, value)
    for kind in (int, float):
        if base is kind:
            try:
                return kind(value)
            except ValueError:
                return value
    if origin is dict:
        return json.loads(value)
    return value


def coerce(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Turn spreadsheet text into the types the model's fields expect (bad values are left for validation)."""
    out = dict(data)
    for name, field in model.model_fields.items():
        if name in out:
            with contextlib.suppress(ValueError, StopIteration, RecursionError):
                out[name] = _coerce(field.annotation, out[name])
    return out


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _unescape(str(value)).strip()


class ColumnConflict(ValueError):
    """Two columns claim the same place, e.g. `ladder` and `ladder.ptj_decision`."""

    def __init__(self, column: str) -> None:
        super().__init__(f"column {column} clashes with another column of the same name or prefix")
        self.column = column


def unflatten(row: dict[str, Any]) -> dict[str, Any]:
    """Dotted columns back into nested dicts; empty cells are left out (the field's default applies).
    Raises ColumnConflict when a column is both a value and the parent of another column."""
    out: dict[str, Any] = {}
    for key, raw in row.items():
        text = _cell_text(raw)
        if not key or text is None or text == "":
            continue
        node = out
        column = str(key).strip()
        *parents, leaf = column.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ColumnConflict(column)
        if isinstance(node.get(leaf), dict):
            raise ColumnConflict(column)
        node[leaf] = text
    return out


def read_rows(content: bytes, filename: str) -> list[dict[str, Any]]:
    """Rows of a CSV (UTF-8, comma or semicolon) or XLSX upload as dicts by header."""
    if filename.lower().endswith(".xlsx") or content[:2] == b"PK":
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        book.close()
        if not rows:
            return []
        header = [str(h).strip() if h is not None else "" for h in rows[0]]
        return [dict(zip(header, r, strict=False)) for r in rows[1:] if any(c is not None for c in r)]
    text = content.decode("utf-8-sig")
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    return [r for r in csv.DictReader(io.StringIO(text), delimiter=delimiter) if any(v for v in r.values())]


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return columns


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """CSV text (UTF-8 with BOM for Excel) with formulas escaped."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_columns(rows), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: escape_cell(v) for k, v in row.items()})
    return ("\ufeff" + out.getvalue()).encode()


def to_xlsx(rows: list[dict[str, Any]], title: str) -> bytes:
    """An XLSX workbook with one sheet; text cells are escaped and stored as text, never as formulas."""
    return to_xlsx_sheets({title: rows})


def to_xlsx_sheets(sheets: dict[str, list[dict[str, Any]]]) -> bytes:
    """An XLSX workbook with one sheet per table, in order; numbers stay numbers, text is escaped and stored as
    text, never as a formula."""
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title[:31])
        columns = _columns(rows)
        sheet.append(columns)
        for row in rows:
            sheet.append([escape_cell(row.get(c)) for c in columns])
        for cells in sheet.iter_rows(min_row=2):
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(sheets: dict[str, list[dict[str, Any]]], name: str, format: str) -> Response:
    """A CSV (the first table) or XLSX (every table) attachment."""
    if format == "xlsx":
        headers = {"Content-Disposition": f'attachment; filename="{name}.xlsx"'}
        return Response(to_xlsx_sheets(sheets), media_type=XLSX_MEDIA, headers=headers)
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(to_csv(next(iter(sheets.values()))), media_type="text/csv; charset=utf-8", headers=headers)
