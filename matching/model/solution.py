"""The engine's output: matches with their money and score, and a reason for everyone left unmatched."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN", "MODEL_INVALID"]
Reason = Literal["no_eligible_offer", "no_capacity", "no_money", "out_competed", "not_selected"]

REASONS: dict[str, str] = {
    "no_eligible_offer": "no offer passes every hard rule; `rules` counts the offers each rule excludes",
    "no_capacity": "eligible offers exist, but their slots or supervisor seats are all taken",
    "no_money": "an eligible offer has room, but no programme that could pay has budget or cap left",
    "out_competed": "an eligible offer went to someone else who scored higher or had no alternative",
    "not_selected": "room and money remain; the solver stopped before placing this candidate (time limit)",
}


class Out(BaseModel):
    """Base for output objects."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Assignment(Out):
    """One proposed match and how it is paid."""

    candidate_id: str
    offer_id: str
    supervisor_id: str
    programme_id: str
    earmark_id: str | None = None
    start: date
    months: int
    total_cost: int
    grant: int = Field(description="paid by the programme, whole SEK")
    unit_share: int = Field(description="paid by the unit itself (co-funding), whole SEK")
    score: int
    breakdown: dict[str, int] = {}


class Unmatched(Out):
    """A candidate left without a placement and why."""

    candidate_id: str
    reason: Reason
    detail: str
    rules: dict[str, int] = Field(default={}, description="rule -> number of offers of the profession it excludes")
    eligible_offers: int = 0
    competitor_id: str | None = None
    score_gap: int | None = None
    programmes: list[str] = []


class ProgrammeUse(Out):
    """Money a programme grants in this solution against its budget and what earlier rounds committed."""

    programme_id: str
    budget: int
    granted: int = Field(description="granted by this round's matches")
    matches: int
    earmarks: dict[str, int] = Field(default={}, description="of `granted`, drawn on each earmark")
    committed: int = Field(default=0, description="held by placements accepted in earlier rounds")
    left: int | None = Field(default=None, description="budget - committed - granted")


class Solution(Out):
    """A matching round's result; `status`, `objective`, `bound` and `gap` are always reported."""

    status: Status
    method: str
    objective: float
    bound: float
    gap: float
    placements: int
    score: int
    wall_time_s: float
    assignments: list[Assignment] = []
    unmatched: list[Unmatched] = []
    money: list[ProgrammeUse] = []
    stats: dict[str, float | int | str] = {}
