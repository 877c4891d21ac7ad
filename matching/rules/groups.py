"""Groups of candidates for fairness reports and floors: profession, county of residence, country of training and
waiting-time band (the wait counts from `ready_since` to the round date)."""

from __future__ import annotations

from matching.input.instance import Candidate, Floor, GroupKind, Instance, waiting_band

GROUP_KINDS: tuple[GroupKind, ...] = ("profession", "county", "country", "waiting_band")


def group_of(candidate: Candidate, kind: GroupKind, instance: Instance) -> str:
    """The candidate's group of this kind."""
    if kind == "profession":
        return candidate.profession.value
    if kind == "county":
        return candidate.residence_county
    if kind == "country":
        return candidate.country_of_training
    return waiting_band(max(0, (instance.round_date - candidate.ready_since).days))


def members(instance: Instance, floor: Floor) -> list[int]:
    """Indexes of the candidates a floor counts."""
    return [i for i, c in enumerate(instance.candidates) if group_of(c, floor.group, instance) == floor.value]


def floor_targets(instance: Instance) -> list[tuple[Floor, list[int], int]]:
    """Each floor with its members and how many of them must be placed."""
    out = []
    for floor in instance.policy.floors:
        group = members(instance, floor)
        out.append((floor, group, floor.required(len(group))))
    return out
