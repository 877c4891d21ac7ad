"""Column arrays built once per instance, so that rules and scores run vectorised over many pairs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np
import numpy.typing as npt

from matching.input.codes import municipalities
from matching.input.instance import (
    ACCEPTED_PROOFS,
    EXCLUSIVE_RIGHT,
    Authorisation,
    Instance,
    OfferKind,
    OfferStatus,
    Profession,
    Stage,
)
from matching.input.money import decimal_ratio

# Re-exported: most of the engine imports the month helpers from here.
from matching.input.months import NEVER as NEVER
from matching.input.months import last_full_month as last_full_month
from matching.input.months import month_index as month_index
from matching.rules.limits import Limits, committed_limits

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

STAGES = tuple(Stage)
PROFESSIONS = tuple(Profession)
# Offer kinds whose length comes from the candidate's decision rather than from the offer.
DECISION_LENGTH_KINDS = frozenset({OfferKind.PTJ, OfferKind.PROVTJANSTGORING})


@cache
def municipality_numbers() -> dict[str, int]:
    """Row of each municipality code in `distance_km()`."""
    return {code: i for i, code in enumerate(municipalities())}


@cache
def distance_km() -> FloatArray:
    """Great-circle distance between every two municipality seats, in km (rounded to 0.1 km)."""
    seats = list(municipalities().values())
    lat = np.radians([m.latitude for m in seats])
    lon = np.radians([m.longitude for m in seats])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    matrix: FloatArray = np.round(2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), 1)
    matrix.flags.writeable = False
    return matrix


def _ordinal(day: date | None) -> int:
    return NEVER if day is None else day.toordinal()


@dataclass(frozen=True)
class CandidateTable:
    """One entry per candidate, in instance order."""

    ids: list[str]
    index: dict[str, int]
    profession: list[str]
    profession_code: IntArray
    cefr: IntArray
    proof_accepted: BoolArray
    authorised: BoolArray
    stage_ordinal: IntArray  # candidates x stages
    practical_ordinal: IntArray
    available_from: IntArray
    available_until: IntArray  # last month fully available
    months: IntArray
    part_time: FloatArray
    part_time_ratio: tuple[IntArray, IntArray]  # numerator, denominator: part_time as the exact decimal written
    max_commute: FloatArray
    municipality: IntArray
    county: list[str]
    status: list[str]
    applied: IntArray
    ready: IntArray
    ready_month: IntArray


@dataclass(frozen=True)
class OfferTable:
    """One entry per offer, in instance order."""

    ids: list[str]
    index: dict[str, int]
    unit: IntArray
    profession: list[str]
    profession_code: IntArray
    kind: list[str]
    published: BoolArray
    stage: IntArray
    needs_practical: BoolArray
    needs_proof: BoolArray
    needs_authorisation: BoolArray
    decision_length: BoolArray
    min_cefr: IntArray
    start: IntArray  # ordinal of the start date
    start_month: IntArray
    months: IntArray
    slots: IntArray
    salary: IntArray
    supervisor_fee: IntArray
    course_fee: IntArray
    other_costs: IntArray
    supervisor_reach: IntArray  # the longest stay from the start that one qualified supervisor can cover
    municipality: IntArray


@dataclass(frozen=True)
class ProgrammeColumns:
    """One programme's rules that depend on the offer alone or the candidate alone."""

    profession_ok: BoolArray  # per offer
    kind_ok: BoolArray  # per offer
    unit_ok: BoolArray  # per offer
    unit_cap: IntArray  # per offer, what is left of the cap for its unit, -1 for no cap
    earmark: IntArray  # per offer, index of the earmark it draws on or -1
    room: IntArray  # per offer, the most of the budget left that one match there may draw on
    resident_ok: BoolArray  # per candidate


@dataclass(frozen=True)
class Tables:
    """The instance as arrays."""

    candidates: CandidateTable
    offers: OfferTable
    programmes: list[ProgrammeColumns]
    unit_index: dict[str, int]
    supervisor_index: dict[str, int]
    limits: Limits  # what is left of every limit after earlier rounds' commitments: read limits here, not raw


