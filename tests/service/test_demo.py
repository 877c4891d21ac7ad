"""`serve --demo` data: the demo region loads with TEST identities and a user of every role."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from api.core.identity import normalise
from api.core.settings import Settings
from api.server import login_help, prepare_database
from models import Candidate, CandidateIdentity, Offer, User
from models.db import make_engine, make_sessionmaker


def test_demo_loads(tmp_path: Path) -> None:
    settings = Settings(environment="test", database_url=f"sqlite:///{tmp_path / 'demo.sqlite'}")
    counts = prepare_database(settings, demo=True)
    assert counts and counts["candidates"] == 300
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Candidate)) == 300
        assert session.scalar(select(func.count()).select_from(Offer)) == counts["offers"]
        numbers = list(session.scalars(select(CandidateIdentity.personnummer)))
        assert len(numbers) == 300 and len(set(numbers)) == 300
        # Formally valid, and all in the 980-999 birth-number test range.
        assert all(normalise(n) == n and 980 <= int(n[9:12]) <= 999 for n in numbers)
        assert {u.role for u in session.scalars(select(User))} == {"admin", "coordinator", "clinic"}
    engine.dispose()
    text = login_help("127.0.0.1", 8000)
    assert "http://localhost:8000" in text and "samordnare" in text
