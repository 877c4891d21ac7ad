"""The hard rules of DOMAIN.md as named, vectorised checks over (candidate, offer) pairs.

A pair is eligible when every pair rule passes; the `funding` rule passes when at least one programme passes
every programme rule for that pair. Each failing rule can be reported by name for any candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching.input.instance import CostItem, Instance, ProgrammeStatus
from matching.input.money import decimal_ratio, half_up
from matching.rules.tables import (
    BoolArray,
    IntArray,
    Tables,
    build_tables,
    distance_km,
    last_full_month,
)

# Pair rules, in the order they are reported, with the sentence an explanation shows.
PAIR_RULES: dict[str, str] = {
    "offer_status": "the offer is published (not a draft, withdrawn or filled)",
    "profession": "the candidate's profession is the offer's profession",
    "forbidden": "the coordinator has not forbidden this pair",
    "ladder_stage": "the ladder stage the offer needs is reached by its start (for PTJ: the PTJ decision)",
    "practical_test": "for PTJ, the practical part of the knowledge test is passed by the start",
    "language": "the candidate's CEFR level is at least the offer's minimum",
    "language_proof": "for a physician's PTJ, an accepted language proof (Svenska 3, C1, Tisus, ...) is in place",
    "special_authorisation": "for exclusive-right professions, the special authorisation is granted or applied for",
    "availability": "the candidate is available for the whole placement period",
    "period_length": "the offer's period covers the candidate's required PTJ months (part time stretches them)",
    "commute": "the unit is within the candidate's maximum commute",
    "supervisor": "a licensed supervisor of the same profession is available for every month of the period",
    "funding": "some programme can pay for the match (see the programme rules)",
}

PROGRAMME_RULES: dict[str, str] = {
    "programme_open": "the programme is open, or the application came before its cut-off",
    "programme_profession": "the programme covers the profession",
    "programme_offer_kind": "the programme covers the offer kind",
    "programme_unit": "the unit's county and ownership are eligible",
    "programme_residence": "the candidate's county of residence and residence status are eligible",
    "programme_spend_by": "the placement ends by the programme's spend-by date",
    "programme_covers": "the programme covers some cost of the placement",
    "programme_candidate_cap": "the grant is within what is left of the programme's per-candidate cap",
    "programme_unit_cap": "the grant is within what is left of the programme's cap for a unit of this size class",
    "programme_budget": "the grant fits in the budget left that this match may draw on (earmarks included), "
    "after the commitments of earlier rounds",
}

RULES = {**PAIR_RULES, **PROGRAMME_RULES}
_CHUNK = 1 << 20  # pairs evaluated at once; bounds memory on large instances


def grant_amount(share: float, covered: int | IntArray) -> IntArray:
    """The programme's part of the covered cost, in whole SEK (half up: 0.29 x 27,050 = 7,844.5 -> 7,845)."""
    numerator, denominator = decimal_ratio(share)
    return half_up(np.asarray(covered, dtype=np.int64), numerator, denominator)


@dataclass(frozen=True)
class PairCosts:
    """Placement length and cost items for a batch of pairs."""

    months: IntArray
    salary: IntArray
    supervisor_fee: IntArray
    course_fee: IntArray
    other: IntArray

    @property
    def total(self) -> IntArray:
        """Everything the placement costs."""
        return self.salary + self.supervisor_fee + self.course_fee + self.other

    def covered(self, items: tuple[CostItem, ...]) -> IntArray:
        """The cost a programme covering `items` shares in."""
        total = np.zeros_like(self.salary)
        for item in items:
            total = total + getattr(self, item.value)
        return total


def pair_costs(tables: Tables, cand: IntArray, offer: IntArray) -> PairCosts:
    """Length in months and cost items of each pair's placement."""
    c, o = tables.candidates, tables.offers
    months = np.where(o.decision_length[offer], c.months[cand], o.months[offer])
    salary = half_up(o.salary[offer] * months, c.part_time_ratio[0][cand], c.part_time_ratio[1][cand])
    return PairCosts(
        months=months,
        salary=salary,
        supervisor_fee=o.supervisor_fee[offer] * months,
        course_fee=o.course_fee[offer].copy(),
        other=o.other_costs[offer].copy(),
    )


