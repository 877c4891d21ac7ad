"""Seeded generator of random, valid matching instances with the shape of real rounds.

`generate(candidates, offers, seed=...)` draws everything from one `numpy.random.default_rng(seed)`, so the same
arguments always give the same instance. The shape follows DOMAIN.md: professions weighted towards physicians,
nurses and dentists; candidates and care units in real municipalities of one county, several or all of them;
supervisors shared by several offers of their unit; PTJ lengths by profession; a share of candidates who lack the
ladder stage, language level, language proof or authorisation an offer needs; funding programmes with budgets,
co-funding, unit and candidate caps, earmarks, residence rules and one paused programme. Eligibility is sparse
because of the commute limit; `pairs_per_candidate` scales the commute limits so that the mean number of eligible
offers per candidate comes near a target. Nothing personal is generated: ids are opaque and organisation numbers
synthetic (Luhn-valid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from stdnum import luhn

from matching.input.codes import county_codes, municipalities
from matching.input.instance import (
    DEFAULT_PTJ_MONTHS,
    Candidate,
    CostItem,
    Instance,
    OfferKind,
    Ownership,
    Profession,
    ResidenceStatus,
    SizeClass,
    UnitKind,
)
from matching.input.validate import check_instance
from matching.rules.eligibility import check_pairs, grant_amount
from matching.rules.tables import BoolArray, FloatArray, IntArray, build_tables, distance_km, municipality_numbers

ROUND_DATE = date(2027, 1, 15)

SCALES: dict[str, tuple[int, int]] = {
    "tiny": (30, 15),
    "small": (120, 60),
    "regional": (500, 300),
    "national": (5000, 2500),
    "stress": (50000, 20000),
}
# Programme counts and eligibility targets of the named scales (DESIGN.md, Performance).
_SCALE_PROGRAMMES: dict[str, int] = {"regional": 5, "national": 20, "stress": 20}
_SCALE_PAIRS: dict[str, float] = {"stress": 100.0}

# Professions generated and their share among candidates.
_PROFESSIONS: tuple[Profession, ...] = (
    Profession.PHYSICIAN,
    Profession.NURSE,
    Profession.DENTIST,
    Profession.DENTAL_HYGIENIST,
    Profession.PHYSIOTHERAPIST,
    Profession.PSYCHOLOGIST,
    Profession.BIOMEDICAL_ANALYST,
)
_CANDIDATE_MIX = np.array([0.34, 0.26, 0.16, 0.06, 0.07, 0.06, 0.05])
_EXCLUSIVE = np.array([p in (Profession.PHYSICIAN, Profession.DENTIST) for p in _PROFESSIONS])

# Unit kinds: share of units, profession mix of their offers (in _PROFESSIONS order), ownership mix
# (region, municipality, private with public funding, private), size mix (small, medium, large), name.
_KINDS: tuple[tuple[UnitKind, float, tuple[float, ...], tuple[float, ...], tuple[float, ...], str], ...] = (
    (UnitKind.PRIMARY_CARE, 0.34, (0.5, 0.35, 0, 0, 0.08, 0.07, 0), (0.55, 0, 0.4, 0.05), (0.4, 0.45, 0.15), "VC"),
    (UnitKind.HOSPITAL, 0.24, (0.4, 0.4, 0, 0, 0.08, 0, 0.12), (0.95, 0, 0.05, 0), (0.05, 0.3, 0.65), "Sjukhus"),
    (UnitKind.DENTAL, 0.2, (0, 0, 0.75, 0.25, 0, 0, 0), (0.45, 0, 0.4, 0.15), (0.45, 0.4, 0.15), "Tandvård"),
    (UnitKind.PSYCHIATRY, 0.07, (0.4, 0.3, 0, 0, 0, 0.3, 0), (0.85, 0, 0.15, 0), (0.2, 0.5, 0.3), "Psykiatri"),
    (UnitKind.REHABILITATION, 0.06, (0, 0, 0, 0, 0.8, 0.2, 0), (0.4, 0, 0.5, 0.1), (0.5, 0.4, 0.1), "Rehab"),
    (UnitKind.ELDERLY_CARE, 0.05, (0, 1, 0, 0, 0, 0, 0), (0, 0.7, 0.3, 0), (0.5, 0.4, 0.1), "Äldreboende"),
    (UnitKind.TRAINING_PROVIDER, 0.04, tuple(_CANDIDATE_MIX), (0, 0.4, 0, 0.6), (0.6, 0.3, 0.1), "Utbildning"),
)
_OWNERSHIPS = (Ownership.REGION, Ownership.MUNICIPALITY, Ownership.PRIVATE_PUBLIC_FUNDING, Ownership.PRIVATE)
_SIZES = (SizeClass.SMALL, SizeClass.MEDIUM, SizeClass.LARGE)
_TRAINING = len(_KINDS) - 1

# Monthly salary and supervisor fee ranges (SEK) by profession, in _PROFESSIONS order.
_SALARY = np.array([(33000, 42000), (27000, 33000), (31000, 38000), (26000, 30000), (26000, 31000), (29000, 35000),
                    (26000, 30000)])  # fmt: skip
_FEE = np.array([(4000, 6000), (2500, 4000), (3500, 5500), (2000, 3500), (2000, 3500), (3000, 4500), (2000, 3500)])
_BASE_MONTHS = np.array([DEFAULT_PTJ_MONTHS.get(p, 0) for p in _PROFESSIONS])  # 0: months from the decision

_OFFER_KINDS = (OfferKind.PTJ, OfferKind.LANGUAGE_PLACEMENT, OfferKind.PROVTJANSTGORING, OfferKind.TRAINING_SEAT)

# Specialty areas by profession: (Swedish, English); offers use Swedish, candidates either.
_SPECIALTIES: tuple[tuple[tuple[str, str], ...], ...] = (
    (("allmänmedicin", "general practice"), ("internmedicin", "internal medicine"), ("kirurgi", "surgery"),
     ("psykiatri", "psychiatry"), ("barn- och ungdomsmedicin", "paediatrics"), ("anestesi", "anaesthesiology"),
     ("geriatrik", "geriatrics")),
    (("akutsjukvård", "emergency nursing"), ("äldrevård", "elderly care"), ("primärvård", "primary care"),
     ("psykiatrisk vård", "psychiatric nursing"), ("operationssjukvård", "theatre nursing")),
    (("allmäntandvård", "general dentistry"), ("barntandvård", "paediatric dentistry"),
     ("oral kirurgi", "oral surgery"), ("protetik", "prosthodontics")),
    (("tandhygien", "dental hygiene"), ("parodontologi", "periodontology")),
    (("ortopedi", "orthopaedics"), ("neurologi", "neurology"), ("rehabilitering", "rehabilitation")),
    (("klinisk psykologi", "clinical psychology"), ("neuropsykologi", "neuropsychology"),
     ("barn- och ungdomspsykiatri", "child and adolescent psychiatry")),
    (("klinisk kemi", "clinical chemistry"), ("mikrobiologi", "microbiology"), ("klinisk fysiologi", "physiology")),
)  # fmt: skip
_COUNTRIES = ("SY", "IR", "IQ", "UA", "IN", "PK", "EG", "RU", "TR", "AF", "NG", "PH", "BA", "LB", "SO", "ET", "CO")

_LADDER = ("education_assessed", "language_proof", "theory_test", "practical_test", "regulations_course",
           "ptj_decision")  # fmt: skip
_PROOFS_REACHED = ("svenska_3", "sva_3", "tisus", "cefr_c1_certificate", "university_eligibility",
                   "employer_assessment", "sfi_d")  # fmt: skip
_CEFR = ("A1", "A2", "B1", "B2", "C1", "C2")
_STATUSES = tuple(ResidenceStatus)

# County: (region, county administrative board, population in thousands, used as a weight).
_COUNTIES: dict[str, tuple[str, str, int]] = {
    "01": ("Region Stockholm", "Stockholms län", 2450),
    "03": ("Region Uppsala", "Uppsala län", 400),
    "04": ("Region Sörmland", "Södermanlands län", 300),
    "05": ("Region Östergötland", "Östergötlands län", 470),
    "06": ("Region Jönköpings län", "Jönköpings län", 370),
    "07": ("Region Kronoberg", "Kronobergs län", 205),
    "08": ("Region Kalmar län", "Kalmar län", 246),
    "09": ("Region Gotland", "Gotlands län", 61),
    "10": ("Region Blekinge", "Blekinge län", 157),
    "12": ("Region Skåne", "Skåne län", 1420),
    "13": ("Region Halland", "Hallands län", 340),
    "14": ("Västra Götalandsregionen", "Västra Götalands län", 1750),
    "17": ("Region Värmland", "Värmlands län", 283),
    "18": ("Region Örebro län", "Örebro län", 306),
    "19": ("Region Västmanland", "Västmanlands län", 279),
    "20": ("Region Dalarna", "Dalarnas län", 288),
    "21": ("Region Gävleborg", "Gävleborgs län", 287),
    "22": ("Region Västernorrland", "Västernorrlands län", 244),
    "23": ("Region Jämtland Härjedalen", "Jämtlands län", 132),
    "24": ("Region Västerbotten", "Västerbottens län", 275),
    "25": ("Region Norrbotten", "Norrbottens län", 250),
}

_R = ROUND_DATE.year * 12 + ROUND_DATE.month - 1  # month index of the round
_R_DAY = ROUND_DATE.toordinal()


def generate_scale(name: str, seed: int) -> Instance:
    """An instance of a named scale in `SCALES` (regional: 5 programmes, national and stress: 20)."""
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; known: {', '.join(SCALES)}")
    n_candidates, n_offers = SCALES[name]
    return generate(
        n_candidates,
        n_offers,
        seed=seed,
        programmes=_SCALE_PROGRAMMES.get(name),
        pairs_per_candidate=_SCALE_PAIRS.get(name),
    )


def generate(
    candidates: int,
    offers: int,
    *,
    seed: int,
    programmes: int | None = None,
    binding_budgets: bool = True,
    counties: tuple[str, ...] | None = None,
    pairs_per_candidate: float | None = None,
) -> Instance:
    """A random valid instance; the same arguments always give the same instance."""
    if candidates < 1 or offers < 1:
        raise ValueError("candidates and offers must be at least 1")
    n_programmes = max(2, min(20, offers // 100)) if programmes is None else programmes
    if n_programmes < 1:
        raise ValueError("programmes must be at least 1")
    if pairs_per_candidate is not None and pairs_per_candidate <= 0:
        raise ValueError("pairs_per_candidate must be positive")
    rng = np.random.default_rng(seed)
    geo = _geography(rng, _choose_counties(rng, candidates, counties))
    units = _units(rng, geo, offers)
    offer_cols = _offers(rng, units, offers)
    supervisors, offer_supervisors = _supervisors(rng, units, offer_cols)
    cand = _candidates(rng, geo, candidates)
    _attach_preferences(rng, geo, units, offer_cols, cand)
    base = Instance.model_validate(
        {
            "name": f"generated {candidates}x{offers} seed {seed}",
            "round_date": ROUND_DATE,
            "units": _unit_dicts(geo, units),
            "supervisors": supervisors,
            "offers": _offer_dicts(offer_cols, offer_supervisors),
            "programmes": _programmes(rng, n_programmes, geo, units, offer_cols, candidates, binding_budgets),
            "policy": {"seed": seed % 2**31},
        }
    )
    if pairs_per_candidate is not None:
        scale = _commute_scale(rng, base, cand, offer_cols, pairs_per_candidate)
        cand.commute = np.minimum(2000.0, np.round(cand.commute * scale, 1))
    # The other objects are validated already; pydantic keeps model instances as they are.
    instance = Instance.model_validate({**dict(base), "candidates": _candidate_dicts(cand)})
    check_instance(instance)
    return instance


# --- geography ----------------------------------------------------------------------------------------------


@dataclass
class _Geo:
    counties: tuple[str, ...]
    codes: list[str]  # municipality codes in the chosen counties
    county_of: list[str]
    weight: FloatArray  # share of people (and of care units) living in each municipality


def _choose_counties(rng: np.random.Generator, n_candidates: int, counties: tuple[str, ...] | None) -> tuple[str, ...]:
    every = sorted(county_codes())
    if counties is not None:
        unknown = [c for c in counties if c not in every]
        if unknown or not counties:
            raise ValueError(f"counties must be non-empty county codes; unknown: {unknown}")
        return tuple(sorted(set(counties)))
    k = 1 if n_candidates <= 1000 else min(len(every), math.ceil(n_candidates / 240))
    if k == len(every):
        return tuple(every)
    population = np.array([_COUNTIES[c][2] for c in every], dtype=np.float64)
    chosen = rng.choice(len(every), size=k, replace=False, p=population / population.sum())
    return tuple(every[i] for i in sorted(chosen))


def _geography(rng: np.random.Generator, counties: tuple[str, ...]) -> _Geo:
    """Municipalities of the chosen counties, weighted so that county seats and cities dominate."""
    munis = [m for m in municipalities().values() if m.county in counties]
    suffix = np.array([int(m.code[2:]) for m in munis])
    base = np.where(suffix == 80, 10.0, np.where(suffix > 80, 3.0, 1.0)) * rng.lognormal(0.0, 0.5, len(munis))
    county_of = [m.county for m in munis]
    weight = np.empty(len(munis))
    for county in counties:
        mask = np.array([c == county for c in county_of])
        weight[mask] = base[mask] / base[mask].sum() * _COUNTIES[county][2]
    return _Geo(counties, [m.code for m in munis], county_of, weight / weight.sum())


# --- units, offers, supervisors ------------------------------------------------------------------------------


@dataclass
class _Units:
    kind: IntArray  # index into _KINDS
    municipality: IntArray  # index into _Geo.codes
    ownership: IntArray
    size: IntArray
    orgnr: list[str]


def _units(rng: np.random.Generator, geo: _Geo, n_offers: int) -> _Units:
    n = min(n_offers, max(3, round(n_offers / 4)))
    share = np.array([k[1] for k in _KINDS])
    if n < 10:  # training providers are rare; small instances have none
        share[_TRAINING] = 0.0
    kind = rng.choice(len(_KINDS), size=n, p=share / share.sum())
    kind[: min(n, 3)] = [0, 1, 2][: min(n, 3)]  # every instance has primary care, a hospital and dental care
    ownership = np.array([rng.choice(4, p=_KINDS[k][3]) for k in kind], dtype=np.int64)
    size = np.array([rng.choice(3, p=_KINDS[k][4]) for k in kind], dtype=np.int64)
    municipality = rng.choice(len(geo.codes), size=n, p=geo.weight)
    orgnr = []
    for i in range(n):
        county = geo.county_of[municipality[i]]
        own = _OWNERSHIPS[ownership[i]]
        if own is Ownership.REGION:
            orgnr.append(_orgnr(f"2321000{county}"))
        elif own is Ownership.MUNICIPALITY:
            orgnr.append(_orgnr(f"212000{geo.codes[municipality[i]][1:]}"))
        else:
            orgnr.append(_orgnr(f"556{rng.integers(0, 1_000_000):06d}"))
    return _Units(kind.astype(np.int64), municipality.astype(np.int64), ownership, size, orgnr)


def _orgnr(nine_digits: str) -> str:
    """A Luhn-valid organisation number NNNNNN-NNNN from its first nine digits."""
    digits = nine_digits + str(luhn.calc_check_digit(nine_digits))
    return f"{digits[:6]}-{digits[6:]}"


@dataclass
class _Offers:
    unit: IntArray
    profession: IntArray  # index into _PROFESSIONS
    kind: IntArray  # index into _OFFER_KINDS
    start_month: IntArray
    months: IntArray
    slots: IntArray
    min_cefr: IntArray
    salary: IntArray
    fee: IntArray
    course_fee: IntArray
    other: IntArray
    specialty: list[str]
    status: list[str]
    ranking: list[list[str]]


def _offers(rng: np.random.Generator, units: _Units, n: int) -> _Offers:
    size_weight = np.array([1.0, 2.0, 4.0])[units.size]
    unit = rng.choice(len(units.kind), size=n, p=size_weight / size_weight.sum()).astype(np.int64)
    unit[: len(units.kind)] = np.arange(len(units.kind))  # every unit publishes something
    ukind = units.kind[unit]
    profession = np.zeros(n, dtype=np.int64)
    for k, spec in enumerate(_KINDS):
        at = np.flatnonzero(ukind == k)
        mix = np.array(spec[2], dtype=np.float64)
        profession[at] = rng.choice(len(_PROFESSIONS), size=len(at), p=mix / mix.sum())
    kind = rng.choice(3, size=n, p=[0.85, 0.1, 0.05]).astype(np.int64)
    kind[ukind == _TRAINING] = 3
    horizon = int(rng.integers(12, 19))  # start months spread over 12-18 months from the round
    start_month = _R + rng.integers(1, horizon + 1, size=n)
    decision = (kind == 0) | (kind == 2)
    base = np.where(_BASE_MONTHS[profession] > 0, _BASE_MONTHS[profession], rng.choice([3, 4, 6], size=n))
    stretch = np.where(rng.random(n) < 0.25, rng.choice([1.5, 2.0], size=n), 1.0)  # room for part-timers
    months = np.where(decision, np.ceil(base * stretch), np.where(kind == 1, rng.integers(2, 4, n), 0))
    months = np.where(kind == 3, rng.integers(3, 7, n), months).astype(np.int64)
    slots = rng.choice([1, 2, 3], size=n, p=[0.6, 0.28, 0.12]).astype(np.int64)
    cefr_ptj = np.where(profession == 0, 4 - (rng.random(n) < 0.2), 3 + (rng.random(n) < 0.4))
    min_cefr = np.select([kind == 0, kind == 2, kind == 1], [cefr_ptj, 3, 2 - (rng.random(n) < 0.3)], 1)
    lo, hi = _SALARY[profession, 0] // 100, _SALARY[profession, 1] // 100
    salary = np.where(decision, rng.integers(lo, hi + 1) * 100, np.where(kind == 1, 7000, 0))
    fee = rng.integers(_FEE[profession, 0] // 100, _FEE[profession, 1] // 100 + 1) * 100
    fee = np.where(decision, fee, np.where(kind == 1, rng.integers(10, 21, n) * 100, 0))
    course_fee = np.where(kind == 3, rng.integers(15, 46, n) * 1000, 0)
    other = np.where(kind == 3, rng.integers(0, 11, n) * 500, 0)
    specialty = [_SPECIALTIES[p][rng.integers(len(_SPECIALTIES[p]))][0] for p in profession]
    status = rng.choice(["published", "draft", "withdrawn"], size=n, p=[0.97, 0.02, 0.01]).tolist()
    return _Offers(
        unit=unit,
        profession=profession,
        kind=kind,
        start_month=start_month.astype(np.int64),
        months=months,
        slots=slots,
        min_cefr=min_cefr.astype(np.int64),
        salary=salary.astype(np.int64),
        fee=fee.astype(np.int64),
        course_fee=course_fee.astype(np.int64),
        other=other.astype(np.int64),
        specialty=specialty,
        status=status,
        ranking=[[] for _ in range(n)],
    )


def _supervisors(
    rng: np.random.Generator, units: _Units, offers: _Offers
) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Pools of supervisors per (unit, profession), each shared by about 2.5 offers of the pool over time."""
    key = offers.unit * len(_PROFESSIONS) + offers.profession
    groups, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    pool = np.maximum(1, np.round(counts / rng.uniform(2.0, 3.0, len(groups)))).astype(np.int64)
    pool_start = np.concatenate([[0], np.cumsum(pool)[:-1]])
    n = int(pool.sum())
    order = np.argsort(key, kind="stable")
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = np.arange(len(key)) - np.repeat(np.cumsum(counts) - counts, counts)
    own_pool = pool[inverse]
    primary = pool_start[inverse] + rank % own_pool
    second = np.where((own_pool > 1) & (rng.random(len(key)) < 0.35), pool_start[inverse] + (rank + 1) % own_pool, -1)
    offer_supervisors = [
        [_sid(int(a))] + ([_sid(int(b))] if b >= 0 else []) for a, b in zip(primary, second, strict=True)
    ]
    s_unit = np.repeat(offers.unit[first], pool)
    s_prof = np.repeat(offers.profession[first], pool)
    late = rng.random(n) < 0.1
    from_month = np.where(late, _R + rng.integers(1, 7, n), _R - rng.integers(0, 37, n))
    limited = rng.random(n) < 0.15
    until_month = _R + rng.integers(6, 19, n)
    capacity = rng.choice([1, 2], size=n, p=[0.65, 0.35])
    licensed = rng.random(n) >= 0.02
    specialist = rng.random(n) < 0.4
    trained = rng.random(n) < 0.6
    supervisors = [
        {
            "id": _sid(i),
            "unit_id": _uid(int(s_unit[i])),
            "profession": _PROFESSIONS[s_prof[i]].value,
            "licensed": bool(licensed[i]),
            "specialist": bool(specialist[i]),
            "trained": bool(trained[i]),
            "capacity": int(capacity[i]),
            "available_from": _month_start(int(from_month[i])),
            "available_until": _month_end(int(until_month[i])) if limited[i] else None,
        }
        for i in range(n)
    ]
    return supervisors, offer_supervisors


