"""The demo region: fixtures/demo_region.json as region 01 with test identities and one user per role."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.identity import fake_test_personnummer
from api.core.security import hash_password
from api.core.snapshot import import_instance
from matching.input.validate import load_instance
from models import Candidate, CandidateIdentity, Region, Role, Unit, User

DEMO_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "demo_region.json"
GIVEN = ("Amina", "Omar", "Leyla", "Yusuf", "Sara", "Hassan", "Mariam", "Ali", "Noor", "Karim")
FAMILY = ("Testsson", "Exempelsdotter", "Demovic", "Provström", "Fiktiv")
# Demo passwords: for a local demo only; `serve --demo` refuses to run in production.
DEMO_USERS = (
    ("admin", "demo-admin-pass", Role.ADMIN, None),
    ("samordnare", "demo-coordinator-pass", Role.COORDINATOR, None),
    ("klinik", "demo-clinic-pass", Role.CLINIC, "U001"),
    ("klinik2", "demo-clinic-pass", Role.CLINIC, "U002"),
)


def load_demo(session: Session, path: Path = DEMO_FILE) -> dict[str, int]:
    """Import the demo region, give each candidate a TEST identity and create the demo users."""
    instance = load_instance(path)
    region = Region(code="01", name="Region Stockholm")
    session.add(region)
    session.flush()
    counts = import_instance(session, region, instance)
    candidates = session.scalars(select(Candidate).where(Candidate.region_id == region.id).order_by(Candidate.id))
    for index, candidate in enumerate(candidates):
        # Skatteverket-style TEST personnummer (birth number 980-999): never a real person's number.
        session.add(
            CandidateIdentity(
                candidate_id=candidate.id,
                personnummer=fake_test_personnummer(index),
                given_name=GIVEN[index % len(GIVEN)],
                family_name=FAMILY[index % len(FAMILY)],
            )
        )
    for username, password, role, unit_ref in DEMO_USERS:
        unit = (
            session.scalar(select(Unit).where(Unit.region_id == region.id, Unit.ref == unit_ref)) if unit_ref else None
        )
        session.add(
            User(
                username=username,
                password_hash=hash_password(password),
                role=role,
                region_id=None if role is Role.ADMIN else region.id,
                unit_id=unit.id if unit else None,
            )
        )
    session.flush()
    return {**counts, "users": len(DEMO_USERS)}
