"""What each role sees of a round. Coordinators and admins: the whole round. A clinic user: only what concerns its
own unit (its proposals' figures, its own pairs in the policy, warnings about its own unit, offers and supervisors),
never the region-wide result, money of every programme, the unmatched list or other units' pins and forbids."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matching.input.instance import Policy
from matching.reports.statement import objective_statement
from models import MatchRound, Proposal, Region, Role, Unit
from models.queries import Subject, proposals_readable_by

PAIR_LISTS = ("pins", "forbids", "keep")
# Policy entries that describe the whole region rather than one unit.
REGION_POLICY = ("floors",)


@dataclass(frozen=True)
class UnitScope:
    """A clinic user's unit in one round: its ids in the round's snapshot, and the candidates proposed to it."""

    unit_ref: str
    offers: frozenset[str]
    supervisors: frozenset[str]
    candidates: frozenset[str]

    def owns(self, kind: str, ref: str) -> bool:
        """Whether an object of the kind (units, offers, supervisors) with this ref is the unit's own."""
        own = {"units": frozenset({self.unit_ref}), "offers": self.offers, "supervisors": self.supervisors}
        return ref in own.get(kind, frozenset())


def is_unit_view(subject: Subject) -> bool:
    """Clinic users see rounds through their unit."""
    return subject.role is Role.CLINIC


def unit_index(snapshot: dict[str, Any]) -> dict[str, Any]:
    """What a clinic's view of a round needs of its snapshot, stored with the round (`MatchRound.unit_index`) so
    that reads neither load nor parse the snapshot: per unit ref its offers and supervisors, and the policy without
    the region's pairs and floors (which name candidates). Migration 0009 holds a copy for stored rounds."""
    units: dict[str, dict[str, list[str]]] = {}
    for kind in ("offers", "supervisors"):
        for item in snapshot.get(kind, []):
            units.setdefault(str(item.get("unit_id")), {"offers": [], "supervisors": []})[kind].append(item["id"])
    policy = {k: v for k, v in snapshot.get("policy", {}).items() if k not in PAIR_LISTS + REGION_POLICY}
    return {"units": units, "policy": policy}


def stored_index(row: MatchRound) -> dict[str, Any]:
    """The round's unit index (built from its snapshot only for a round stored without one)."""
    if row.unit_index is not None:
        return row.unit_index
    return unit_index(json.loads(row.snapshot))


def unit_scope(session: Session, subject: Subject, row: MatchRound, index: dict[str, Any]) -> UnitScope:
    """The clinic's unit as the round saw it."""
    unit_ref = session.get_one(Unit, subject.unit_id).ref
    own = index.get("units", {}).get(unit_ref, {})
    offers = frozenset(own.get("offers", []))
    supervisors = frozenset(own.get("supervisors", []))
    candidates = frozenset(
        session.scalars(
            proposals_readable_by(subject).where(Proposal.round_id == row.id).with_only_columns(Proposal.candidate_ref)
        )
    )
    return UnitScope(unit_ref, offers, supervisors, candidates)


def _warnings(row: MatchRound) -> list[dict[str, Any]]:
    warnings: list[dict[str, Any]] = (row.provenance or {}).get("warnings", [])
    return warnings


def _unit_warnings(row: MatchRound, scope: UnitScope) -> list[dict[str, Any]]:
    """Warnings about the unit itself, its offers and its supervisors (what its users wrote and can read anyway)."""
    return [w for w in _warnings(row) if scope.owns(str(w.get("path", "")).split("[")[0], str(w.get("object_id")))]


def _unit_policy(request: dict[str, Any], scope: UnitScope) -> dict[str, Any]:
    """The round's settings, with only the pairs of the unit's offers and the candidates proposed to it."""
    policy = {k: v for k, v in request.items() if k not in PAIR_LISTS + REGION_POLICY}
    for name in PAIR_LISTS:
        policy[name] = [
            pair
            for pair in request.get(name, [])
            if pair.get("offer_id") in scope.offers and pair.get("candidate_id") in scope.candidates
        ]
    return policy


def _unit_statement(index: dict[str, Any]) -> list[str]:
    """The objective in plain words, without the region's counts of pins, forbids, kept proposals and floors."""
    region_wide: dict[str, list[Any]] = {key: [] for key in (*PAIR_LISTS, *REGION_POLICY)}
    try:
        policy = Policy.model_validate({**index.get("policy", {}), **region_wide})
    except ValidationError:
        return []
    return objective_statement(policy)