# --- candidates ----------------------------------------------------------------------------------------------


@dataclass
class _Candidates:
    profession: IntArray
    municipality: IntArray  # index into _Geo.codes
    codes: list[str]
    county: list[str]
    ladder: list[dict[str, Any]]
    cefr: list[str]
    proof: list[str]
    status: list[str]
    country: list[str]
    specialty: list[str]
    experience: IntArray
    available_from: list[date]
    available_until: list[date | None]
    part_time: FloatArray
    commute: FloatArray
    ready_since: list[date]
    applied_on: list[date | None]
    wishes: list[list[str]]


def _candidates(rng: np.random.Generator, geo: _Geo, n: int) -> _Candidates:
    profession = rng.choice(len(_PROFESSIONS), size=n, p=_CANDIDATE_MIX).astype(np.int64)
    municipality = rng.choice(len(geo.codes), size=n, p=geo.weight).astype(np.int64)
    # Rungs reached (0-6); a fifth of those with a PTJ decision only expect it, dated after the round.
    level = rng.choice(7, size=n, p=[0.03, 0.05, 0.06, 0.07, 0.06, 0.08, 0.65])
    expected = (level == 6) & (rng.random(n) < 0.2)
    last_past = _R_DAY - np.where(expected, rng.integers(0, 120, n), rng.integers(0, 540, n))
    past_steps = np.where(expected, 5, level)
    # Rung k (of those reached) is dated the sum of the later gaps before the last rung reached.
    cumulative = np.cumsum(rng.integers(20, 200, size=(n, 6)), axis=1)
    last_gap = np.take_along_axis(cumulative, np.maximum(past_steps - 1, 0)[:, None], axis=1)
    step_day = last_past[:, None] - (last_gap - cumulative)
    decision_day = _R_DAY + rng.integers(20, 300, n)
    authorisation = np.where(
        level >= 5, rng.choice(["granted", "applied", "none"], size=n, p=[0.6, 0.25, 0.15]), "none"
    )
    authorisation = np.where((level < 5) & (rng.random(n) < 0.1), "applied", authorisation)
    decided_months = np.where(
        _BASE_MONTHS[profession] > 0, _BASE_MONTHS[profession], rng.choice([3, 4, 6], size=n, p=[0.3, 0.3, 0.4])
    )
    ladder: list[dict[str, Any]] = []
    for i in range(n):
        rungs: dict[str, Any] = {name: _day(int(step_day[i, k])) for k, name in enumerate(_LADDER[: past_steps[i]])}
        if expected[i]:
            rungs["ptj_decision"] = _day(int(decision_day[i]))
        if level[i] == 6:
            rungs["ptj_required_months"] = int(decided_months[i])
        if _EXCLUSIVE[profession[i]]:
            rungs["special_authorisation"] = str(authorisation[i])
        ladder.append(rungs)
    has_proof = level >= 2
    cefr = np.where(
        has_proof, rng.choice([3, 4, 5], size=n, p=[0.25, 0.65, 0.1]), rng.choice([1, 2, 3], size=n, p=[0.2, 0.5, 0.3])
    )
    proof = np.where(
        has_proof,
        rng.choice(_PROOFS_REACHED, size=n, p=[0.2, 0.15, 0.2, 0.2, 0.1, 0.1, 0.05]),
        rng.choice(["none", "sfi_d"], size=n, p=[0.7, 0.3]),
    )
    ready_day = np.where(level > 0, np.minimum(last_past, _R_DAY), _R_DAY - rng.integers(0, 365, n))
    applied = np.minimum(ready_day + rng.integers(0, 60, n), _R_DAY)
    has_applied = rng.random(n) < 0.7
    later = rng.random(n) < 0.2
    from_month = np.where(later, _R + rng.integers(1, 7, n), _R - rng.integers(0, 13, n))
    limited = rng.random(n) < 0.15
    until_month = _R + rng.integers(6, 19, n)
    specialty = []
    for p in profession:
        pair = _SPECIALTIES[p][rng.integers(len(_SPECIALTIES[p]))]
        specialty.append(pair[int(rng.integers(2))])
    return _Candidates(
        profession=profession,
        municipality=municipality,
        codes=[geo.codes[m] for m in municipality],
        county=[geo.county_of[m] for m in municipality],
        ladder=ladder,
        cefr=[_CEFR[c] for c in cefr],
        proof=proof.tolist(),
        status=rng.choice([s.value for s in _STATUSES], size=n, p=[0.1, 0.45, 0.3, 0.07, 0.08]).tolist(),
        country=rng.choice(_COUNTRIES, size=n).tolist(),
        specialty=specialty,
        experience=np.minimum(40, rng.geometric(0.12, n) - 1).astype(np.int64),
        available_from=[_month_start(int(m)) for m in from_month],
        available_until=[_month_end(int(u)) if lim else None for u, lim in zip(until_month, limited, strict=True)],
        part_time=rng.choice([1.0, 0.75, 0.5], size=n, p=[0.85, 0.1, 0.05]),
        commute=rng.choice(
            [20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0], size=n, p=[0.1, 0.15, 0.15, 0.2, 0.15, 0.15, 0.1]
        ),
        ready_since=[_day(int(d)) for d in ready_day],
        applied_on=[_day(int(a)) if h else None for a, h in zip(applied, has_applied, strict=True)],
        wishes=[[] for _ in range(n)],
    )


