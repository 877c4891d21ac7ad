"""The engine's input: a typed, frozen matching instance with one JSON form.

Everything here is opaque ids and facts about placements; no personal identity ever enters the engine.
Money is whole SEK; periods are whole calendar months counted from the first month of `start`.
"""

from __future__ import annotations

import enum
import math
import re
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from matching.input.codes import is_county_code, is_hsa_id, is_municipality_code, is_orgnr

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]
# Control characters (but TAB, LF, CR) have no place in names and specialties; XLSX cannot even store them.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("contains a control character (rule: printable_text)")
    return value


Text = Annotated[str, AfterValidator(_printable)]

# Most entries of each list field: far above real use, low enough that one object stays small.
MAX_WISHES = 50
MAX_RANKING = 1_000
MAX_SUPERVISORS = 200
MAX_CODES = 50  # professions, offer kinds, cost items, counties, statuses, ownerships of a programme
MAX_EARMARKS = 50
MAX_PAIRS = 200_000  # pins, forbids and kept proposals of a round
MAX_FLOORS = 200
# Strict: a count or an amount of money must be a JSON integer, not a string or a boolean.
Sek = Annotated[StrictInt, Field(ge=0, le=10_000_000_000)]


class Frozen(BaseModel):
    """Base for every input object: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Profession(enum.StrEnum):
    """Licensed professions that the matching serves (patientsäkerhetslagen 4 kap. 1 §)."""

    PHYSICIAN = "physician"
    DENTIST = "dentist"
    NURSE = "nurse"
    MIDWIFE = "midwife"
    PHARMACIST = "pharmacist"
    PRESCRIPTIONIST = "prescriptionist"
    DENTAL_HYGIENIST = "dental_hygienist"
    PHYSIOTHERAPIST = "physiotherapist"
    OCCUPATIONAL_THERAPIST = "occupational_therapist"
    BIOMEDICAL_ANALYST = "biomedical_analyst"
    PSYCHOLOGIST = "psychologist"
    CHIROPRACTOR = "chiropractor"
    RADIOGRAPHER = "radiographer"
    DIETITIAN = "dietitian"


# Professions with exclusive rights need a special authorisation (särskilt förordnande) for PTJ.
EXCLUSIVE_RIGHT = frozenset(
    {
        Profession.PHYSICIAN,
        Profession.DENTIST,
        Profession.MIDWIFE,
        Profession.PHARMACIST,
        Profession.PRESCRIPTIONIST,
    }
)

# PTJ length where Socialstyrelsen states it; other professions take the length from their decision.
DEFAULT_PTJ_MONTHS: dict[Profession, int] = {
    Profession.PHYSICIAN: 6,
    Profession.DENTIST: 6,
    Profession.DENTAL_HYGIENIST: 6,
    Profession.NURSE: 3,
    Profession.CHIROPRACTOR: 12,
}


class Cefr(enum.StrEnum):
    """CEFR language level; compare with `.rank`."""

    A1 = "A1"
    A2 = "A2"
    B1 = "B1"
    B2 = "B2"
    C1 = "C1"
    C2 = "C2"

    @property
    def rank(self) -> int:
        """0 for A1 up to 5 for C2."""
        return list(Cefr).index(self)


class LanguageProof(enum.StrEnum):
    """How the language level was shown."""

    NONE = "none"
    SFI_D = "sfi_d"
    SVENSKA_3 = "svenska_3"
    SVA_3 = "sva_3"
    CEFR_C1_CERTIFICATE = "cefr_c1_certificate"
    TISUS = "tisus"
    UNIVERSITY_ELIGIBILITY = "university_eligibility"
    NORDIC_UNIVERSITY = "nordic_university"
    EMPLOYER_ASSESSMENT = "employer_assessment"


# Proofs Socialstyrelsen accepts before a physician's PTJ (särskilt förordnande).
ACCEPTED_PROOFS = frozenset(
    {
        LanguageProof.SVENSKA_3,
        LanguageProof.SVA_3,
        LanguageProof.CEFR_C1_CERTIFICATE,
        LanguageProof.TISUS,
        LanguageProof.UNIVERSITY_ELIGIBILITY,
        LanguageProof.NORDIC_UNIVERSITY,
    }
)


class Stage(enum.StrEnum):
    """Rungs of the licence ladder, in order."""

    NONE = "none"
    EDUCATION_ASSESSED = "education_assessed"
    LANGUAGE_PROOF = "language_proof"
    THEORY_TEST = "theory_test"
    PRACTICAL_TEST = "practical_test"
    REGULATIONS_COURSE = "regulations_course"
    PTJ_DECISION = "ptj_decision"


class ResidenceStatus(enum.StrEnum):
    """Residence status, for programmes that target newcomers."""

    CITIZEN = "citizen"
    PERMANENT = "permanent"
    TEMPORARY = "temporary"
    ASYLUM_SEEKER = "asylum_seeker"
    TEMPORARY_PROTECTION = "temporary_protection"


class Authorisation(enum.StrEnum):
    """State of the special authorisation (särskilt förordnande)."""

    NONE = "none"
    APPLIED = "applied"
    GRANTED = "granted"


class OfferKind(enum.StrEnum):
    """Kinds of placement the matching serves."""

    PTJ = "ptj"
    PROVTJANSTGORING = "provtjanstgoring"
    LANGUAGE_PLACEMENT = "language_placement"
    TRAINING_SEAT = "training_seat"


# The ladder stage an offer kind needs by its start, unless the offer says otherwise.
DEFAULT_REQUIRED_STAGE: dict[OfferKind, Stage] = {
    OfferKind.PTJ: Stage.PTJ_DECISION,
    OfferKind.PROVTJANSTGORING: Stage.EDUCATION_ASSESSED,
    OfferKind.LANGUAGE_PLACEMENT: Stage.EDUCATION_ASSESSED,
    OfferKind.TRAINING_SEAT: Stage.NONE,
}


class OfferStatus(enum.StrEnum):
    """Life of a published placement; only published offers are matched."""

    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"
    FILLED = "filled"


class Ownership(enum.StrEnum):
    """Who runs a care unit."""

    REGION = "region"
    MUNICIPALITY = "municipality"
    PRIVATE_PUBLIC_FUNDING = "private_public_funding"
    PRIVATE = "private"


class UnitKind(enum.StrEnum):
    """What a care unit does."""

    PRIMARY_CARE = "primary_care"
    HOSPITAL = "hospital"
    DENTAL = "dental"
    PSYCHIATRY = "psychiatry"
    ELDERLY_CARE = "elderly_care"
    PHARMACY = "pharmacy"
    REHABILITATION = "rehabilitation"
    TRAINING_PROVIDER = "training_provider"


class SizeClass(enum.StrEnum):
    """Thirds by annual revenue, as in the Västra Götaland grant."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class CostItem(enum.StrEnum):
    """Cost items a programme may cover."""

    SALARY = "salary"
    SUPERVISOR_FEE = "supervisor_fee"
    COURSE_FEE = "course_fee"
    OTHER = "other"


