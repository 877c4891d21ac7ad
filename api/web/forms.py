"""HTML forms for the engine's input types (units, candidates, supervisors, offers, programmes): one field per
attribute, read back into the engine's JSON form; the engine type then validates it exactly as the API does.

Nested objects (a candidate's licence ladder, a programme's unit caps) are groups of fields named `ladder.theory_test`;
lists of objects (a programme's earmarks) are rows named `earmarks.0.amount`; lists of codes (professions a programme
covers) are groups of tick boxes; lists of ids (wishes, supervisors) are comma-separated text.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

# Empty rows offered below a list of objects, for new ones.
SPARE_ROWS = 2
MAX_ROWS = 50


@dataclass(frozen=True)
class Field:
    """One input of a form (or a group of them: `group` for a nested object, `rows` for a list of objects)."""

    name: str  # the form name: dotted inside a group (`ladder.theory_test`), the column's own name inside rows
    kind: str  # text, number, decimal, date, select, checkbox, list, multi, group, rows
    required: bool
    options: tuple[str, ...] = ()
    columns: tuple[Field, ...] = ()

    @property
    def label(self) -> str:
        """The attribute's own name (the last part of a dotted one): the catalogue translates it."""
        return self.name.rsplit(".", 1)[-1]


def _base(annotation: Any) -> tuple[Any, bool]:
    """The type under Optional[...] and whether None is allowed."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base(args[0])[0] if len(args) == 1 else args[0], True
    if typing.get_origin(annotation) is typing.Annotated:
        return _base(typing.get_args(annotation)[0])
    return annotation, False


def _choices(base: Any) -> tuple[str, ...] | None:
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return tuple(str(m.value) for m in base)
    if typing.get_origin(base) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(base))
    return None


def _is_model(base: Any) -> bool:
    return isinstance(base, type) and issubclass(base, BaseModel)


def fields_of(model: type[BaseModel], skip: tuple[str, ...] = (), prefix: str = "") -> list[Field]:
    """The form fields of an engine type."""
    out = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        base, optional = _base(info.annotation)
        required = info.is_required() and not optional
        full = prefix + name
        choices = _choices(base)
        if choices is not None:
            out.append(Field(full, "select", required, choices))
        elif _is_model(base):
            out.append(Field(full, "group", False, columns=tuple(fields_of(base, prefix=full + "."))))
        elif base is bool:
            out.append(Field(full, "checkbox", False))
        elif base is int:
            out.append(Field(full, "number", required))
        elif base is float:
            out.append(Field(full, "decimal", required))
        elif base is date:
            out.append(Field(full, "date", required))
        elif typing.get_origin(base) in (tuple, list):
            item = _base(typing.get_args(base)[0])[0]
            if _is_model(item):
                out.append(Field(full, "rows", False, columns=tuple(fields_of(item))))
            elif (options := _choices(item)) is not None:
                out.append(Field(full, "multi", False, options))
            else:
                out.append(Field(full, "list", False))
        else:
            out.append(Field(full, "text", required))
    return out


def defaults_of(model: type[BaseModel]) -> dict[str, str]:
    """The form values of the type's defaults (a new supervisor is licensed unless unticked, an offer has 1 slot)."""
    defaults = {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if not info.is_required()
    }
    return values_of(to_jsonable_python(defaults))