def _attach_preferences(rng: np.random.Generator, geo: _Geo, units: _Units, offers: _Offers, cand: _Candidates) -> None:
    """Wishes for about a third of the candidates, clinic rankings for a fifth of the offers, within one county."""
    county_index = {c: i for i, c in enumerate(geo.counties)}
    muni_county = np.array([county_index[c] for c in geo.county_of], dtype=np.int64)
    p = len(_PROFESSIONS)
    offer_key = muni_county[units.municipality[offers.unit]] * p + offers.profession
    cand_key = muni_county[cand.municipality] * p + cand.profession
    offer_groups = _group(offer_key)
    cand_groups = _group(cand_key)
    for i in np.flatnonzero(rng.random(len(cand_key)) < 0.35):
        group = offer_groups.get(int(cand_key[i]))
        if group is None:
            continue
        picks = group[rng.permutation(len(group))[: int(rng.integers(1, 6))]]
        cand.wishes[i] = [_uid(int(offers.unit[o])) if rng.random() < 0.15 else _oid(int(o)) for o in picks]
        cand.wishes[i] = list(dict.fromkeys(cand.wishes[i]))
    for o in np.flatnonzero(rng.random(len(offer_key)) < 0.2):
        group = cand_groups.get(int(offer_key[o]))
        if group is not None:
            offers.ranking[o] = [_cid(int(c)) for c in group[rng.permutation(len(group))[: int(rng.integers(1, 6))]]]