@dataclass(frozen=True)
class ProgrammeChecks:
    """Programme rule results for a batch of pairs: rule -> (pairs x programmes) pass matrix, and grants."""

    rules: dict[str, BoolArray]
    grant: IntArray
    earmark: IntArray  # index of the earmark each pair would draw on, -1 for none

    @property
    def passes(self) -> BoolArray:
        """(pairs x programmes): every programme rule holds."""
        result = np.ones_like(self.grant, dtype=bool)
        for mask in self.rules.values():
            result &= mask
        return result


def _programme_checks(
    instance: Instance, tables: Tables, cand: IntArray, offer: IntArray, costs: PairCosts
) -> ProgrammeChecks:
    n, m = len(cand), len(instance.programmes)
    # Column-major: the loop below fills one programme's column at a time (row-major, each column write strides
    # over the whole matrix: the most of the explanations' time at stress scale).
    rules = {name: np.ones((n, m), dtype=bool, order="F") for name in PROGRAMME_RULES}
    grant = np.zeros((n, m), dtype=np.int64, order="F")
    earmark = np.full((n, m), -1, dtype=np.int64, order="F")
    end_month = tables.offers.start_month[offer] + costs.months - 1
    applied = tables.candidates.applied[cand]
    for g, (prog, cols) in enumerate(zip(instance.programmes, tables.programmes, strict=True)):
        if prog.status is ProgrammeStatus.OPEN:
            rules["programme_open"][:, g] = prog.window_start <= instance.round_date <= prog.window_end
        else:
            assert prog.cutoff is not None
            rules["programme_open"][:, g] = (applied < prog.cutoff.toordinal()) & (
                applied >= prog.window_start.toordinal()
            )
        rules["programme_profession"][:, g] = cols.profession_ok[offer]
        rules["programme_offer_kind"][:, g] = cols.kind_ok[offer]
        rules["programme_unit"][:, g] = cols.unit_ok[offer]
        rules["programme_residence"][:, g] = cols.resident_ok[cand]
        rules["programme_spend_by"][:, g] = end_month <= last_full_month(prog.spend_by)
        amount = grant_amount(prog.cofunding_share, costs.covered(prog.covers))
        grant[:, g] = amount
        rules["programme_covers"][:, g] = amount > 0
        if prog.candidate_cap is not None:
            # Earlier grants to the same candidate from this programme (an interrupted placement) count too.
            rules["programme_candidate_cap"][:, g] = amount <= tables.limits.candidate_cap_left(g, cand)
        unit_cap = cols.unit_cap[offer]
        rules["programme_unit_cap"][:, g] = (unit_cap < 0) | (amount <= unit_cap)
        earmark[:, g] = cols.earmark[offer]
        rules["programme_budget"][:, g] = amount <= cols.room[offer]
    return ProgrammeChecks(rules=rules, grant=grant, earmark=earmark)


@dataclass(frozen=True)
class PairChecks:
    """Rule results for a batch of pairs."""

    cand: IntArray
    offer: IntArray
    costs: PairCosts
    rules: dict[str, BoolArray]
    programmes: ProgrammeChecks

    @property
    def eligible(self) -> BoolArray:
        """Every pair rule holds."""
        result = np.ones(len(self.cand), dtype=bool)
        for mask in self.rules.values():
            result &= mask
        return result

    def failed(self, k: int) -> list[str]:
        """Names of the pair rules pair `k` fails."""
        return [name for name, mask in self.rules.items() if not mask[k]]


def _forbidden_keys(instance: Instance, tables: Tables) -> IntArray:
    n_offers = len(instance.offers)
    keys = [
        tables.candidates.index[p.candidate_id] * n_offers + tables.offers.index[p.offer_id]
        for p in instance.policy.forbids
    ]
    return np.array(sorted(keys), dtype=np.int64)


_PAIR_RULE_ORDER = (
    "offer_status",
    "profession",
    "forbidden",
    "ladder_stage",
    "practical_test",
    "language",
    "language_proof",
    "special_authorisation",
    "availability",
    "period_length",
    "commute",
    "supervisor",
)


