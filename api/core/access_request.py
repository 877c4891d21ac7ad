"""Access requests (GDPR art. 15): everything the service holds about one candidate, as JSON and as a readable page.

Identity, profile, wishes, every round that considered them (the result and its explanation), the clinics'
answers, commitments and their follow-up, every audit event about them, and how long their identity is kept.
"""

from __future__ import annotations

import html
import json
from datetime import date
from typing import Any

from fastapi.encoders import jsonable_encoder
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, undefer

from api.core import commitments
from api.core.privacy import identity_of, verdicts
from api.core.rounds import candidate_explanation
from models import AuditEvent, Candidate, Commitment, MatchRound, Offer, Proposal, Region, Unit
from models.base import utcnow


def _wishes(snapshot_offers: dict[str, Any], units: set[str], wishes: list[str]) -> list[dict[str, Any]]:
    rows = []
    for rank, wish in enumerate(wishes, start=1):
        offer = snapshot_offers.get(wish)
        if offer is not None:
            rows.append({"rank": rank, "kind": "offer", "id": wish, **offer})
        else:
            rows.append({"rank": rank, "kind": "unit" if wish in units else "unknown", "id": wish})
    return rows


def _offer_facts(session: Session, region_id: int) -> tuple[dict[str, Any], set[str]]:
    offers = {
        row.ref: {
            "unit_id": row.data.get("unit_id"),
            "specialty": row.data.get("specialty", ""),
            "start": row.data.get("start"),
            "months": row.data.get("months"),
            "status": row.status,
            "archived": row.archived_at is not None,
        }
        for row in session.scalars(select(Offer).where(Offer.region_id == region_id))
    }
    units = set(session.scalars(select(Unit.ref).where(Unit.region_id == region_id)))
    return offers, units


def _proposal(p: Proposal) -> dict[str, Any]:
    return {
        "proposal_id": p.id,
        "offer_id": p.offer_ref,
        "supervisor_id": p.supervisor_ref,
        "programme_id": p.programme_ref,
        "start": p.start.isoformat(),
        "months": p.months,
        "grant": p.grant,
        "score": p.score,
        "breakdown": p.breakdown,
        "answer": p.answer,
        "answered_at": p.answered_at.isoformat() if p.answered_at else None,
    }


def _rounds(session: Session, region_id: int, ref: str, proposals: list[Proposal]) -> list[dict[str, Any]]:
    needle = f'"id":"{ref}"'
    out = []
    statement = (
        select(MatchRound)
        .where(MatchRound.region_id == region_id, MatchRound.snapshot.contains(needle, autoescape=True))
        .options(undefer(MatchRound.snapshot), undefer(MatchRound.analysis))  # both read below
    )
    for row in session.scalars(statement.order_by(MatchRound.id)):
        if not any(c.get("id") == ref for c in json.loads(row.snapshot).get("candidates", [])):
            continue
        try:
            explanation = candidate_explanation(session, row, ref)
        except ValidationError:  # a snapshot stored under older rules: the rest of the request is still owed
            explanation = {"unmatched": None, "eligible_offers": None, "excluded_offers": None}
        mine = [p for p in proposals if p.round_id == row.id]
        why_not = next((w for w in (row.analysis or {}).get("why_not", []) if w.get("candidate_id") == ref), None)
        outcome = "no result" if row.result is None else ("proposed" if mine else "not proposed")
        out.append(
            {
                "round_id": row.id,
                "name": row.name,
                "round_date": row.round_date.isoformat(),
                "status": row.status,
                "created_at": row.created_at.isoformat(),
                "published_at": row.published_at.isoformat() if row.published_at else None,
                "outcome": outcome,
                "proposal": _proposal(mine[0]) if mine else None,
                "unmatched": explanation["unmatched"],
                "eligible_offers": explanation["eligible_offers"],
                "excluded_offers": explanation["excluded_offers"],
                "why_not": why_not,
            }
        )
    return out


def _audit_events(
    session: Session, region_id: int, ref: str, proposal_ids: list[int], commitment_ids: list[int]
) -> list[dict[str, Any]]:
    about = or_(
        (AuditEvent.object_type == "candidate") & (AuditEvent.object_id == ref),
        (AuditEvent.object_type == "proposal") & AuditEvent.object_id.in_([str(i) for i in proposal_ids]),
        (AuditEvent.object_type == "commitment") & AuditEvent.object_id.in_([str(i) for i in commitment_ids]),
    )
    rows = session.scalars(select(AuditEvent).where(AuditEvent.region_id == region_id, about).order_by(AuditEvent.id))
    return [
        {
            "at": e.at.isoformat(),
            "action": e.action,
            "by_role": e.actor_role,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "purpose": (e.detail or {}).get("purpose") or (e.detail or {}).get("reason"),
            "detail": e.detail,
        }
        for e in rows
    ]


