"""Reading a candidate's identity: masked by default, every read audited, never for clinics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.core.audit import audit
from api.core.errors import NotFound, Unprocessable
from api.core.identity import mask
from api.core.redaction import IdentityText
from api.core.schemas import IdentityRead
from api.core.services import region_for
from api.http.deps import CoordinatorOrAdmin, SessionDep
from api.http.errors import problem_responses
from models import Candidate
from models.queries import identities_readable_by

router = APIRouter(tags=["candidates"])


@router.get(
    "/regions/{region}/candidates/{ref}/identity",
    response_model=IdentityRead,
    responses=problem_responses(401, 403, 404, 422),
)
def read_identity(
    region: str,
    ref: str,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    reveal: Annotated[bool, Query(description="show the full number (logged with the purpose)")] = False,
    purpose: Annotated[
        str, Query(max_length=200, description="why the identity is needed (audited; required with reveal=true)")
    ] = "",
) -> Any:
    """A candidate's identity (personnummer masked unless `reveal`, which needs a `purpose`); every read is audited."""
    if reveal and not purpose.strip():
        raise Unprocessable(
            "revealing a personnummer needs a purpose",
            errors=[{"field": "purpose", "message": "required when reveal=true", "type": "required"}],
        )
    reg = region_for(session, subject, region)
    found = session.execute(
        identities_readable_by(subject).where(Candidate.region_id == reg.id, Candidate.ref == ref)
    ).first()
    if found is None:
        raise NotFound(f"no identity for candidate {ref} in region {reg.code}")
    identity, candidate = found
    # The purpose is free text about this person: their own name and number never enter the append-only log.
    purpose = IdentityText(identity.personnummer, identity.given_name, identity.family_name).scrub(
        purpose, name_parts=True
    )
    audit(session, subject, "identity.read", "candidate", candidate.ref, reg.id, revealed=reveal, purpose=purpose)
    number = identity.personnummer if reveal else mask(identity.personnummer)
    return {
        "candidate_id": candidate.ref,
        "personnummer": number,
        "masked": not reveal,
        "given_name": identity.given_name,
        "family_name": identity.family_name,
    }