class ProgrammeStatus(enum.StrEnum):
    """Open programmes take new matches; paused or closed ones only those applied for before the cut-off."""

    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


def _check_period(start: date | None, end: date | None, what: str, end_field: str) -> None:
    if start is not None and end is not None and end < start:
        raise ValueError(f"{what} ends before it starts (rule: period_order; field: {end_field})")


class Ladder(Frozen):
    """Dates on which each rung of the licence ladder was reached (None: not yet)."""

    education_assessed: date | None = None
    language_proof: date | None = None
    theory_test: date | None = None
    practical_test: date | None = None
    regulations_course: date | None = None
    ptj_decision: date | None = None
    ptj_decision_ref: Text | None = Field(default=None, max_length=64)
    ptj_required_months: StrictInt | None = Field(default=None, ge=1, le=36)
    special_authorisation: Authorisation = Authorisation.NONE

    def reached(self, stage: Stage) -> date | None:
        """Date the stage was reached; `date.min` for Stage.NONE."""
        if stage is Stage.NONE:
            return date.min
        value: date | None = getattr(self, stage.value)
        return value

    @model_validator(mode="after")
    def _test_order(self) -> Ladder:
        if self.theory_test and self.practical_test and self.practical_test < self.theory_test:
            raise ValueError("practical_test is dated before theory_test (rule: ladder_order; field: practical_test)")
        return self