def _group(keys: IntArray) -> dict[int, IntArray]:
    order = np.argsort(keys, kind="stable")
    values, starts = np.unique(keys[order], return_index=True)
    ends = np.append(starts[1:], len(keys))
    return {int(v): order[s:e] for v, s, e in zip(values, starts, ends, strict=True)}


# --- programmes ----------------------------------------------------------------------------------------------

_ALL_KINDS = (OfferKind.PTJ, OfferKind.PROVTJANSTGORING, OfferKind.LANGUAGE_PLACEMENT, OfferKind.TRAINING_SEAT)
_NEWCOMERS = (ResidenceStatus.ASYLUM_SEEKER, ResidenceStatus.TEMPORARY_PROTECTION, ResidenceStatus.TEMPORARY)


@dataclass(frozen=True)
class _Template:
    """One kind of programme from the seed documents."""

    title: str
    regional: bool  # funded by one county's region or board, for that county only
    professions: tuple[Profession, ...]
    kinds: tuple[OfferKind, ...]
    covers: tuple[CostItem, ...]
    share: float
    window: tuple[int, int]  # months from the round
    spend_by: int  # months from the round
    earmark: tuple[Profession, ...] = ()
    unit_caps: bool = False
    candidate_cap: bool = False
    ownerships: tuple[Ownership, ...] = ()
    statuses: tuple[ResidenceStatus, ...] = ()
    board: bool = False  # funded by the county administrative board


