"""API schemas: reads extend the engine's input types with bookkeeping; clinics get a reduced candidate view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from matching.input import instance as engine
from matching.model.solution import Assignment, ProgrammeUse, Status, Unmatched
from matching.reports.diff import RoundDiff
from matching.reports.fairness import FloorPrice, GroupRow
from matching.reports.prices import Prices
from matching.reports.whynot import WhyNot, WhyNotSummary
from matching.solvers.stable import StableComparison

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Meta(BaseModel):
    """Bookkeeping fields of stored objects."""

    region: str
    version: int
    updated_at: datetime
    archived_at: datetime | None = Field(default=None, description="set when a delete archived it")


class UnitRead(engine.Unit, Meta):
    """A stored unit."""


class SupervisorRead(engine.Supervisor, Meta):
    """A stored supervisor."""


class OfferRead(engine.Offer, Meta):
    """A stored offer."""


class ProgrammeRead(engine.Programme, Meta):
    """A stored funding programme."""


class CandidateRead(engine.Candidate, Meta):
    """A stored candidate (never with identity)."""

    status: str
    withdrawn_at: datetime | None = None
    erased_at: datetime | None = Field(default=None, description="identity and identifying free text erased")


class ClinicCandidateRead(BaseModel):
    """What a clinic sees of a candidate proposed to it: what supervision needs, nothing identifying."""

    model_config = ConfigDict(extra="forbid")

    id: str
    profession: engine.Profession
    cefr: engine.Cefr
    language_proof: engine.LanguageProof
    specialty: str
    experience_years: int
    available_from: date
    available_until: date | None = None
    part_time: float


class IdentityIn(BaseModel):
    """A candidate's identity: personnummer or samordningsnummer and name."""

    model_config = ConfigDict(extra="forbid")

    personnummer: str = Field(min_length=10, max_length=13)
    given_name: str = Field(min_length=1, max_length=200)
    family_name: str = Field(min_length=1, max_length=200)


class CandidateCreate(engine.Candidate):
    """A new candidate, optionally with identity (stored apart, never returned here)."""

    identity: IdentityIn | None = None


class IdentityRead(BaseModel):
    """A candidate's identity; the number is masked unless asked for and allowed."""

    candidate_id: str
    personnummer: str
    masked: bool
    given_name: str
    family_name: str


class ProposalRead(BaseModel):
    """A proposed match as a clinic or coordinator sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    round_id: int
    candidate_ref: str
    offer_ref: str
    supervisor_ref: str
    programme_ref: str
    earmark_ref: str | None = None
    start: date
    months: int
    total_cost: int
    grant: int
    unit_share: int
    score: int
    breakdown: dict[str, Any]
    answer: str
    decline_reason: str | None = Field(
        default=None, description="why the clinic declined: no_supervisor, period, language, specialty, capacity, other"
    )


# Why a clinic declines: a fixed list, so that no free text (which could name a person) is stored or logged.
DeclineReason = Literal["no_supervisor", "period", "language", "specialty", "capacity", "other"]


class Decline(BaseModel):
    """A clinic's decline, optionally with its reason (a code, never free text)."""

    model_config = ConfigDict(extra="forbid")

    reason: DeclineReason | None = None


class RoundResult(BaseModel):
    """A solved round's region-wide result: the solver's figures, money per programme and why each unmatched
    candidate was left out (the proposals themselves are on `.../proposals`)."""

    status: Status
    method: str
    objective: float
    bound: float
    gap: float
    placements: int
    score: int
    wall_time_s: float
    unmatched: list[Unmatched] = []
    money: list[ProgrammeUse] = []
    stats: dict[str, float | int | str] = {}


class UnitResult(BaseModel):
    """What a round gives one unit: its proposals, their answers and money."""

    unit_id: str
    proposals: int
    pending: int
    accepted: int
    declined: int
    grant: int = Field(description="paid by the programmes for the unit's proposals, whole SEK")
    unit_share: int = Field(description="paid by the unit itself, whole SEK")
    total_cost: int


ROUND_VIEW_DESCRIPTION = (
    "`region`: the whole round (coordinators and admins); `unit`: a clinic user's view, holding only what concerns "
    "its own unit (its proposals' figures in `unit`, its own pairs in `policy`, warnings about its own unit, offers "
    "and supervisors; no region-wide result, money or unmatched list)"
)


class RoundSummary(BaseModel):
    """One round in a list: its state and counts; the full result is on the round's own routes."""

    id: int
    region: str
    name: str
    status: str
    round_date: date
    created_at: datetime
    finished_at: datetime | None
    published_at: datetime | None
    previous_round_id: int | None = None
    view: Literal["region", "unit"] = Field(description=ROUND_VIEW_DESCRIPTION)
    placements: int | None = Field(default=None, description="region-wide placements (not in a unit view)")
    proposals: int = Field(description="the proposals you may see (a clinic user: its unit's, once published)")
    warnings: int = Field(default=0, description="how many warnings the round carries that you may see")
    analysis_ready: bool = False