class Candidate(Frozen):
    """A clinician waiting for a placement, known to the engine only by an opaque id."""

    id: Id
    profession: Profession
    ladder: Ladder = Ladder()
    cefr: Cefr
    language_proof: LanguageProof = LanguageProof.NONE
    residence_county: str
    residence_municipality: str
    residence_status: ResidenceStatus = ResidenceStatus.PERMANENT
    country_of_training: str = Field(default="XX", pattern=r"^[A-Z]{2}$")
    specialty: Text = Field(default="", max_length=200)
    experience_years: int = Field(default=0, ge=0, le=60)
    available_from: date
    available_until: date | None = None
    ptj_months: StrictInt | None = Field(default=None, ge=1, le=36)
    part_time: float = Field(default=1.0, gt=0.0, le=1.0)
    max_commute_km: float = Field(default=60.0, ge=0.0, le=2000.0)
    wishes: tuple[Id, ...] = Field(default=(), max_length=MAX_WISHES)
    ready_since: date
    applied_on: date | None = None

    @field_validator("residence_county")
    @classmethod
    def _county(cls, value: str) -> str:
        if not is_county_code(value):
            raise ValueError("not a Swedish county code (rule: county_code)")
        return value

    @field_validator("residence_municipality")
    @classmethod
    def _municipality(cls, value: str) -> str:
        if not is_municipality_code(value):
            raise ValueError("not an SCB municipality code (rule: municipality_code)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Candidate:
        _check_period(self.available_from, self.available_until, "availability", "available_until")
        if not self.residence_municipality.startswith(self.residence_county):
            raise ValueError(
                "residence_municipality is not in residence_county "
                "(rule: municipality_in_county; field: residence_municipality)"
            )
        if len(set(self.wishes)) != len(self.wishes):
            raise ValueError("wishes lists an offer twice (rule: unique_wishes; field: wishes)")
        return self

    def required_months(self) -> int:
        """Calendar months of PTJ this candidate needs; part-time work stretches the length."""
        months = self.ptj_months or self.ladder.ptj_required_months or DEFAULT_PTJ_MONTHS.get(self.profession, 6)
        return math.ceil(months / self.part_time - 1e-9)


class Unit(Frozen):
    """A care unit or clinic that hosts placements."""

    id: Id
    name: Text = Field(default="", max_length=200)
    hsa_id: str
    orgnr: str
    county: str
    municipality: str
    kind: UnitKind = UnitKind.PRIMARY_CARE
    ownership: Ownership = Ownership.REGION
    size_class: SizeClass = SizeClass.MEDIUM

    @field_validator("hsa_id")
    @classmethod
    def _hsa(cls, value: str) -> str:
        if not is_hsa_id(value):
            raise ValueError(
                "not a valid HSA-id: SE + organisation number + '-' + suffix, at most 31 characters (rule: hsa_id)"
            )
        return value

    @field_validator("orgnr")
    @classmethod
    def _orgnr(cls, value: str) -> str:
        if not is_orgnr(value):
            raise ValueError("not a valid organisation number (rule: orgnr)")
        return value

    @field_validator("county")
    @classmethod
    def _county(cls, value: str) -> str:
        if not is_county_code(value):
            raise ValueError("not a Swedish county code (rule: county_code)")
        return value

    @field_validator("municipality")
    @classmethod
    def _municipality(cls, value: str) -> str:
        if not is_municipality_code(value):
            raise ValueError("not an SCB municipality code (rule: municipality_code)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Unit:
        if not self.municipality.startswith(self.county):
            raise ValueError("municipality is not in county (rule: municipality_in_county; field: municipality)")
        return self


class Supervisor(Frozen):
    """A handledare: capacity is concurrent trainees, shared across the unit's offers and over time."""

    id: Id
    unit_id: Id
    profession: Profession
    licensed: bool = True
    specialist: bool = False
    trained: bool = False
    capacity: StrictInt = Field(default=1, ge=0, le=20)
    available_from: date
    available_until: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Supervisor:
        _check_period(self.available_from, self.available_until, "availability", "available_until")
        return self


class Offer(Frozen):
    """A placement a clinic publishes."""

    id: Id
    unit_id: Id
    kind: OfferKind = OfferKind.PTJ
    profession: Profession
    specialty: Text = Field(default="", max_length=200)
    min_cefr: Cefr = Cefr.A1
    required_stage: Stage | None = None
    start: date
    months: StrictInt = Field(ge=1, le=36)
    slots: StrictInt = Field(default=1, ge=0, le=100)
    supervisor_ids: tuple[Id, ...] = Field(default=(), max_length=MAX_SUPERVISORS)
    monthly_salary: Sek = 0
    monthly_supervisor_fee: Sek = 0
    course_fee: Sek = 0
    other_costs: Sek = 0
    clinic_ranking: tuple[Id, ...] = Field(default=(), max_length=MAX_RANKING)
    status: OfferStatus = OfferStatus.PUBLISHED

    @model_validator(mode="after")
    def _consistent(self) -> Offer:
        if len(set(self.clinic_ranking)) != len(self.clinic_ranking):
            raise ValueError("clinic_ranking lists a candidate twice (rule: unique_ranking; field: clinic_ranking)")
        if len(set(self.supervisor_ids)) != len(self.supervisor_ids):
            raise ValueError(
                "supervisor_ids lists a supervisor twice (rule: unique_supervisors; field: supervisor_ids)"
            )
        return self

    def stage_needed(self) -> Stage:
        """The ladder stage a candidate must have reached by the start."""
        return self.required_stage or DEFAULT_REQUIRED_STAGE[self.kind]


class UnitCaps(Frozen):
    """Most a programme grants one unit over the period, by the unit's size class (None: no cap)."""

    small: Sek | None = None
    medium: Sek | None = None
    large: Sek | None = None

    def for_size(self, size: SizeClass) -> int | None:
        """The cap for a unit of this size class."""
        cap: int | None = getattr(self, size.value)
        return cap


class Earmark(Frozen):
    """Part of a budget set aside for matches of some professions or offer kinds; others may not use it."""

    id: Id
    amount: Sek
    professions: tuple[Profession, ...] = Field(default=(), max_length=MAX_CODES)
    offer_kinds: tuple[OfferKind, ...] = Field(default=(), max_length=MAX_CODES)

    def applies(self, profession: Profession, kind: OfferKind) -> bool:
        """True when a match of this profession and kind may draw on the earmark."""
        return (not self.professions or profession in self.professions) and (
            not self.offer_kinds or kind in self.offer_kinds
        )


class Programme(Frozen):
    """A funding programme: budget, rules and caps. Listed in priority order."""

    id: Id
    name: Text = Field(default="", max_length=200)
    funder: Text = Field(default="", max_length=200)
    budget: Sek
    window_start: date
    window_end: date
    spend_by: date
    status: ProgrammeStatus = ProgrammeStatus.OPEN
    cutoff: date | None = None
    professions: tuple[Profession, ...] = Field(default=(), max_length=MAX_CODES)
    offer_kinds: tuple[OfferKind, ...] = Field(default=(), max_length=MAX_CODES)
    covers: tuple[CostItem, ...] = Field(default=(CostItem.SALARY, CostItem.SUPERVISOR_FEE), max_length=MAX_CODES)
    cofunding_share: float = Field(default=1.0, gt=0.0, le=1.0)
    unit_caps: UnitCaps = UnitCaps()
    candidate_cap: Sek | None = None
    residence_counties: tuple[str, ...] = Field(default=(), max_length=MAX_CODES)
    residence_statuses: tuple[ResidenceStatus, ...] = Field(default=(), max_length=MAX_CODES)
    unit_counties: tuple[str, ...] = Field(default=(), max_length=MAX_CODES)
    unit_ownerships: tuple[Ownership, ...] = Field(default=(), max_length=MAX_CODES)
    earmarks: tuple[Earmark, ...] = Field(default=(), max_length=MAX_EARMARKS)

    @model_validator(mode="after")
    def _consistent(self) -> Programme:
        _check_period(self.window_start, self.window_end, "window", "window_end")
        if self.spend_by < self.window_start:
            raise ValueError("spend_by is before window_start (rule: period_order; field: spend_by)")
        if self.status is not ProgrammeStatus.OPEN and self.cutoff is None:
            raise ValueError(
                f"a {self.status.value} programme needs a cutoff date (rule: cutoff_required; field: cutoff)"
            )
        for code in (*self.residence_counties, *self.unit_counties):
            if not is_county_code(code):
                raise ValueError(f"{code!r} is not a Swedish county code (rule: county_code; field: counties)")
        if sum(e.amount for e in self.earmarks) > self.budget:
            raise ValueError("earmarks add up to more than the budget (rule: earmarks_within_budget; field: earmarks)")
        if len({e.id for e in self.earmarks}) != len(self.earmarks):
            raise ValueError("two earmarks share an id (rule: unique_id; field: earmarks)")
        return self

    def earmark_for(self, profession: Profession, kind: OfferKind) -> int | None:
        """Index of the first earmark a match of this profession and kind draws on, if any."""
        for index, earmark in enumerate(self.earmarks):
            if earmark.applies(profession, kind):
                return index
        return None


class Weights(Frozen):
    """Weights of the soft score components (each component is scaled to 0..1000)."""

    specialty: int = Field(default=3, ge=0, le=100)
    language: int = Field(default=1, ge=0, le=100)
    distance: int = Field(default=2, ge=0, le=100)
    wish: int = Field(default=3, ge=0, le=100)
    clinic: int = Field(default=2, ge=0, le=100)
    waiting: int = Field(default=2, ge=0, le=100)
    start: int = Field(default=1, ge=0, le=100)


class Pair(Frozen):
    """A (candidate, offer) pair named by a coordinator."""

    candidate_id: Id
    offer_id: Id


GroupKind = Literal["profession", "county", "country", "waiting_band"]

# Waiting-time bands: (name, first day of waiting in the band); a candidate's wait counts from `ready_since`.
WAITING_BANDS: tuple[tuple[str, int], ...] = (("under_6m", 0), ("6_12m", 183), ("1_2y", 365), ("over_2y", 730))


def waiting_band(days: int) -> str:
    """The band of a wait of `days` days."""
    return next(name for name, first in reversed(WAITING_BANDS) if days >= first)


class Floor(Frozen):
    """At least this many, or this share, of a group must be placed (a hard constraint of the round).

    Groups are candidates of one profession, residence county, country of training or waiting-time band.
    """

    group: GroupKind
    value: Text = Field(min_length=1, max_length=64)
    min_count: StrictInt | None = Field(default=None, ge=0, le=1_000_000)
    min_share: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_limit(self) -> Floor:
        if (self.min_count is None) == (self.min_share is None):
            raise ValueError("give exactly one of min_count and min_share (rule: floor_limit; field: min_count)")
        if self.group == "waiting_band" and self.value not in {name for name, _ in WAITING_BANDS}:
            bands = ", ".join(name for name, _ in WAITING_BANDS)
            raise ValueError(f"waiting_band is one of {bands} (rule: waiting_band; field: value)")
        return self

    def required(self, group_size: int) -> int:
        """How many of a group of `group_size` must be placed."""
        if self.min_count is not None:
            return self.min_count
        assert self.min_share is not None
        return math.ceil(self.min_share * group_size - 1e-9)

    def label(self) -> str:
        """E.g. `profession=nurse`."""
        return f"{self.group}={self.value}"


class Policy(Frozen):
    """How a round is decided: objective, weights, limits and the coordinator's pins and forbids."""

    weights: Weights = Weights()
    objective: Literal["lexicographic", "weighted"] = "lexicographic"
    placement_value: int = Field(default=5000, ge=0, le=1_000_000)
    waiting_priority: bool = Field(
        default=False,
        description="lexicographic mode: among solutions placing the most, prefer those who waited longest",
    )
    time_limit_s: float = Field(default=30.0, gt=0.0, le=86_400.0)
    workers: int = Field(default=2, ge=1, le=64)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    deterministic: bool = False
    pins: tuple[Pair, ...] = Field(default=(), max_length=MAX_PAIRS)
    forbids: tuple[Pair, ...] = Field(default=(), max_length=MAX_PAIRS)
    solver_parameters: dict[str, bool | int | float | str] = Field(
        default={}, max_length=100, description="extra CP-SAT parameters (SatParameters field names), for tuning"
    )
    keep: tuple[Pair, ...] = Field(
        default=(),
        max_length=MAX_PAIRS,
        description="earlier proposals to keep where possible (a re-run with minimal disruption): lexicographic "
        "mode keeps as many as possible before anything else; weighted mode adds keep_value per kept pair",
    )
    keep_value: int = Field(default=10_000, ge=0, le=1_000_000, description="weighted mode: value of a kept pair")
    floors: tuple[Floor, ...] = Field(
        default=(), max_length=MAX_FLOORS, description="lower bounds on how many of a group are placed"
    )
    forbid_blocking: bool = Field(
        default=False,
        description="allow no blocking pair: no candidate and offer that would both rather be together "
        "(stated preferences: wishes and clinic rankings, then score)",
    )

    @field_validator("solver_parameters")
    @classmethod
    def _known_parameters(cls, value: dict[str, bool | int | float | str]) -> dict[str, bool | int | float | str]:
        from ortools.sat import sat_parameters_pb2

        known = sat_parameters_pb2.SatParameters.DESCRIPTOR.fields_by_name
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown CP-SAT parameter(s) {', '.join(unknown)} (rule: solver_parameter)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if self.waiting_priority and self.objective != "lexicographic":
            raise ValueError(
                "waiting_priority needs the lexicographic objective "
                "(rule: waiting_priority_mode; field: waiting_priority)"
            )
        return self


class Commitment(Frozen):
    """A placement accepted in an earlier round: the money and supervisor months it still holds.

    Every later round counts `grant` against the programme's budget (and the earmark it drew on), the programme's cap
    for the unit and its per-candidate cap, and one seat of the supervisor in each of its `months` from `start`.
    Follow-up shortens or releases it: an interrupted placement holds its months up to the last one and, once the
    payment is known, only what was paid; a placement that never started holds nothing and is left out.
    """

    id: Id
    candidate_id: Id = Field(description="the candidate's opaque ref (they need not be in this round)")
    unit_id: Id
    offer_id: Id | None = Field(default=None, description="the offer it was accepted at (for reports)")
    supervisor_id: Id | None = Field(default=None, description="the supervisor whose seat it holds")
    programme_id: Id
    earmark_id: Id | None = Field(default=None, description="the programme's earmark the grant drew on")
    start: date
    months: StrictInt = Field(ge=0, le=36, description="months the supervisor's seat is held, from start's month")
    grant: Sek = Field(description="SEK counted against the programme: the grant, or what was paid once known")


class Instance(Frozen):
    """Everything one matching round decides over."""

    schema_version: Literal[1] = 1
    name: Text = Field(default="", max_length=200)
    round_date: date
    candidates: tuple[Candidate, ...] = ()
    units: tuple[Unit, ...] = ()
    supervisors: tuple[Supervisor, ...] = ()
    offers: tuple[Offer, ...] = ()
    programmes: tuple[Programme, ...] = ()
    commitments: tuple[Commitment, ...] = Field(
        default=(), description="placements accepted in earlier rounds: money and supervisor months they hold"
    )
    policy: Policy = Policy()

    def with_policy(self, **changes: object) -> Instance:
        """The same round under a policy with these fields changed (the new policy is checked like any input)."""
        policy = Policy.model_validate({**self.policy.model_dump(), **changes})
        return self.model_copy(update={"policy": policy})