_PAY = (CostItem.SALARY, CostItem.SUPERVISOR_FEE)
# Placements per slot that budgets are sized against. Calibrated on generated instances (regional and small scales,
# solved with and without binding money) so that the budgets fund 40-70 % of the placements ample money allows:
# supervisors and eligibility leave many slots empty, and a count-maximising round fills the cheap ones first.
_FILLABLE = 0.3
_TEMPLATES = (
    _Template(
        "PTJ-medel", True, (Profession.PHYSICIAN, Profession.DENTIST, Profession.NURSE), (OfferKind.PTJ,), _PAY,
        1.0, (0, 11), 23, earmark=(Profession.NURSE,),
    ),
    _Template(
        "Statlig överenskommelse (SKR)", False, _PROFESSIONS, _ALL_KINDS, (*_PAY, CostItem.COURSE_FEE), 1.0, (-6, 12),
        30, earmark=(Profession.DENTIST, Profession.DENTAL_HYGIENIST), candidate_cap=True,
    ),
    _Template(
        "Bidrag för handledning", True, _PROFESSIONS, (OfferKind.PTJ, OfferKind.PROVTJANSTGORING), _PAY, 0.5, (-3, 3),
        20, unit_caps=True, ownerships=(Ownership.REGION, Ownership.PRIVATE_PUBLIC_FUNDING),
    ),
    _Template(
        "Vårdspråk för nyanlända", True, _PROFESSIONS, (OfferKind.TRAINING_SEAT, OfferKind.LANGUAGE_PLACEMENT),
        (CostItem.SALARY, CostItem.COURSE_FEE, CostItem.OTHER), 1.0, (-12, 6), 24, statuses=_NEWCOMERS, board=True,
    ),
    _Template(
        "Kompetensförsörjning", True, (Profession.NURSE, Profession.PHYSICIAN, Profession.PHYSIOTHERAPIST,
        Profession.PSYCHOLOGIST, Profession.BIOMEDICAL_ANALYST), (OfferKind.PTJ,), _PAY, 1.0, (-1, 11), 27,
        earmark=(Profession.NURSE,), unit_caps=True,
    ),
)  # fmt: skip


