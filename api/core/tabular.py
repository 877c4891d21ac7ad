"""CSV and XLSX: engine objects flattened to one row each (nested fields as dotted columns, lists joined by ';',
lists of objects as JSON), read back with the engine's field types, and exported with formula characters escaped."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import types
import typing
import zipfile
from datetime import date, datetime
from typing import Any

from fastapi import Response
from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from pydantic import BaseModel

# Characters a spreadsheet may take as the start of a formula, the full-width forms too (an East Asian input method
# types them, and spreadsheets read them as the ASCII ones).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
QUOTE = "'"
LIST_SEPARATOR = ";"


class TooLarge(ValueError):
    """An upload that unpacks to more bytes, or holds more rows, than the limits allow."""


def escape_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: text starting with a formula character (= + - @ TAB CR, or full-width
    ＝ ＋ － ＠) gets a leading apostrophe; so does text starting with an apostrophe, so that reading back is exact."""
    if isinstance(value, str) and value.startswith((*FORMULA_START, QUOTE)):
        return QUOTE + value
    return value


def _unescape(value: str) -> str:
    return value[1:] if value.startswith(QUOTE) and value[1:].startswith((*FORMULA_START, QUOTE)) else value


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


# Spreadsheet truth values, English and Swedish (Excel in Swedish says SANT and FALSKT).
BOOLEANS = {
    **dict.fromkeys(("true", "1", "yes", "ja", "sant"), True),
    **dict.fromkeys(("false", "0", "no", "nej", "falskt"), False),
}


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
        return BOOLEANS.get(lowered, value)
    if base is int:
        try:
            return int(value)
        except ValueError:
            return value
    if base is float:
        try:
            # Excel in a Swedish locale writes a decimal comma: 0,75.
            return float(value.replace(",", ".") if "." not in value else value)
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


def cell_text(value: Any) -> str | None:
    """A cell as text: dates as ISO, whole floats without '.0', formula escapes undone, surrounding space trimmed."""
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
        text = cell_text(raw)
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


def read_rows(content: bytes, filename: str, max_rows: int, max_unpacked: int) -> list[dict[str, Any]]:
    """Rows of a CSV (UTF-8, or Windows-1252 as Excel writes it on Swedish Windows; comma or semicolon) or XLSX
    upload as dicts by header. Raises TooLarge past `max_rows` data rows or, for XLSX, `max_unpacked` bytes."""
    if filename.lower().endswith(".xlsx") or content[:2] == b"PK":
        return _xlsx_rows(content, max_rows, max_unpacked)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("cp1252")
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    rows = []
    for row in csv.DictReader(io.StringIO(text), delimiter=delimiter):
        if any(v for v in row.values()):
            rows.append(row)
            if len(rows) > max_rows:
                raise TooLarge(f"more than {max_rows} rows")
    return rows


def _xlsx_rows(content: bytes, max_rows: int, max_unpacked: int) -> list[dict[str, Any]]:
    # A workbook is a zip: refuse one that would inflate past the limit before parsing any of it. The sizes in the
    # zip's directory bound what is read: zipfile never inflates a member past its stated size.
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > max_unpacked:
        raise TooLarge(f"the workbook unpacks to {unpacked} bytes, more than {max_unpacked}")
    book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        lines = book.worksheets[0].iter_rows(values_only=True)
        first = next(lines, None)
        if first is None:
            return []
        header = [str(h).strip() if h is not None else "" for h in first]
        rows = []
        for cells in lines:
            if any(c is not None for c in cells):
                rows.append(dict(zip(header, cells, strict=False)))
                if len(rows) > max_rows:
                    raise TooLarge(f"more than {max_rows} rows")
        return rows
    finally:
        book.close()


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
            sheet.append([_xlsx_cell(escape_cell(row.get(c))) for c in columns])
        for cells in sheet.iter_rows(min_row=2):
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_cell(value: Any) -> Any:
    # XML, and so XLSX, cannot hold most control characters (openpyxl raises IllegalCharacterError): whatever text
    # an export carries, show them as U+FFFD rather than fail the download.
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value


XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# What a download route declares in the OpenAPI document for its 200: CSV text or an XLSX workbook.
DOWNLOAD_RESPONSE = {
    "description": "CSV (`format=csv`) or an XLSX workbook (`format=xlsx`)",
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        XLSX_MEDIA: {"schema": {"type": "string", "format": "binary"}},
    },
}


def download(sheets: dict[str, list[dict[str, Any]]], name: str, format: str) -> Response:
    """A CSV (the first table) or XLSX (every table) attachment."""
    if format == "xlsx":
        headers = {"Content-Disposition": f'attachment; filename="{name}.xlsx"'}
        return Response(to_xlsx_sheets(sheets), media_type=XLSX_MEDIA, headers=headers)
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(to_csv(next(iter(sheets.values()))), media_type="text/csv; charset=utf-8", headers=headers)