def access_request(session: Session, region: Region, candidate: Candidate, today: date | None = None) -> dict[str, Any]:
    """Everything held about the candidate (their own identity in full), JSON-ready."""
    identity = identity_of(session, candidate)
    offers, units = _offer_facts(session, region.id)
    proposals = list(
        session.scalars(select(Proposal).where(Proposal.candidate_id == candidate.id).order_by(Proposal.id))
    )
    held = list(
        session.scalars(select(Commitment).where(Commitment.candidate_id == candidate.id).order_by(Commitment.id))
    )
    profile = {k: v for k, v in candidate.data.items() if k != "wishes"}
    verdict = next(iter(verdicts(session, region, today or date.today(), only=candidate.ref)), None)
    return jsonable_encoder(
        {
            "generated_at": utcnow().isoformat(),
            "region": {"code": region.code, "name": region.name},
            "candidate_id": candidate.ref,
            "identity": {
                "personnummer": identity.personnummer,
                "given_name": identity.given_name,
                "family_name": identity.family_name,
                "stored_at": identity.created_at.isoformat(),
            }
            if identity
            else None,
            "record": {
                "status": candidate.status,
                "created_at": candidate.created_at.isoformat(),
                "updated_at": candidate.updated_at.isoformat(),
                "withdrawn_at": candidate.withdrawn_at.isoformat() if candidate.withdrawn_at else None,
                "archived_at": candidate.archived_at.isoformat() if candidate.archived_at else None,
                "erased_at": candidate.erased_at.isoformat() if candidate.erased_at else None,
            },
            "profile": profile,
            "wishes": _wishes(offers, units, list(candidate.data.get("wishes", []))),
            "rounds": _rounds(session, region.id, candidate.ref, proposals),
            "answers": [{"round_id": p.round_id, **_proposal(p)} for p in proposals if p.answer != "pending"],
            "commitments": [commitments.view(c) for c in held],
            "audit_events": _audit_events(
                session, region.id, candidate.ref, [p.id for p in proposals], [c.id for c in held]
            ),
            "retention": {
                "kept_until": verdict.clock.due_on.isoformat() if verdict and verdict.clock else None,
                "rule": verdict.note if verdict else "erased",
            },
        }
    )


# A readable page ---------------------------------------------------------------------------------------------------

SECTIONS = {
    "sv": {
        "title": "Registerutdrag (artikel 15 GDPR)",
        "intro": "Allt som Vårdmatch lagrar om kandidaten {ref} i {region}, framtaget {at}.",
        "identity": "Identitet",
        "record": "Registerpost",
        "profile": "Profil",
        "wishes": "Önskemål",
        "rounds": "Matchningsomgångar där kandidaten prövades",
        "answers": "Klinikernas svar",
        "commitments": "Placeringar och uppföljning",
        "audit_events": "Loggade händelser",
        "retention": "Hur länge uppgifterna sparas",
        "none": "Inget.",
        "erased": "Identiteten är raderad.",
    },
    "en": {
        "title": "Access request (GDPR art. 15)",
        "intro": "Everything Vårdmatch holds about candidate {ref} in {region}, produced {at}.",
        "identity": "Identity",
        "record": "Record",
        "profile": "Profile",
        "wishes": "Wishes",
        "rounds": "Matching rounds that considered the candidate",
        "answers": "Answers of the clinics",
        "commitments": "Placements and follow-up",
        "audit_events": "Logged events",
        "retention": "How long the data are kept",
        "none": "Nothing.",
        "erased": "The identity has been erased.",
    },
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#111}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #999;padding:.25rem .5rem;"
    "text-align:left;vertical-align:top}th{background:#eee}code{white-space:pre-wrap}"
)


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        if not value:
            return ""
        return f"<code>{html.escape(json.dumps(value, ensure_ascii=False, indent=1))}</code>"
    return html.escape("" if value is None else str(value))


def _table(value: Any, none: str) -> str:
    if isinstance(value, dict):
        rows = "".join(
            f"<tr><th scope=row>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in value.items()
        )
        return f"<table>{rows}</table>"
    if not value:
        return f"<p>{html.escape(none)}</p>"
    columns = list(dict.fromkeys(k for row in value for k in row))
    head = "".join(f"<th scope=col>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in value)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(doc: dict[str, Any], lang: str = "sv") -> str:
    """The access request as one self-contained, accessible HTML page."""
    text = SECTIONS[lang]
    intro = text["intro"].format(ref=doc["candidate_id"], region=doc["region"]["name"], at=doc["generated_at"][:16])
    parts = [
        f"<!doctype html><html lang={lang}><head><meta charset=utf-8>",
        f"<title>{html.escape(text['title'])}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{html.escape(text['title'])}</h1><p>{html.escape(intro)}</p>",
    ]
    for key in (
        "identity",
        "record",
        "profile",
        "wishes",
        "rounds",
        "answers",
        "commitments",
        "audit_events",
        "retention",
    ):
        parts.append(f"<h2>{html.escape(text[key])}</h2>")
        value = doc[key]
        if key == "identity" and value is None:
            parts.append(f"<p>{html.escape(text['erased'])}</p>")
        else:
            parts.append(_table(value, text["none"]))
    parts.append("</main></body></html>")
    return "".join(parts)