def values_of(obj: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """The form values of an object's JSON form: nested objects as dotted names, lists of objects as numbered rows,
    other lists as comma-separated text."""
    out: dict[str, str] = {}
    for name, value in obj.items():
        key = prefix + name
        if isinstance(value, dict):
            out.update(values_of(value, key + "."))
        elif isinstance(value, list | tuple) and value and all(isinstance(v, dict) for v in value):
            for i, row in enumerate(value):
                out.update(values_of(row, f"{key}.{i}."))
        elif isinstance(value, list | tuple):
            out[key] = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            out[key] = "on" if value else ""
        else:
            out[key] = "" if value is None else str(value)
    return out


def submitted_values(fields: list[Field], form: dict[str, str], lists: dict[str, list[str]]) -> dict[str, str]:
    """The values of a submitted form as `values_of` gives them (ticked boxes of a code list joined), to show the
    form again with what was typed."""
    values = dict(form)
    for field in _flat(fields):
        if field.kind == "multi":
            values[field.name] = ", ".join(lists.get(field.name, []))
    return values


def _flat(fields: list[Field] | tuple[Field, ...]) -> list[Field]:
    out = []
    for field in fields:
        out.extend(_flat(field.columns) if field.kind == "group" else [field])
    return out


def row_count(values: dict[str, str], name: str) -> int:
    """How many rows of a list of objects to show: those held, and SPARE_ROWS empty ones for new ones."""
    pattern = re.compile(rf"^{re.escape(name)}\.(\d+)\.")
    held = [int(m.group(1)) + 1 for key in values if (m := pattern.match(key))]
    return min(MAX_ROWS, max(held, default=0) + SPARE_ROWS)


def read_form(fields: list[Field], form: dict[str, str], lists: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The engine JSON of a submitted form: empty optional fields are left out (their default applies), a group
    left wholly empty too, and rows left empty are dropped."""
    lists = lists or {}
    data: dict[str, Any] = {}
    for field in fields:
        if field.kind == "group":
            inner = read_form(list(field.columns), form, lists)
            nested = {k.rsplit(".", 1)[-1]: v for k, v in inner.items()}
            if any(v not in (False, None) for v in nested.values()):
                data[field.label] = nested
            continue
        if field.kind == "rows":
            data[field.name] = _read_rows(field, form)
            continue
        key = field.label
        raw = (form.get(field.name) or "").strip()
        if field.kind == "checkbox":
            data[key] = raw == "on"
        elif field.kind == "multi":
            data[key] = [v for v in lists.get(field.name, []) if v]
        elif field.kind == "list":
            data[key] = [part.strip() for part in raw.split(",") if part.strip()]
        elif raw:
            data[key] = _number(raw, field.kind)
    return data


def _read_rows(field: Field, form: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(MAX_ROWS):
        prefix = f"{field.name}.{i}."
        cells = {c.name: (form.get(prefix + c.name) or "").strip() for c in field.columns}
        if not any(cells.values()):
            continue
        row: dict[str, Any] = {}
        for column in field.columns:
            raw = cells[column.name]
            if column.kind in ("list", "multi"):
                row[column.name] = [part.strip() for part in raw.split(",") if part.strip()]
            elif raw:
                row[column.name] = _number(raw, column.kind)
        rows.append(row)
    return rows


def _number(raw: str, kind: str) -> Any:
    """Numbers as numbers (the engine types are strict about them); text that is no number stays text, so that
    the engine's validation names the field and the rule."""
    try:
        if kind == "number":
            return int(raw.replace(" ", "").replace("\u00a0", ""))
        if kind == "decimal":
            return float(raw.replace(",", "."))
    except ValueError:
        return raw
    return raw


def errors_under(names: tuple[str, ...], errors: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Errors under the named form field they name; any other error under '' (shown above the form)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for error in errors:
        field = str(error.get("field", ""))
        out.setdefault(field if field in names else "", []).append(error)
    return out


_NAMED_FIELD = re.compile(r"\(rule: [\w.]+; field: ([\w.\[\]]+)\)$")


def errors_by_field(fields: list[Field], errors: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The API's field errors under the form field they belong to (`earmarks[0].amount` and `earmarks.0.amount`
    under that cell, `wishes[2]` under `wishes`); an error no field claims goes under '' (shown above the form)."""
    names = {f.name for f in _flat(fields)}
    rows = {f.name: f for f in _flat(fields) if f.kind == "rows"}
    out: dict[str, list[dict[str, Any]]] = {}
    for error in errors:
        path = re.sub(r"\[(\d+)\]", r".\1", str(error.get("field", "")))
        # A check on the whole object (dates in order, earmarks within the budget) names its field in the message.
        named = _NAMED_FIELD.search(str(error.get("message", "")))
        if path not in names and named:
            inner = f"{path}.{named.group(1)}"  # a nested object's own check (the ladder's dates in order)
            path = inner if inner in names else named.group(1)
        target = ""
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in names:
                target = candidate
                # Inside a row: the cell (`earmarks.0.amount`), if the path names one.
                if candidate in rows and len(parts) > end + 1:
                    target = ".".join(parts[: end + 2])
                break
        out.setdefault(target, []).append(error)
    return out