def _programmes(
    rng: np.random.Generator,
    count: int,
    geo: _Geo,
    units: _Units,
    offers: _Offers,
    n_candidates: int,
    binding: bool,
) -> list[dict[str, Any]]:
    """Programmes cycling through the templates; regional ones take the chosen counties in turn."""
    unit_county = np.array([geo.county_of[m] for m in units.municipality])[offers.unit]
    templates = [_TEMPLATES[i % len(_TEMPLATES)] for i in range(count)]
    paused = 2 if count >= 3 else 0
    # Drawn whether or not money binds, so that both modes share everything else.
    fraction = rng.uniform(0.4, 0.7, count)
    earmarked = rng.uniform(0.1, 0.25, count)
    cutoff = _month_start(_R - int(rng.integers(2, 6)))
    fundable, bound = [], []
    for index, t in enumerate(templates):
        county = geo.counties[sum(x.regional for x in templates[:index]) % len(geo.counties)]
        ok = np.isin(offers.profession, [_PROFESSIONS.index(p) for p in t.professions])
        ok &= np.isin(offers.kind, [_OFFER_KINDS.index(k) for k in t.kinds])
        if t.regional:
            ok &= unit_county == county
        if t.ownerships:
            ok &= np.isin(units.ownership[offers.unit], [_OWNERSHIPS.index(o) for o in t.ownerships])
        grant = _grant_bound(offers, t)
        fundable.append((ok & (grant > 0), county))
        bound.append(grant)
    funders = np.maximum(1, sum(mask.astype(np.int64) for mask, _ in fundable))
    placements = _FILLABLE * min(1.0, n_candidates / max(1, int(offers.slots.sum())))
    result = []
    for index, t in enumerate(templates):
        mask, county = fundable[index]
        grants = bound[index][mask]
        largest = int(grants.max()) if len(grants) else 0
        # The most it could ever pay: every slot of its offers filled, or every candidate given its largest grant.
        spend = min(int((offers.slots * bound[index])[mask].sum()), n_candidates * largest)
        item: dict[str, Any] = {
            "id": f"P{index + 1:02d}",
            "name": f"{t.title} {_COUNTIES[county][1]}" if t.regional else t.title,
            "funder": (f"Länsstyrelsen i {_COUNTIES[county][1]}" if t.board else _COUNTIES[county][0])
            if t.regional
            else "Staten via SKR",
            "window_start": _month_start(_R + t.window[0]),
            "window_end": _month_end(_R + t.window[1]),
            "spend_by": _month_end(_R + t.spend_by),
            "professions": [p.value for p in t.professions],
            "offer_kinds": [k.value for k in t.kinds],
            "covers": [c.value for c in t.covers],
            "cofunding_share": t.share,
        }
        if t.regional:
            item["unit_counties"] = [county]
            if not t.ownerships:  # grants to units (like Västra Götaland's) do not look at residence
                item["residence_counties"] = [county]
        if t.ownerships:
            item["unit_ownerships"] = [o.value for o in t.ownerships]
        if t.statuses:
            item["residence_statuses"] = [s.value for s in t.statuses]
        if index == paused:
            item["status"] = "paused"
            item["window_start"] = _month_start(_R - 18)
            item["cutoff"] = cutoff
        if not binding:
            item["budget"] = _round_up(spend * 1.05 + 100_000, 100_000)
        else:
            # Its share of the money all placements would need, split among the programmes that may pay each.
            typical = _typical_grant(offers, t)
            demand = float((offers.slots * typical / funders)[mask].sum()) * placements
            budget = _round_up(max(fraction[index] * demand, 1.2 * largest, 50_000), 10_000)
            item["budget"] = budget
            _binding_rules(item, t, offers, mask, budget, float(earmarked[index]))
        result.append(item)
    return result


