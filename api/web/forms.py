"""HTML forms for the engine's input types (offers, supervisors): one field per attribute, read back into the
engine's JSON form; the engine type then validates it exactly as the API does."""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Field:
    """One input of a form."""

    name: str
    kind: str  # text, number, decimal, date, select, checkbox, list
    required: bool
    options: tuple[str, ...] = ()


def _base(annotation: Any) -> tuple[Any, bool]:
    """The type under Optional[...] and whether None is allowed."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base(args[0])[0] if len(args) == 1 else args[0], True
    if typing.get_origin(annotation) is typing.Annotated:
        return _base(typing.get_args(annotation)[0])
    return annotation, False


def fields_of(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[Field]:
    """The form fields of an engine type."""
    out = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        base, optional = _base(info.annotation)
        required = info.is_required() and not optional
        if isinstance(base, type) and issubclass(base, enum.Enum):
            out.append(Field(name, "select", required, tuple(str(m.value) for m in base)))
        elif typing.get_origin(base) is typing.Literal:
            out.append(Field(name, "select", required, tuple(str(a) for a in typing.get_args(base))))
        elif base is bool:
            out.append(Field(name, "checkbox", False))
        elif base is int:
            out.append(Field(name, "number", required))
        elif base is float:
            out.append(Field(name, "decimal", required))
        elif base is date:
            out.append(Field(name, "date", required))
        elif typing.get_origin(base) in (tuple, list):
            out.append(Field(name, "list", False))
        else:
            out.append(Field(name, "text", required))
    return out


def defaults_of(model: type[BaseModel]) -> dict[str, str]:
    """The form values of the type's defaults (a new supervisor is licensed unless unticked, an offer has 1 slot)."""
    defaults = {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if not info.is_required()
    }
    return values_of({name: getattr(value, "value", value) for name, value in defaults.items()})


def values_of(obj: dict[str, Any]) -> dict[str, str]:
    """The form values of an object's JSON form (lists as comma-separated text)."""
    out = {}
    for name, value in obj.items():
        if isinstance(value, list | tuple):
            out[name] = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            out[name] = "on" if value else ""
        else:
            out[name] = "" if value is None else str(value)
    return out


def read_form(fields: list[Field], form: dict[str, str]) -> dict[str, Any]:
    """The engine JSON of a submitted form: empty optional fields are left out (their default applies)."""
    data: dict[str, Any] = {}
    for field in fields:
        raw = (form.get(field.name) or "").strip()
        if field.kind == "checkbox":
            data[field.name] = raw == "on"
        elif field.kind == "list":
            data[field.name] = [part.strip() for part in raw.split(",") if part.strip()]
        elif raw:
            data[field.name] = _number(raw, field.kind)
    return data


def _number(raw: str, kind: str) -> Any:
    """Numbers as numbers (the engine types are strict about them); text that is no number stays text, so that
    the engine's validation names the field and the rule."""
    try:
        if kind == "number":
            return int(raw.replace(" ", ""))
        if kind == "decimal":
            return float(raw.replace(",", "."))
    except ValueError:
        return raw
    return raw