def _pair_rules(
    instance: Instance, tables: Tables, cand: IntArray, offer: IntArray, costs: PairCosts | None
) -> dict[str, BoolArray]:
    """The pair rules (all but `funding`) on the pairs (cand[k], offer[k]). Without `costs`, only what needs none:
    the rules that need the stay's length are left out and `availability` checks the start alone (a prefilter that
    every eligible pair passes)."""
    c, o = tables.candidates, tables.offers
    start = o.start[offer]
    distance = distance_km()[c.municipality[cand], o.municipality[offer]]
    keys = cand * len(instance.offers) + offer
    available = c.available_from[cand] <= start
    if costs is not None:
        available &= o.start_month[offer] + costs.months - 1 <= c.available_until[cand]
    rules = {
        "offer_status": o.published[offer],
        "profession": c.profession_code[cand] == o.profession_code[offer],
        "forbidden": ~np.isin(keys, _forbidden_keys(instance, tables)),
        "ladder_stage": c.stage_ordinal[cand, o.stage[offer]] <= start,
        "practical_test": ~o.needs_practical[offer] | (c.practical_ordinal[cand] <= start),
        "language": c.cefr[cand] >= o.min_cefr[offer],
        "language_proof": ~o.needs_proof[offer] | c.proof_accepted[cand],
        "special_authorisation": ~o.needs_authorisation[offer] | c.authorised[cand],
        "availability": available,
        "commute": distance <= c.max_commute[cand],
    }
    if costs is not None:
        rules["period_length"] = costs.months <= o.months[offer]
        rules["supervisor"] = costs.months <= o.supervisor_reach[offer]
    return {name: np.asarray(rules[name], dtype=bool) for name in _PAIR_RULE_ORDER if name in rules}


def check_pairs(instance: Instance, tables: Tables, cand: IntArray, offer: IntArray) -> PairChecks:
    """Evaluate every rule on the pairs (cand[k], offer[k])."""
    cand = np.asarray(cand, dtype=np.int64)
    offer = np.asarray(offer, dtype=np.int64)
    costs = pair_costs(tables, cand, offer)
    rules = _pair_rules(instance, tables, cand, offer, costs)
    programmes = _programme_checks(instance, tables, cand, offer, costs)
    rules["funding"] = np.asarray(programmes.passes.any(axis=1), dtype=bool)
    return PairChecks(cand=cand, offer=offer, costs=costs, rules=rules, programmes=programmes)


@dataclass(frozen=True)
class Eligible:
    """The eligible pairs of an instance, with costs and the programmes that may pay each."""

    cand: IntArray
    offer: IntArray
    months: IntArray
    total_cost: IntArray
    fund_pair: IntArray  # one row per (pair, programme) that may pay
    fund_programme: IntArray
    fund_grant: IntArray
    fund_earmark: IntArray

    def __len__(self) -> int:
        return len(self.cand)


def _profession_blocks(instance: Instance, tables: Tables) -> list[tuple[IntArray, IntArray]]:
    """Candidates and published offers of each profession: only these can pair."""
    blocks = []
    c_prof = np.array(tables.candidates.profession, dtype=object)
    o_prof = np.array(tables.offers.profession, dtype=object)
    for profession in sorted(set(tables.candidates.profession)):
        cands = np.flatnonzero(c_prof == profession)
        offers = np.flatnonzero((o_prof == profession) & tables.offers.published)
        if len(cands) and len(offers):
            blocks.append((cands, offers))
    return blocks