def _unit_result(session: Session, subject: Subject, row: MatchRound, unit_ref: str) -> dict[str, Any]:
    proposals = list(session.scalars(proposals_readable_by(subject).where(Proposal.round_id == row.id)))
    answers = Counter(p.answer for p in proposals)
    return {
        "unit_id": unit_ref,
        "proposals": len(proposals),
        "pending": answers["pending"],
        "accepted": answers["accepted"],
        "declined": answers["declined"],
        "grant": sum(p.grant for p in proposals),
        "unit_share": sum(p.unit_share for p in proposals),
        "total_cost": sum(p.total_cost for p in proposals),
    }


def _common(row: MatchRound, region: Region) -> dict[str, Any]:
    return {
        "id": row.id,
        "region": region.code,
        "name": row.name,
        "status": row.status,
        "round_date": row.round_date,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "published_at": row.published_at,
    }


def analysis_states(session: Session, round_ids: Iterable[int]) -> dict[int, str | None]:
    """The rounds whose reports are stored, each with the error that stopped them (None when they were computed),
    asked of the database: the reports themselves are large and stay unread."""
    statement = select(MatchRound.id, MatchRound.analysis_error).where(
        MatchRound.id.in_(list(round_ids)), MatchRound.analysis.is_not(None)
    )
    return {round_id: error for round_id, error in session.execute(statement)}


def region_view(session: Session, row: MatchRound, region: Region) -> dict[str, Any]:
    """The whole round, as coordinators and admins see it."""
    provenance = row.provenance or {}
    analysis = analysis_states(session, [row.id])
    return {
        **_common(row, region),
        "view": "region",
        "input_hash": row.input_hash,
        "progress": row.progress,
        "failure": row.failure,
        "result": row.result,
        "previous_round_id": row.previous_round_id,
        "policy": row.request,
        "objective_statement": provenance.get("objective_statement", []),
        "warnings": _warnings(row),
        "provenance": {k: v for k, v in provenance.items() if k not in ("objective_statement", "warnings")},
        "analysis_ready": row.id in analysis,
        "analysis_error": analysis.get(row.id),
    }


def unit_view(session: Session, subject: Subject, row: MatchRound, region: Region) -> dict[str, Any]:
    """A clinic user's round: only what concerns its own unit."""
    index = stored_index(row)
    scope = unit_scope(session, subject, row, index)
    provenance = row.provenance or {}
    return {
        **_common(row, region),
        "view": "unit",
        "unit": _unit_result(session, subject, row, scope.unit_ref),
        "policy": _unit_policy(row.request, scope),
        "objective_statement": _unit_statement(index),
        "warnings": _unit_warnings(row, scope),
        "provenance": {k: provenance[k] for k in ("versions", "method") if k in provenance},
    }


def round_view(session: Session, subject: Subject, row: MatchRound, region: Region) -> dict[str, Any]:
    """The round as the subject may see it."""
    if is_unit_view(subject):
        return unit_view(session, subject, row, region)
    return region_view(session, row, region)


def round_summaries(
    session: Session, subject: Subject, rows: Iterable[MatchRound], region: Region
) -> list[dict[str, Any]]:
    """One summary per round: state and counts, never the result itself."""
    rows = list(rows)
    counted = (
        proposals_readable_by(subject)
        .where(Proposal.round_id.in_([r.id for r in rows]))
        .with_only_columns(Proposal.round_id, func.count())
        .group_by(Proposal.round_id)
    )
    proposals: dict[int, int] = {round_id: n for round_id, n in session.execute(counted)}
    unit = is_unit_view(subject)
    analysis = {} if unit else analysis_states(session, [r.id for r in rows])
    out = []
    for row in rows:
        summary = {**_common(row, region), "view": "unit" if unit else "region", "proposals": proposals.get(row.id, 0)}
        if unit:
            scope = unit_scope(session, subject, row, stored_index(row))
            summary["warnings"] = len(_unit_warnings(row, scope))
        else:
            summary |= {
                "previous_round_id": row.previous_round_id,
                "placements": (row.result or {}).get("placements"),
                "warnings": len(_warnings(row)),
                "analysis_ready": row.id in analysis,
            }
        out.append(summary)
    return out