class RoundRead(BaseModel):
    """A round: status, progress while solving, and the summary once solved."""

    id: int
    job_id: int | None = Field(default=None, description="the job that solves the round: GET /api/v1/jobs/{job_id}")
    region: str
    name: str
    status: str
    round_date: date
    view: Literal["region", "unit"] = Field(description=ROUND_VIEW_DESCRIPTION)
    input_hash: str | None = Field(default=None, description="SHA-256 of the snapshot (not in a unit view)")
    progress: dict[str, Any] = {}
    failure: str | None = None
    result: RoundResult | None = Field(default=None, description="the region-wide result (not in a unit view)")
    unit: UnitResult | None = Field(default=None, description="what the round gives your unit (unit view only)")
    previous_round_id: int | None = None
    created_at: datetime
    finished_at: datetime | None
    published_at: datetime | None
    policy: dict[str, Any]
    objective_statement: list[str] = Field(default=[], description="what the round optimises, in plain words")
    warnings: list[dict[str, Any]] = Field(
        default=[],
        description="what the round left out to stay buildable (dangling references, objects that no longer "
        "validate) and programmes and offers closed at its date: {path, object_id, field, rule, message}",
    )
    provenance: dict[str, Any] = Field(default={}, description="solver and library versions that produced the result")
    analysis_ready: bool = Field(default=False, description="fairness, prices and why-not reports are computed")
    analysis_error: str | None = Field(default=None, description="why the reports could not be computed, if so")


class UnitMoney(BaseModel):
    """A programme's grants at one unit against the programme's cap for the unit's size class."""

    unit_id: str
    granted: int
    cap: int | None


class ProgrammeMoney(BaseModel):
    """One programme's money in a round."""

    programme_id: str
    budget: int
    granted: int
    matches: int
    earmarks: dict[str, int]
    units: list[UnitMoney]


class ProfessionCount(BaseModel):
    """Matches of one profession."""

    profession: str
    matched: int
    candidates: int


class RoundExplanation(BaseModel):
    """Money per programme and unit against budgets and caps, matches per profession, reasons for the unmatched."""

    round_id: int
    status: Status
    objective: float
    bound: float
    gap: float
    placements: int
    programmes: list[ProgrammeMoney]
    professions: list[ProfessionCount]
    unmatched_reasons: dict[str, int]


class ExcludedOffer(BaseModel):
    """An offer a candidate may not have, with the rules that exclude it (and per programme, what it fails)."""

    offer_id: str
    rules: list[str]
    programme_rules: dict[str, list[str]]


class CandidateExplanation(BaseModel):
    """One candidate in one round: eligible and excluded offers, the match with its score, or why unmatched."""

    round_id: int
    candidate_id: str
    eligible_offers: list[str]
    excluded_offers: list[ExcludedOffer]
    match: Assignment | None
    unmatched: Unmatched | None


class FairnessRead(BaseModel):
    """Match rate and mean score per group; what each floor costs."""

    round_id: int
    groups: list[GroupRow]
    floor_prices: list[FloorPrice]
    floor_prices_ready: bool


class PricesRead(BaseModel):
    """Shadow prices per objective tier and plain sentences about them."""

    round_id: int
    prices: list[Prices]
    lines: list[str]


class WhyNotRead(BaseModel):
    """Why each unmatched candidate was left out, and a summary per cause and change."""

    round_id: int
    summary: WhyNotSummary
    candidates: list[WhyNot]


class DiffRead(RoundDiff):
    """A re-run against the round it re-ran."""

    round_id: int
    previous_round_id: int


class WhatIfRead(BaseModel):
    """A round re-solved with changed inputs (nothing stored)."""

    round_id: int
    changes: list[str]
    status: Status
    placements_before: int
    placements_after: int
    placements_change: int
    diff: RoundDiff
    money: list[ProgrammeUse]


class StableRead(StableComparison):
    """Deferred acceptance, the optimiser and the optimiser without blocking pairs, on one round."""

    round_id: int


class SolveFigures(BaseModel):
    """Placements, score and objective of one solve."""

    placements: int
    score: int
    objective: float


class ReproduceRead(BaseModel):
    """The snapshot solved again and compared with the stored result."""

    round_id: int
    identical: bool
    deterministic: bool
    differences: list[str]
    stored: SolveFigures
    again: SolveFigures
    versions_then: dict[str, str]
    versions_now: dict[str, str]
    version_differences: dict[str, tuple[str | None, str | None]]


class ImportReport(BaseModel):
    """The outcome of an import."""

    imported: int
    created: int
    updated: int
    unchanged: int = Field(default=0, description="rows equal to the stored object (nothing written, no new version)")
    errors: list[dict[str, Any]]


class RegionRead(BaseModel):
    """A region."""

    code: str
    name: str


class RegionCreate(BaseModel):
    """A new region."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{2}$")
    name: str = Field(min_length=1, max_length=200)


class UserCreate(BaseModel):
    """A new user; coordinators need a region, clinic users a region and unit."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=200)
    role: str = Field(pattern="^(admin|coordinator|clinic)$")
    region: str | None = None
    unit: str | None = None


class UserUpdate(BaseModel):
    """Changes to a user."""

    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(default=None, min_length=10, max_length=200)
    active: bool | None = None
    # Role and scope: what is given (null clears) replaces that part of the present scope, the rest is kept where
    # the new role allows it (see api.core.users.requested_scope).
    role: str | None = Field(default=None, pattern="^(admin|coordinator|clinic)$")
    region: str | None = Field(default=None, max_length=8)
    unit: str | None = Field(default=None, max_length=64)

    def changes_scope(self) -> bool:
        """Whether the body asks for a role or scope (region, unit; an explicit null counts) change."""
        return bool({"role", "region", "unit"} & self.model_fields_set)


class UserRead(BaseModel):
    """A user (never with the password hash)."""

    id: int
    username: str
    role: str
    region: str | None
    unit: str | None
    active: bool


class Token(BaseModel):
    """An OAuth2 access token."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


class ApiKeyCreated(BaseModel):
    """A new API key; the key is shown only this once."""

    id: int
    name: str
    key: str


class ApiKeyRead(BaseModel):
    """One of your API keys, never with the key itself: `prefix` is the part after `vm_` that tells keys apart."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class PasswordChange(BaseModel):
    """Your own password change: every token and API key issued before it stops working."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=10, max_length=200)