def _binding_rules(
    item: dict[str, Any], t: _Template, offers: _Offers, mask: BoolArray, budget: int, earmarked: float
) -> None:
    """Earmarks, unit caps and candidate caps that make money bind beyond the budget."""
    typical = _typical_grant(offers, t)[mask]
    if not len(typical):
        return
    if t.earmark:
        amount = _round_up(budget * earmarked, 10_000)
        if amount <= budget:
            item["earmarks"] = [
                {"id": f"{item['id']}-E1", "amount": amount, "professions": [p.value for p in t.earmark]}
            ]
    median = float(np.median(typical))
    if t.unit_caps:
        item["unit_caps"] = {
            size: _round_up(median * factor, 5_000) for size, factor in (("small", 1.2), ("medium", 2.5), ("large", 4))
        }
    if t.candidate_cap:
        item["candidate_cap"] = _round_up(float(np.percentile(typical, 75)) * 1.05, 1_000)


def _covered_monthly(offers: _Offers, t: _Template) -> IntArray:
    monthly = np.zeros(len(offers.unit), dtype=np.int64)
    if CostItem.SALARY in t.covers:
        monthly = monthly + offers.salary
    if CostItem.SUPERVISOR_FEE in t.covers:
        monthly = monthly + offers.fee
    return monthly


def _covered_once(offers: _Offers, t: _Template) -> IntArray:
    once = np.zeros(len(offers.unit), dtype=np.int64)
    if CostItem.COURSE_FEE in t.covers:
        once = once + offers.course_fee
    if CostItem.OTHER in t.covers:
        once = once + offers.other
    return once


def _grant_bound(offers: _Offers, t: _Template) -> IntArray:
    """The most one match at each offer can draw: the whole offer period at full time."""
    covered = _covered_monthly(offers, t) * offers.months + _covered_once(offers, t)
    return grant_amount(t.share, covered)


def _typical_grant(offers: _Offers, t: _Template) -> IntArray:
    """What a full-time match usually draws: PTJ at the profession's usual length."""
    decision = (offers.kind == 0) | (offers.kind == 2)
    months = np.where(decision & (_BASE_MONTHS[offers.profession] > 0), _BASE_MONTHS[offers.profession], offers.months)
    covered = _covered_monthly(offers, t) * np.minimum(months, offers.months) + _covered_once(offers, t)
    return grant_amount(t.share, covered)


def _round_up(value: float, step: int) -> int:
    return math.ceil(value / step) * step


# --- commute tuning ------------------------------------------------------------------------------------------