def _candidate_table(instance: Instance) -> CandidateTable:
    cands = instance.candidates
    codes = municipality_numbers()
    return CandidateTable(
        ids=[c.id for c in cands],
        index={c.id: i for i, c in enumerate(cands)},
        profession=[c.profession.value for c in cands],
        profession_code=np.array([PROFESSIONS.index(c.profession) for c in cands], dtype=np.int64),
        cefr=np.array([c.cefr.rank for c in cands], dtype=np.int64),
        proof_accepted=np.array([c.language_proof in ACCEPTED_PROOFS for c in cands], dtype=bool),
        authorised=np.array([c.ladder.special_authorisation is not Authorisation.NONE for c in cands], dtype=bool),
        stage_ordinal=np.array(
            [[_ordinal(c.ladder.reached(s)) if s is not Stage.NONE else 0 for s in STAGES] for c in cands],
            dtype=np.int64,
        ).reshape(len(cands), len(STAGES)),
        practical_ordinal=np.array([_ordinal(c.ladder.practical_test) for c in cands], dtype=np.int64),
        available_from=np.array([c.available_from.toordinal() for c in cands], dtype=np.int64),
        available_until=np.array([last_full_month(c.available_until) for c in cands], dtype=np.int64),
        months=np.array([c.required_months() for c in cands], dtype=np.int64),
        part_time=np.array([c.part_time for c in cands], dtype=np.float64),
        part_time_ratio=_ratios([c.part_time for c in cands]),
        max_commute=np.array([c.max_commute_km for c in cands], dtype=np.float64),
        municipality=np.array([codes[c.residence_municipality] for c in cands], dtype=np.int64),
        county=[c.residence_county for c in cands],
        status=[c.residence_status.value for c in cands],
        applied=np.array([(c.applied_on or c.ready_since).toordinal() for c in cands], dtype=np.int64),
        ready=np.array([c.ready_since.toordinal() for c in cands], dtype=np.int64),
        ready_month=np.array([month_index(max(c.ready_since, c.available_from)) for c in cands], dtype=np.int64),
    )


# Longest stay a supervisor is ever asked to take (period_length caps stays at 36 months); bounds month walks.
LONGEST_STAY = 48


def supervisor_reach(instance: Instance, limits: Limits, s_index: int, offer_profession: str, start: int) -> int:
    """Months from `start` that supervisor s_index can supervise a trainee of this profession: qualified, available
    and with a seat not taken by an earlier round's commitment in each of them (0: none)."""
    s = instance.supervisors[s_index]
    if not qualified(s.profession.value, s.licensed, s.capacity, offer_profession):
        return 0
    if month_index(s.available_from) > start:
        return 0
    available = last_full_month(s.available_until) - start + 1
    return limits.free_months(s_index, start, start + min(available, LONGEST_STAY) - 1) if available > 0 else 0


def _supervisor_reach(instance: Instance, limits: Limits, supervisor_index: dict[str, int]) -> IntArray:
    reach = np.zeros(len(instance.offers), dtype=np.int64)
    for i, offer in enumerate(instance.offers):
        start = month_index(offer.start)
        for sid in offer.supervisor_ids:
            months = supervisor_reach(instance, limits, supervisor_index[sid], offer.profession.value, start)
            reach[i] = max(reach[i], months)
    return reach


def qualified(supervisor_profession: str, licensed: bool, capacity: int, offer_profession: str) -> bool:
    """A supervisor may take a trainee of the offer's profession (licensed, same profession, some capacity)."""
    return licensed and capacity > 0 and supervisor_profession == offer_profession


