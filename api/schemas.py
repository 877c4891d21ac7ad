"""API schemas: reads extend the engine's input types with bookkeeping; clinics get a reduced candidate view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from matching.input import instance as engine

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


class RoundRead(BaseModel):
    """A round: status, progress while solving, and the summary once solved."""

    id: int
    region: str
    name: str
    status: str
    round_date: date
    input_hash: str
    progress: dict[str, Any]
    failure: str | None
    result: dict[str, Any] | None
    previous_round_id: int | None
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