def _commute_scale(
    rng: np.random.Generator, base: Instance, cand: _Candidates, offers: _Offers, target: float
) -> float:
    """Factor on every commute limit that brings the mean eligible offers per candidate near `target`.

    Every rule but the commute is evaluated on a sample of same-profession pairs; a pair that passes them is
    eligible once the scaled limit reaches its distance, so the factor is a weighted quantile of distance / limit.
    """
    n = len(cand.profession)
    sample = np.sort(rng.choice(n, size=min(n, 1500), replace=False))
    sub = base.model_copy(
        update={"candidates": tuple(Candidate.model_validate(d) for d in _candidate_dicts(cand, sample))}
    )
    tables = build_tables(sub)
    published = np.array([s == "published" for s in offers.status])
    by_profession = [np.flatnonzero(published & (offers.profession == p)) for p in range(len(_PROFESSIONS))]
    per_candidate = 200
    c_idx, o_idx, weight = [], [], []
    for row, i in enumerate(sample):
        pool = by_profession[cand.profession[i]]
        if len(pool) == 0:
            continue
        k = min(per_candidate, len(pool))
        c_idx.append(np.full(k, row))
        o_idx.append(pool[rng.choice(len(pool), size=k, replace=False)])
        weight.append(np.full(k, len(pool) / k))
    if not c_idx:
        return 1.0
    ci, oi, w = np.concatenate(c_idx), np.concatenate(o_idx), np.concatenate(weight)
    checks = check_pairs(sub, tables, ci, oi)
    passes = np.ones(len(ci), dtype=bool)
    for name, mask in checks.rules.items():
        if name != "commute":
            passes &= mask
    rows = municipality_numbers()
    c_muni = np.array([rows[cand.codes[i]] for i in sample], dtype=np.int64)
    unit_muni = np.array([rows[u.municipality] for u in base.units], dtype=np.int64)
    distance = distance_km()[c_muni[ci], unit_muni[offers.unit[oi]]]
    ratio = distance[passes] / np.maximum(cand.commute[sample][ci[passes]], 1e-9)
    order = np.argsort(ratio, kind="stable")
    reached = np.cumsum(w[passes][order]) / len(sample)
    at = int(np.searchsorted(reached, target))
    if at >= len(order):
        return float(2000.0 / cand.commute.min())  # the target is out of reach: open every commute fully
    return max(float(ratio[order][at]), 1e-3)


# --- dicts ---------------------------------------------------------------------------------------------------


def _unit_dicts(geo: _Geo, units: _Units) -> list[dict[str, Any]]:
    names = municipalities()
    result = []
    for i in range(len(units.kind)):
        code = geo.codes[units.municipality[i]]
        uid = _uid(i)
        result.append(
            {
                "id": uid,
                "name": f"{_KINDS[units.kind[i]][5]} {names[code].name} {i + 1}",
                "hsa_id": f"SE{units.orgnr[i].replace('-', '')}-{uid}",
                "orgnr": units.orgnr[i],
                "county": geo.county_of[units.municipality[i]],
                "municipality": code,
                "kind": _KINDS[units.kind[i]][0].value,
                "ownership": _OWNERSHIPS[units.ownership[i]].value,
                "size_class": _SIZES[units.size[i]].value,
            }
        )
    return result


def _offer_dicts(offers: _Offers, supervisors: list[list[str]]) -> list[dict[str, Any]]:
    return [
        {
            "id": _oid(i),
            "unit_id": _uid(int(offers.unit[i])),
            "kind": _OFFER_KINDS[offers.kind[i]].value,
            "profession": _PROFESSIONS[offers.profession[i]].value,
            "specialty": offers.specialty[i],
            "min_cefr": _CEFR[offers.min_cefr[i]],
            "start": _month_start(int(offers.start_month[i])),
            "months": int(offers.months[i]),
            "slots": int(offers.slots[i]),
            "supervisor_ids": supervisors[i],
            "monthly_salary": int(offers.salary[i]),
            "monthly_supervisor_fee": int(offers.fee[i]),
            "course_fee": int(offers.course_fee[i]),
            "other_costs": int(offers.other[i]),
            "clinic_ranking": offers.ranking[i],
            "status": offers.status[i],
        }
        for i in range(len(offers.unit))
    ]


def _candidate_dicts(cand: _Candidates, which: IntArray | None = None) -> list[dict[str, Any]]:
    rows = range(len(cand.profession)) if which is None else which.tolist()
    return [
        {
            "id": _cid(i),
            "profession": _PROFESSIONS[cand.profession[i]].value,
            "ladder": cand.ladder[i],
            "cefr": cand.cefr[i],
            "language_proof": cand.proof[i],
            "residence_county": cand.county[i],
            "residence_municipality": cand.codes[i],
            "residence_status": cand.status[i],
            "country_of_training": cand.country[i],
            "specialty": cand.specialty[i],
            "experience_years": int(cand.experience[i]),
            "available_from": cand.available_from[i],
            "available_until": cand.available_until[i],
            "part_time": float(cand.part_time[i]),
            "max_commute_km": float(cand.commute[i]),
            "wishes": cand.wishes[i],
            "ready_since": cand.ready_since[i],
            "applied_on": cand.applied_on[i],
        }
        for i in rows
    ]


# --- small helpers -------------------------------------------------------------------------------------------


def _cid(i: int) -> str:
    return f"C{i + 1:06d}"


def _oid(i: int) -> str:
    return f"O{i + 1:05d}"


def _uid(i: int) -> str:
    return f"U{i + 1:04d}"


def _sid(i: int) -> str:
    return f"S{i + 1:05d}"


def _day(ordinal: int) -> date:
    return date.fromordinal(ordinal)


def _month_start(month: int) -> date:
    return date(month // 12, month % 12 + 1, 1)


def _month_end(month: int) -> date:
    return _month_start(month + 1) - timedelta(days=1)
