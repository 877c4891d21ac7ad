"""The hard rules of DOMAIN.md written a second time, plainly, one match at a time, for `verify`.

`matching.rules.eligibility` applies the rules vectorised over millions of pairs; this module states them again in plain
Python with exact fractions, sharing none of that code, so that a bug in a rule there cannot pass its own check
here. Keep the two in step with README.md's rule table; the property tests compare them on random instances.
"""

from __future__ import annotations

import math
from datetime import date
from fractions import Fraction

from matching.input.codes import municipalities
from matching.input.instance import (
    ACCEPTED_PROOFS,
    DEFAULT_PTJ_MONTHS,
    DEFAULT_REQUIRED_STAGE,
    EXCLUSIVE_RIGHT,
    Authorisation,
    Candidate,
    CostItem,
    Instance,
    Offer,
    OfferKind,
    OfferStatus,
    Profession,
    Programme,
    ProgrammeStatus,
    Unit,
)
from matching.input.months import last_full_month, month_index

# Kinds whose length is the candidate's required PTJ length rather than the offer's.
DECISION_LENGTH = (OfferKind.PTJ, OfferKind.PROVTJANSTGORING)


def half_up(value: Fraction) -> int:
    """A whole krona, halves rounded up."""
    return math.floor(value + Fraction(1, 2))


def exact(share: float) -> Fraction:
    """A share as the decimal it is written as (0.29 is 29/100, not the binary float)."""
    return Fraction(repr(share))


def months_of(c: Candidate, o: Offer) -> int:
    """Calendar months of the placement: the decision's length stretched by part time, or the offer's months."""
    if o.kind not in DECISION_LENGTH:
        return o.months
    base = c.ptj_months or c.ladder.ptj_required_months or DEFAULT_PTJ_MONTHS.get(c.profession, 6)
    return math.ceil(Fraction(base) / exact(c.part_time))


def costs_of(c: Candidate, o: Offer, months: int) -> dict[CostItem, int]:
    """Each cost item of the placement in whole SEK."""
    return {
        CostItem.SALARY: half_up(o.monthly_salary * exact(c.part_time) * months),
        CostItem.SUPERVISOR_FEE: o.monthly_supervisor_fee * months,
        CostItem.COURSE_FEE: o.course_fee,
        CostItem.OTHER: o.other_costs,
    }


def grant_of(prog: Programme, costs: dict[CostItem, int]) -> int:
    """What the programme pays: its share of the items it covers, half up."""
    return half_up(exact(prog.cofunding_share) * sum(costs[item] for item in prog.covers))


def distance_km(a: str, b: str) -> float:
    """Great-circle distance between two municipality seats, to 0.1 km."""
    seats = municipalities()
    lat1, lon1 = math.radians(seats[a].latitude), math.radians(seats[a].longitude)
    lat2, lon2 = math.radians(seats[b].latitude), math.radians(seats[b].longitude)
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return round(2 * 6371.0 * math.asin(math.sqrt(min(1.0, max(0.0, h)))), 1)


def _reached(day: date | None, by: date) -> bool:
    return day is not None and day <= by


def pair_failures(instance: Instance, c: Candidate, o: Offer, unit: Unit, months: int) -> list[str]:
    """The pair rules (all but `supervisor` and `funding`, which verify checks on the match itself) that fail."""
    stage = o.required_stage or DEFAULT_REQUIRED_STAGE[o.kind]
    stage_day = date.min if stage.value == "none" else getattr(c.ladder, stage.value)
    end = month_index(o.start) + months - 1
    checks = {
        "offer_status": o.status is OfferStatus.PUBLISHED,
        "profession": c.profession is o.profession,
        "forbidden": all((p.candidate_id, p.offer_id) != (c.id, o.id) for p in instance.policy.forbids),
        "ladder_stage": _reached(stage_day, o.start),
        "practical_test": o.kind is not OfferKind.PTJ or _reached(c.ladder.practical_test, o.start),
        "language": c.cefr.rank >= o.min_cefr.rank,
        "language_proof": not (o.kind is OfferKind.PTJ and o.profession is Profession.PHYSICIAN)
        or c.language_proof in ACCEPTED_PROOFS,
        "special_authorisation": not (o.kind in DECISION_LENGTH and o.profession in EXCLUSIVE_RIGHT)
        or c.ladder.special_authorisation is not Authorisation.NONE,
        "availability": c.available_from <= o.start and end <= last_full_month(c.available_until),
        "period_length": months <= o.months,
        "commute": distance_km(c.residence_municipality, unit.municipality) <= c.max_commute_km,
    }
    return [rule for rule, holds in checks.items() if not holds]


def programme_failures(
    instance: Instance, c: Candidate, o: Offer, unit: Unit, prog: Programme, months: int, grant: int
) -> list[str]:
    """The programme rules that depend on this match alone and fail (budgets and caps are checked over all)."""
    if prog.status is ProgrammeStatus.OPEN:
        is_open = prog.window_start <= instance.round_date <= prog.window_end
    else:
        applied = c.applied_on or c.ready_since
        is_open = prog.cutoff is not None and prog.window_start <= applied < prog.cutoff
    checks = {
        "programme_open": is_open,
        "programme_profession": not prog.professions or o.profession in prog.professions,
        "programme_offer_kind": not prog.offer_kinds or o.kind in prog.offer_kinds,
        "programme_unit": (not prog.unit_counties or unit.county in prog.unit_counties)
        and (not prog.unit_ownerships or unit.ownership in prog.unit_ownerships),
        "programme_residence": (not prog.residence_counties or c.residence_county in prog.residence_counties)
        and (not prog.residence_statuses or c.residence_status in prog.residence_statuses),
        "programme_spend_by": month_index(o.start) + months - 1 <= last_full_month(prog.spend_by),
        "programme_covers": grant > 0,
    }
    return [rule for rule, holds in checks.items() if not holds]
