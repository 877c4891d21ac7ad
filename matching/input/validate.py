"""Reading and checking instances: every problem is reported with the object, the field and the rule."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from matching.input.instance import Instance, OfferStatus, ProgrammeStatus
from matching.rules.groups import floor_targets


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing wrong with an instance."""

    path: str
    object_id: str | None
    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        where = self.path + (f" (id={self.object_id})" if self.object_id else "")
        return f"{where}.{self.field}: {self.message} [rule: {self.rule}]"


class InvalidInstance(ValueError):
    """Raised when an instance breaks a rule; `issues` lists every problem found."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        shown = "\n".join(f"  - {issue}" for issue in issues[:50])
        more = f"\n  ... and {len(issues) - 50} more" if len(issues) > 50 else ""
        super().__init__(f"invalid instance: {len(issues)} problem(s)\n{shown}{more}")


_RULE_OF_TYPE = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "enum": "allowed_values",
    "literal_error": "allowed_values",
    "greater_than_equal": "minimum",
    "greater_than": "minimum",
    "less_than_equal": "maximum",
    "less_than": "maximum",
    "string_pattern_mismatch": "format",
    "string_too_long": "max_length",
    "too_long": "max_items",
}


def _rule_from(error: Any) -> tuple[str, str | None]:
    """The rule name, and the field when a check on the whole object names it: '(rule: R; field: F)'."""
    message = str(error.get("msg", ""))
    if "(rule: " in message:
        tag = message.rsplit("(rule: ", 1)[1].rstrip(")")
        rule, _, field = tag.partition("; field: ")
        return rule, field or None
    return _RULE_OF_TYPE.get(str(error["type"]), str(error["type"])), None


def _object_at(data: Any, loc: tuple[Any, ...]) -> tuple[str, str | None, str]:
    """Split a pydantic location into (object path, object id, field path)."""
    node = data
    path: list[str] = []
    object_path, object_id, field_start = "instance", None, 0
    for depth, part in enumerate(loc):
        if isinstance(part, int):
            path[-1] = f"{path[-1]}[{part}]"
        else:
            path.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
        if isinstance(part, int) and isinstance(node, dict):
            object_path, field_start = ".".join(path), depth + 1
            raw_id = node.get("id")
            object_id = str(raw_id) if raw_id is not None else None
    field = ".".join(str(p) for p in loc[field_start:] if not isinstance(p, int)) or "(object)"
    return object_path, object_id, field


def issues_from_validation(error: ValidationError, data: Any) -> list[Issue]:
    issues = []
    for item in error.errors():
        object_path, object_id, field = _object_at(data, tuple(item["loc"]))
        message = str(item["msg"]).removeprefix("Value error, ").split(" (rule: ")[0]
        rule, named_field = _rule_from(item)
        if named_field:
            field = named_field if field == "(object)" else f"{field}.{named_field}"
        issues.append(Issue(object_path, object_id, field, rule, message))
    return issues


def load_instance(source: str | bytes | Path | dict[str, Any]) -> Instance:
    """Parse and check an instance from JSON text, a file path or a dict; raise InvalidInstance on any problem."""
    if isinstance(source, Path):
        source = source.read_bytes()
    if isinstance(source, (str, bytes)):
        try:
            data = json.loads(source)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInstance([Issue("instance", None, "(document)", "json", f"not valid JSON: {exc}")]) from exc
        except RecursionError:
            message = "not valid JSON for an instance: nested too deeply"
            raise InvalidInstance([Issue("instance", None, "(document)", "json_depth", message)]) from None
    else:
        data = source
    if not isinstance(data, dict):
        raise InvalidInstance([Issue("instance", None, "(document)", "json_object", "must be a JSON object")])
    try:
        instance = Instance.model_validate(data)
    except ValidationError as exc:
        raise InvalidInstance(issues_from_validation(exc, data)) from None
    check_instance(instance)
    return instance


def check_instance(instance: Instance) -> None:
    """Check the references between objects; raise InvalidInstance listing every broken one."""
    issues = reference_issues(instance)
    if issues:
        raise InvalidInstance(issues)


def _duplicates(kind: str, ids: list[str]) -> list[Issue]:
    counts = Counter(ids)
    return [
        Issue(f"{kind}[{index}]", value, "id", "unique_id", f"id {value!r} is used more than once")
        for index, value in enumerate(ids)
        if counts[value] > 1
    ]


def _unknown(path: str, object_id: str | None, field: str, target: str, value: str) -> Issue:
    return Issue(path, object_id, field, "known_id", f"refers to unknown {target} {value!r}")


def reference_issues(instance: Instance) -> list[Issue]:
    """Every unknown or inconsistent id in the instance."""
    issues: list[Issue] = []
    candidates = {c.id for c in instance.candidates}
    units = {u.id: u for u in instance.units}
    supervisors = {s.id: s for s in instance.supervisors}
    offers = {o.id: o for o in instance.offers}
    for kind, objects in (
        ("candidates", instance.candidates),
        ("units", instance.units),
        ("supervisors", instance.supervisors),
        ("offers", instance.offers),
        ("programmes", instance.programmes),
    ):
        issues += _duplicates(kind, [o.id for o in objects])

    def unknown(path: str, object_id: str | None, field: str, target: str, value: str) -> None:
        issues.append(_unknown(path, object_id, field, target, value))

    for i, s in enumerate(instance.supervisors):
        if s.unit_id not in units:
            unknown(f"supervisors[{i}]", s.id, "unit_id", "unit", s.unit_id)
    for i, o in enumerate(instance.offers):
        path = f"offers[{i}]"
        if o.unit_id not in units:
            unknown(path, o.id, "unit_id", "unit", o.unit_id)
        for sid in o.supervisor_ids:
            if sid not in supervisors:
                unknown(path, o.id, "supervisor_ids", "supervisor", sid)
            elif supervisors[sid].unit_id != o.unit_id:
                issues.append(
                    Issue(
                        path,
                        o.id,
                        "supervisor_ids",
                        "supervisor_same_unit",
                        f"supervisor {sid!r} works at another unit",
                    )
                )
        for cid in o.clinic_ranking:
            if cid not in candidates:
                unknown(path, o.id, "clinic_ranking", "candidate", cid)
    for i, c in enumerate(instance.candidates):
        for wish in c.wishes:
            if wish not in offers and wish not in units:
                unknown(f"candidates[{i}]", c.id, "wishes", "offer or unit", wish)
    for field in ("pins", "forbids", "keep"):
        seen: set[tuple[str, str]] = set()
        for i, pair in enumerate(getattr(instance.policy, field)):
            path = f"policy.{field}[{i}]"
            if pair.candidate_id not in candidates:
                unknown(path, None, "candidate_id", "candidate", pair.candidate_id)
            if pair.offer_id not in offers:
                unknown(path, None, "offer_id", "offer", pair.offer_id)
            key = (pair.candidate_id, pair.offer_id)
            if key in seen:
                issues.append(Issue(path, None, "(pair)", "unique_pair", f"pair {key} is listed twice"))
            seen.add(key)
    issues += _commitment_issues(instance, units, supervisors)
    pinned = Counter(p.candidate_id for p in instance.policy.pins)
    for cid, count in pinned.items():
        if count > 1:
            issues.append(
                Issue("policy.pins", None, "candidate_id", "one_pin_per_candidate", f"{cid!r} is pinned {count} times")
            )
    both = {(p.candidate_id, p.offer_id) for p in instance.policy.pins} & {
        (p.candidate_id, p.offer_id) for p in instance.policy.forbids
    }
    for cid, oid in sorted(both):
        issues.append(
            Issue("policy", None, "pins", "pin_not_forbidden", f"pair ({cid!r}, {oid!r}) is both pinned and forbidden")
        )
    return issues + _floor_issues(instance)


def _commitment_issues(instance: Instance, units: dict[str, Any], supervisors: dict[str, Any]) -> list[Issue]:
    """A commitment names a known unit, supervisor (of that unit), programme and earmark of that programme."""
    issues = _duplicates("commitments", [c.id for c in instance.commitments])
    programmes = {p.id: p for p in instance.programmes}
    for i, c in enumerate(instance.commitments):
        path = f"commitments[{i}]"
        if c.unit_id not in units:
            issues.append(_unknown(path, c.id, "unit_id", "unit", c.unit_id))
        if c.supervisor_id is not None:
            if c.supervisor_id not in supervisors:
                issues.append(_unknown(path, c.id, "supervisor_id", "supervisor", c.supervisor_id))
            elif supervisors[c.supervisor_id].unit_id != c.unit_id:
                issues.append(
                    Issue(path, c.id, "supervisor_id", "supervisor_same_unit", "the supervisor works at another unit")
                )
        prog = programmes.get(c.programme_id)
        if prog is None:
            issues.append(_unknown(path, c.id, "programme_id", "programme", c.programme_id))
        elif c.earmark_id is not None and c.earmark_id not in {e.id for e in prog.earmarks}:
            issues.append(_unknown(path, c.id, "earmark_id", f"earmark of programme {prog.id}", c.earmark_id))
    return issues


def _floor_issues(instance: Instance) -> list[Issue]:
    """A floor must not ask for more placements than its group has candidates, nor name a group twice."""
    issues = []
    seen: set[str] = set()
    for i, (floor, group, required) in enumerate(floor_targets(instance)):
        path = f"policy.floors[{i}]"
        if floor.label() in seen:
            issues.append(Issue(path, None, "value", "unique_floor", f"group {floor.label()} has two floors"))
        seen.add(floor.label())
        if required > len(group):
            issues.append(
                Issue(
                    path,
                    None,
                    "min_count",
                    "floor_within_group",
                    f"asks for {required} placed in {floor.label()}, which has {len(group)} candidate(s)",
                )
            )
    return issues


def round_date_issues(instance: Instance) -> list[Issue]:
    """What the round date closes, as warnings (the round still runs): an open programme whose application window
    does not hold the date, a programme whose spend-by date is past, a paused or closed programme (it pays only
    candidates who applied before its cut-off), and a published offer that starts before the date."""
    day = instance.round_date
    issues = []
    for i, prog in enumerate(instance.programmes):
        path = f"programmes[{i}]"
        if prog.spend_by < day:
            message = f"its money had to be spent by {prog.spend_by}, before the round date {day}: it pays nobody"
            issues.append(Issue(path, prog.id, "spend_by", "programme_expired", message))
        elif prog.status is ProgrammeStatus.OPEN and not prog.window_start <= day <= prog.window_end:
            message = (
                f"its application window {prog.window_start}..{prog.window_end} does not hold the round date {day}:"
                " it pays nobody in this round"
            )
            issues.append(Issue(path, prog.id, "window_start", "programme_not_open", message))
        elif prog.status is not ProgrammeStatus.OPEN:
            message = f"{prog.status.value}: pays only candidates who applied before {prog.cutoff}"
            issues.append(Issue(path, prog.id, "status", "programme_not_open", message))
    for i, offer in enumerate(instance.offers):
        if offer.status is OfferStatus.PUBLISHED and offer.start < day:
            message = f"starts {offer.start}, before the round date {day}"
            issues.append(Issue(f"offers[{i}]", offer.id, "start", "offer_started", message))
    return issues
