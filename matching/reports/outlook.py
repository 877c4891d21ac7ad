"""The pipeline outlook (seed 001: planning how many placements are needed): per profession and month, candidates
who will be ready, slots of published offers, free supervisor seats and money left, and the shortfall or surplus.

A forecast from the stored data, not a solve: it counts what each month could offer, not who would get it.
"""

from __future__ import annotations

import calendar
from datetime import date
from statistics import median

import numpy as np
from pydantic import Field

from matching.input.instance import (
    DEFAULT_PTJ_MONTHS,
    DEFAULT_REQUIRED_STAGE,
    EXCLUSIVE_RIGHT,
    Cefr,
    Instance,
    Offer,
    OfferKind,
    OfferStatus,
    Profession,
    ProgrammeStatus,
)
from matching.input.months import month_label
from matching.model.solution import Out
from matching.rules.tables import STAGES, BoolArray, Tables, build_tables, last_full_month, month_index

PTJ_STAGE = STAGES.index(DEFAULT_REQUIRED_STAGE[OfferKind.PTJ])
# Without a published offer to say otherwise, a profession's PTJ asks for C1 (DOMAIN.md: Swedish to about C1).
DEFAULT_MIN_CEFR = Cefr.C1


class OutlookMonth(Out):
    """One profession in one month."""

    profession: str
    month: str = Field(description="YYYY-MM")
    ready: int = Field(
        description="waiting candidates ready for a PTJ placement by the end of the month: PTJ decision and practical "
        "test, language at the profession's lowest offer minimum (accepted proof and special authorisation where "
        "the profession needs them), and available that month"
    )
    slots: int = Field(description="free slots of published offers starting this month")
    slots_to_date: int = Field(description="free slots of published offers starting from the first month through this")
    seats_free: int = Field(description="supervisor seats of the profession free this month (after commitments)")
    money_left: int = Field(
        description="SEK left in open programmes that may pay for the profession and can still be spent after this "
        "month (a programme shared by several professions counts for each)"
    )
    fundable: int | None = Field(
        description="about how many placements money_left pays at the profession's typical grant (None: no offer "
        "to price it by)"
    )
    shortfall: int = Field(description="ready - slots_to_date: positive, too few places; negative, a surplus")


class Outlook(Out):
    """The outlook of a region over the coming months."""

    start: str = Field(description="first month, YYYY-MM")
    months: int
    rows: list[OutlookMonth]


def _end_of(month: int) -> date:
    year, m0 = divmod(month, 12)
    return date(year, m0 + 1, calendar.monthrange(year, m0 + 1)[1])


def _published(instance: Instance, profession: Profession) -> list[Offer]:
    return [o for o in instance.offers if o.profession is profession and o.status is OfferStatus.PUBLISHED]


def _ready(instance: Instance, tables: Tables, profession: Profession, month: int) -> BoolArray:
    """Candidates of the profession ready for a PTJ placement by the end of the month."""
    c = tables.candidates
    end = _end_of(month).toordinal()
    min_cefr = min((o.min_cefr.rank for o in _published(instance, profession)), default=DEFAULT_MIN_CEFR.rank)
    ok: BoolArray = np.array([p == profession.value for p in c.profession], dtype=bool)
    ok &= (c.stage_ordinal[:, PTJ_STAGE] <= end) & (c.practical_ordinal <= end) & (c.cefr >= min_cefr)
    ok &= (c.available_from <= end) & (c.available_until >= month)
    if profession is Profession.PHYSICIAN:
        ok &= c.proof_accepted
    if profession in EXCLUSIVE_RIGHT:
        ok &= c.authorised
    return ok


def _seats_free(instance: Instance, tables: Tables, profession: Profession, month: int) -> int:
    free = 0
    for s_index, s in enumerate(instance.supervisors):
        if s.profession is not profession or not s.licensed:
            continue
        if month_index(s.available_from) <= month <= last_full_month(s.available_until):
            free += max(0, tables.limits.seats_left(s_index, month))
    return free


def _money_left(instance: Instance, tables: Tables, profession: Profession, month: int) -> tuple[int, float]:
    """SEK left in programmes that may pay for the profession in this month, and the largest co-funding share."""
    money, share = 0, 0.0
    for g, prog in enumerate(instance.programmes):
        if prog.professions and profession not in prog.professions:
            continue
        if prog.status is not ProgrammeStatus.OPEN or month_index(prog.window_end) < month:
            continue
        if last_full_month(prog.spend_by) < month:
            continue
        money += tables.limits.budget_left(g)
        share = max(share, prog.cofunding_share)
    return money, share


def _typical_cost(instance: Instance, profession: Profession) -> int | None:
    """The median cost of one placement of the profession at its published offers."""
    costs = []
    for o in _published(instance, profession):
        months = DEFAULT_PTJ_MONTHS.get(profession, o.months)
        costs.append((o.monthly_salary + o.monthly_supervisor_fee) * months + o.course_fee + o.other_costs)
    return int(median(costs)) if costs else None


def outlook(instance: Instance, start: date | None = None, months: int = 12) -> Outlook:
    """Per profession (of candidates, offers or supervisors) and month from `start` (default: the round date)."""
    tables = build_tables(instance)
    first = month_index(start or instance.round_date)
    professions = sorted(
        {c.profession for c in instance.candidates}
        | {o.profession for o in instance.offers}
        | {s.profession for s in instance.supervisors},
        key=lambda p: list(Profession).index(p),
    )
    rows = []
    for profession in professions:
        typical = _typical_cost(instance, profession)
        to_date = 0
        for month in range(first, first + months):
            slots = sum(
                o.slots for o in _published(instance, profession) if month_index(o.start) == month and o.slots > 0
            )
            to_date += slots
            ready = int(_ready(instance, tables, profession, month).sum())
            money, share = _money_left(instance, tables, profession, month)
            grant = round(typical * share) if typical else 0
            rows.append(
                OutlookMonth(
                    profession=profession.value,
                    month=month_label(month),
                    ready=ready,
                    slots=slots,
                    slots_to_date=to_date,
                    seats_free=_seats_free(instance, tables, profession, month),
                    money_left=money,
                    fundable=money // grant if grant else None,
                    shortfall=ready - to_date,
                )
            )
    return Outlook(start=month_label(first), months=months, rows=rows)