def eligible_pairs(instance: Instance, tables: Tables | None = None) -> Eligible:
    """All eligible pairs, sorted by candidate then offer."""
    tables = tables or build_tables(instance)
    parts: list[Eligible] = []
    for cands, offers in _profession_blocks(instance, tables):
        step = max(1, _CHUNK // len(offers))
        for lo in range(0, len(cands), step):
            # Most pairs fail the commute or another rule that needs no costs: those first, the costs and every rule
            # only for the rest (the same pairs pass; at stress scale this was most of prepare's time).
            cand, offer = _within_commute(tables, cands[lo : lo + step], offers)
            near = np.ones(len(cand), dtype=bool)
            for mask in _pair_rules(instance, tables, cand, offer, None).values():
                near &= mask
            cand, offer = cand[np.flatnonzero(near)], offer[np.flatnonzero(near)]
            passing = np.ones(len(cand), dtype=bool)
            for mask in _pair_rules(instance, tables, cand, offer, pair_costs(tables, cand, offer)).values():
                passing &= mask
            keep = np.flatnonzero(passing)
            parts.append(_eligible_rows(check_pairs(instance, tables, cand[keep], offer[keep])))
    return _concatenate(parts)


def _within_commute(tables: Tables, cands: IntArray, offers: IntArray) -> tuple[IntArray, IntArray]:
    """The pairs of these candidates and offers within each candidate's commute, by candidate then offer.

    The commute rule fails most pairs (at stress scale, 13.6 M of the 220 M pairs of the same professions are within
    commute, and 5 M eligible), so it runs first, on a candidates x offers table of municipality distances, before
    any array of pairs exists: `eligible_pairs` on stress:0 took 32 s with every cost-free rule on the whole cross
    product, 12 s this way (the same pairs; national:0 0.54 s and 0.23 s)."""
    c, o = tables.candidates, tables.offers
    distance = distance_km()[np.ix_(c.municipality[cands], o.municipality[offers])]
    row, col = np.nonzero(distance <= c.max_commute[cands][:, None])
    return cands[row], offers[col]


def _eligible_rows(checks: PairChecks) -> Eligible:
    idx = np.flatnonzero(checks.eligible)
    rows, progs = np.nonzero(checks.programmes.passes[idx])
    return Eligible(
        cand=checks.cand[idx],
        offer=checks.offer[idx],
        months=checks.costs.months[idx],
        total_cost=checks.costs.total[idx],
        fund_pair=rows.astype(np.int64),
        fund_programme=progs.astype(np.int64),
        fund_grant=checks.programmes.grant[idx][rows, progs],
        fund_earmark=checks.programmes.earmark[idx][rows, progs],
    )


def _concatenate(parts: list[Eligible]) -> Eligible:
    """One Eligible from chunks, pairs sorted by (candidate, offer) and funding rows by (pair, programme)."""

    def cat(arrays: list[IntArray]) -> IntArray:
        return np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, dtype=np.int64)

    offsets = np.cumsum([0, *[len(p) for p in parts]])[:-1]
    c, o = cat([p.cand for p in parts]), cat([p.offer for p in parts])
    # One integer key per pair and a stable sort (each chunk's funding rows are already in programme order within
    # a pair): several times faster than lexsort on two keys at stress scale.
    order = np.argsort(c * (int(o.max()) + 1 if len(o) else 1) + o, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    fund_pair = rank[cat([p.fund_pair + off for p, off in zip(parts, offsets, strict=True)])]
    fund_programme = cat([p.fund_programme for p in parts])
    f_order = np.argsort(fund_pair, kind="stable")
    return Eligible(
        cand=c[order],
        offer=o[order],
        months=cat([p.months for p in parts])[order],
        total_cost=cat([p.total_cost for p in parts])[order],
        fund_pair=fund_pair[f_order],
        fund_programme=fund_programme[f_order],
        fund_grant=cat([p.fund_grant for p in parts])[f_order],
        fund_earmark=cat([p.fund_earmark for p in parts])[f_order],
    )


@dataclass(frozen=True)
class OfferVerdict:
    """Why one offer is or is not open to one candidate."""

    offer_id: str
    failed_rules: list[str]
    programmes: dict[str, list[str]]  # programme id -> failed programme rules

    @property
    def eligible(self) -> bool:
        """No rule excludes the pair."""
        return not self.failed_rules


def explain_candidate(instance: Instance, candidate_id: str, tables: Tables | None = None) -> list[OfferVerdict]:
    """Every offer with the rules that exclude it for this candidate (an empty list of rules: eligible)."""
    tables = tables or build_tables(instance)
    ci = tables.candidates.index[candidate_id]
    n = len(instance.offers)
    checks = check_pairs(instance, tables, np.full(n, ci), np.arange(n))
    verdicts = []
    for k, offer in enumerate(instance.offers):
        programmes = {
            prog.id: [name for name, mask in checks.programmes.rules.items() if not mask[k, g]]
            for g, prog in enumerate(instance.programmes)
        }
        verdicts.append(OfferVerdict(offer.id, checks.failed(k), programmes))
    return verdicts