def _offer_table(
    instance: Instance, unit_index: dict[str, int], limits: Limits, supervisor_index: dict[str, int]
) -> OfferTable:
    offers = instance.offers
    codes = municipality_numbers()
    units = instance.units
    unit = np.array([unit_index[o.unit_id] for o in offers], dtype=np.int64)
    return OfferTable(
        ids=[o.id for o in offers],
        index={o.id: i for i, o in enumerate(offers)},
        unit=unit,
        profession=[o.profession.value for o in offers],
        profession_code=np.array([PROFESSIONS.index(o.profession) for o in offers], dtype=np.int64),
        kind=[o.kind.value for o in offers],
        published=np.array([o.status is OfferStatus.PUBLISHED for o in offers], dtype=bool),
        stage=np.array([STAGES.index(o.stage_needed()) for o in offers], dtype=np.int64),
        needs_practical=np.array([o.kind is OfferKind.PTJ for o in offers], dtype=bool),
        needs_proof=np.array(
            [o.kind is OfferKind.PTJ and o.profession.value == "physician" for o in offers], dtype=bool
        ),
        needs_authorisation=np.array(
            [o.kind in DECISION_LENGTH_KINDS and o.profession in EXCLUSIVE_RIGHT for o in offers], dtype=bool
        ),
        decision_length=np.array([o.kind in DECISION_LENGTH_KINDS for o in offers], dtype=bool),
        min_cefr=np.array([o.min_cefr.rank for o in offers], dtype=np.int64),
        start=np.array([o.start.toordinal() for o in offers], dtype=np.int64),
        start_month=np.array([month_index(o.start) for o in offers], dtype=np.int64),
        months=np.array([o.months for o in offers], dtype=np.int64),
        slots=np.array([o.slots for o in offers], dtype=np.int64),
        salary=np.array([o.monthly_salary for o in offers], dtype=np.int64),
        supervisor_fee=np.array([o.monthly_supervisor_fee for o in offers], dtype=np.int64),
        course_fee=np.array([o.course_fee for o in offers], dtype=np.int64),
        other_costs=np.array([o.other_costs for o in offers], dtype=np.int64),
        supervisor_reach=_supervisor_reach(instance, limits, supervisor_index),
        municipality=np.array([codes[units[u].municipality] for u in unit], dtype=np.int64),
    )


def _programme_columns(instance: Instance, g: int, limits: Limits, unit_index: dict[str, int]) -> ProgrammeColumns:
    prog = instance.programmes[g]
    offers, units = instance.offers, {u.id: u for u in instance.units}
    offer_units = [units[o.unit_id] for o in offers]
    earmark = np.array([_minus_one(prog.earmark_for(o.profession, o.kind)) for o in offers], dtype=np.int64)
    extra = np.array([0, *limits.earmark_left[g]], dtype=np.int64)
    offer_unit = np.array([unit_index[o.unit_id] for o in offers], dtype=np.int64)
    return ProgrammeColumns(
        profession_ok=np.array([not prog.professions or o.profession in prog.professions for o in offers], dtype=bool),
        kind_ok=np.array([not prog.offer_kinds or o.kind in prog.offer_kinds for o in offers], dtype=bool),
        unit_ok=np.array(
            [
                (not prog.unit_counties or u.county in prog.unit_counties)
                and (not prog.unit_ownerships or u.ownership in prog.unit_ownerships)
                for u in offer_units
            ],
            dtype=bool,
        ),
        unit_cap=limits.unit_cap_left[g, offer_unit] if len(offers) else np.zeros(0, dtype=np.int64),
        earmark=earmark,
        room=limits.general_left[g] + extra[earmark + 1],
        resident_ok=np.array(
            [
                (not prog.residence_counties or c.residence_county in prog.residence_counties)
                and (not prog.residence_statuses or c.residence_status in prog.residence_statuses)
                for c in instance.candidates
            ],
            dtype=bool,
        ),
    )


def build_tables(instance: Instance) -> Tables:
    """Arrays for a checked instance (see `matching.input.validate.load_instance`)."""
    unit_index = {u.id: i for i, u in enumerate(instance.units)}
    supervisor_index = {s.id: i for i, s in enumerate(instance.supervisors)}
    limits = committed_limits(instance)
    return Tables(
        candidates=_candidate_table(instance),
        offers=_offer_table(instance, unit_index, limits, supervisor_index),
        programmes=[_programme_columns(instance, g, limits, unit_index) for g in range(len(instance.programmes))],
        unit_index=unit_index,
        supervisor_index=supervisor_index,
        limits=limits,
    )


def _ratios(values: list[float]) -> tuple[IntArray, IntArray]:
    exact = [decimal_ratio(v) for v in values]
    return np.array([n for n, _ in exact], dtype=np.int64), np.array([d for _, d in exact], dtype=np.int64)


def _minus_one(value: int | None) -> int:
    return -1 if value is None else value
