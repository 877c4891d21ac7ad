"""A change to a round's input (one object's fields), applied and re-checked like a loaded instance.

A `Change` names one candidate, offer, supervisor, programme or unit by id and gives new values for some of its
fields in the instance's JSON form. A nested object (a candidate's `ladder`, a programme's `unit_caps`) is merged
key by key, so {"unit_caps": {"small": 300000}} leaves the medium and large caps as they were.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from matching.input.instance import Candidate, Instance, Offer, Programme, Supervisor, Unit
from matching.input.validate import InvalidInstance, Issue, issues_from_validation, reference_issues

Target = Literal["candidate", "offer", "supervisor", "programme", "unit"]

# Target -> (model, the instance's collection of such objects).
_MODELS: dict[str, tuple[type[BaseModel], str]] = {
    "candidate": (Candidate, "candidates"),
    "offer": (Offer, "offers"),
    "supervisor": (Supervisor, "supervisors"),
    "programme": (Programme, "programmes"),
    "unit": (Unit, "units"),
}
# Fields shown with " SEK" after the new value.
MONEY_FIELDS = frozenset(
    {"budget", "candidate_cap", "monthly_salary", "monthly_supervisor_fee", "course_fee", "other_costs", "unit_caps"}
)
_SUFFIX = {"max_commute_km": " km"}


class Change(BaseModel):
    """New values for some fields of one object of the instance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: Target
    id: str
    set: dict[str, Any]
    note: str = ""

    def key(self) -> str:
        """A canonical text of the change (for finding equal changes)."""
        return json.dumps([self.target, self.id, self.set], sort_keys=True, default=str)


def fact_count(changes: Sequence[Change]) -> int:
    """How many facts the changes alter: one per field, one per key of a merged nested object."""
    return sum(len(v) if isinstance(v, dict) else 1 for c in changes for v in c.set.values())


def find(instance: Instance, target: str, object_id: str) -> tuple[int, BaseModel] | None:
    """The index and object of this kind with this id, or None."""
    objects: tuple[BaseModel, ...] = getattr(instance, _MODELS[target][1])
    for index, obj in enumerate(objects):
        if getattr(obj, "id", None) == object_id:
            return index, obj
    return None


def apply_changes(instance: Instance, changes: Sequence[Change]) -> Instance:
    """The instance with the changes applied, checked like `load_instance`; InvalidInstance names the change."""
    issues: list[Issue] = []
    edited: dict[tuple[str, int], dict[str, Any]] = {}
    by_object: dict[tuple[str, int], list[int]] = {}
    for i, change in enumerate(changes):
        found = find(instance, change.target, change.id)
        if found is None:
            message = f"no {change.target} with id {change.id!r}"
            issues.append(Issue(f"changes[{i}]", change.id, "id", "known_id", message))
            continue
        index, obj = found
        issues += _field_issues(i, change)
        key = (_MODELS[change.target][1], index)
        data = edited.setdefault(key, obj.model_dump(mode="json"))
        for field, value in change.set.items():
            old = data.get(field)
            data[field] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
        by_object.setdefault(key, []).append(i)
    if issues:
        raise InvalidInstance(issues)
    replaced: dict[str, list[Any]] = {}
    for (collection, index), data in edited.items():
        model = next(m for m, c in _MODELS.values() if c == collection)
        try:
            new = model.model_validate(data)
        except ValidationError as exc:
            owners = [changes[i] for i in by_object[(collection, index)]]
            issues += [
                _attribute(issue, owners, by_object[(collection, index)]) for issue in issues_from_validation(exc, data)
            ]
            continue
        replaced.setdefault(collection, list(getattr(instance, collection)))[index] = new
    if issues:
        raise InvalidInstance(issues)
    changed = instance.model_copy(update={name: tuple(objects) for name, objects in replaced.items()})
    _check_references(instance, changed, changes, by_object)
    return changed


def _field_issues(i: int, change: Change) -> list[Issue]:
    model = _MODELS[change.target][0]
    issues = []
    if not change.set:
        issues.append(Issue(f"changes[{i}]", change.id, "set", "empty_change", "the change sets no field"))
    for field in change.set:
        if field not in model.model_fields:
            message = f"a {change.target} has no field {field!r}"
            issues.append(Issue(f"changes[{i}].set.{field}", change.id, field, "unknown_field", message))
        elif field == "id":
            message = "an object's id cannot be changed (other objects refer to it)"
            issues.append(Issue(f"changes[{i}].set.id", change.id, "id", "read_only", message))
    return issues


def _attribute(issue: Issue, owners: list[Change], indices: list[int]) -> Issue:
    """The issue, located at the change (of those on its object) that set the field it is about."""
    field = issue.field
    top = re.split(r"[.\[]", field, maxsplit=1)[0]
    for change, i in reversed(list(zip(owners, indices, strict=True))):
        if top in change.set:
            return Issue(f"changes[{i}].set.{field}", change.id, field, issue.rule, issue.message)
    change, i = owners[-1], indices[-1]
    # A rule on the whole object (e.g. period_order) may name a field the change did not set: point at what it set.
    path = f"changes[{i}].set.{next(iter(change.set))}" if len(change.set) == 1 else f"changes[{i}].set"
    return Issue(path, change.id, field, issue.rule, issue.message)


def _check_references(
    before: Instance, after: Instance, changes: Sequence[Change], by_object: dict[tuple[str, int], list[int]]
) -> None:
    """Raise InvalidInstance for every reference the changes broke."""
    known = {str(issue) for issue in reference_issues(before)}
    issues = []
    for issue in reference_issues(after):
        if str(issue) in known:
            continue
        match = re.fullmatch(r"(\w+)\[(\d+)\]", issue.path)
        key = (match.group(1), int(match.group(2))) if match else None
        if key in by_object:
            indices = by_object[key]
            issues.append(_attribute(issue, [changes[i] for i in indices], indices))
        else:
            # A broken reference from an object no change touched: say where it is, blame the changes together.
            where = issue.path + (f" (id={issue.object_id})" if issue.object_id else "")
            issues.append(Issue("changes", issue.object_id, issue.field, issue.rule, f"{where}: {issue.message}"))
    if issues:
        raise InvalidInstance(issues)


def describe(change: Change, instance: Instance) -> str:
    """Plain text of the change, old -> new: 'programme P1: budget 1,000,000 -> 1,250,000 SEK'."""
    found = find(instance, change.target, change.id)
    obj = found[1] if found else None
    head = f"{change.target} {change.id}"
    if isinstance(obj, Supervisor):
        head += f" (unit {obj.unit_id})"
    old: dict[str, Any] = obj.model_dump(mode="json") if obj is not None else {}
    parts = []
    for field, new in change.set.items():
        before = old.get(field)
        suffix = " SEK" if field in MONEY_FIELDS else _SUFFIX.get(field, "")
        if isinstance(new, dict) and isinstance(before, dict):
            parts += [f"{field}.{k} {_text(before.get(k))} -> {_text(v)}{suffix}" for k, v in new.items()]
        else:
            parts.append(f"{field} {_text(before)} -> {_text(new)}{suffix}")
    text = f"{head}: {', '.join(parts)}"
    return f"{text} ({change.note})" if change.note else text


def _text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    return str(value)
