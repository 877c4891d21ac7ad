"""A property test: random sequences of rounds, publications, accepts, declines, follow-up events and budget cuts
never leave a programme, earmark, cap or supervisor over its limit, and the books always add up to the krona.

It drives the application layer (api.core.rounds, api.core.commitments, api.core.services) on a real SQLite database,
solving each round in-process with the real engine so that hundreds of steps stay within seconds.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.core import commitments, rounds, services
from api.core.errors import Conflict, Problem
from api.core.outcomes import store_result
from api.core.settings import Settings
from api.core.snapshot import PROGRAMMES, SUPERVISORS, import_instance
from api.http.routers.commitments import _books
from matching.generators.generate import generate
from matching.input.instance import Instance
from matching.solvers.solve import solve
from models import Commitment, MatchRound, Proposal, Region, Role, RoundStatus, User
from models.db import make_engine, make_sessionmaker, transaction
from models.migrate import upgrade
from models.queries import Subject

ROUND_DATE = date(2027, 1, 15)


class Region07(RuleBasedStateMachine):
    """One region through rounds and answers; a fresh database per example."""

    @initialize(seed=st.integers(0, 10_000))
    def start(self, seed: int) -> None:
        self.folder = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(self.folder.name) / 'p.sqlite'}"
        upgrade(url)
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        instance = generate(24, 10, seed=seed, binding_budgets=True)
        with transaction(self.sessions) as session:
            region = Region(code="07", name="Egenskap")
            session.add(region)
            session.flush()
            import_instance(session, region, instance)
            admin = User(username="a", password_hash="x", role=Role.ADMIN)
            session.add(admin)
            session.flush()
            self.region_id, self.admin = region.id, Subject(admin.id, Role.ADMIN)
        self.settings = Settings(environment="test", database_url=url)
        self.steps: list[str] = []

    def teardown(self) -> None:
        self.engine.dispose()
        self.folder.cleanup()

    def _region(self, session: Session) -> Region:
        return session.get_one(Region, self.region_id)

    def _attempt(self, what: str, action: Any) -> None:
        """Run one step in its own transaction; a refusal (409/422) is an allowed outcome, and rolls back."""
        try:
            with transaction(self.sessions) as session:
                action(session)
            self.steps.append(what)
        except (Conflict, Problem) as exc:
            self.steps.append(f"{what}: refused ({exc})")

    @rule(method=st.sampled_from(["greedy", "cp_sat"]), publish=st.sampled_from([True, True, True, False]))
    def run_round(self, method: str, publish: bool) -> None:
        with transaction(self.sessions) as session:
            body = rounds.RoundCreate(round_date=ROUND_DATE, time_limit_s=2)
            row = rounds.create_round(session, self.admin, self._region(session), body, self.settings, None)
            round_id, snapshot = row.id, row.snapshot
        instance = Instance.model_validate_json(snapshot)
        solution = solve(instance, method=method)  # type: ignore[arg-type]
        with transaction(self.sessions) as session:  # as the round's job does: take the region, then store
            session.execute(
                update(MatchRound)
                .where(MatchRound.id == round_id)
                .values(status=RoundStatus.SOLVING, active_region_id=MatchRound.region_id)
            )
            assert store_result(session, round_id, solution)
        if publish:
            self._attempt("publish", lambda s: rounds.publish(s, self.admin, s.get_one(MatchRound, round_id)))

    def _pending(self, session: Session) -> list[Proposal]:
        statement = (
            select(Proposal)
            .join(MatchRound, MatchRound.id == Proposal.round_id)
            .where(MatchRound.status == RoundStatus.PUBLISHED, Proposal.answer == "pending")
            .order_by(Proposal.id)
        )
        return list(session.scalars(statement))

    @rule(picks=st.lists(st.tuples(st.integers(0, 20), st.sampled_from([True, True, True, False])), max_size=4))
    def answer(self, picks: list[tuple[int, bool]]) -> None:
        for pick, accept in picks:

            def act(session: Session, pick: int = pick, accept: bool = accept) -> None:
                pending = self._pending(session)
                if not pending:
                    raise Conflict("nothing to answer", slug="noop")
                p = pending[pick % len(pending)]
                rounds.answer(session, self.admin, session.get_one(MatchRound, p.round_id), p.id, accept)

            self._attempt("accept" if accept else "decline", act)

    @rule(
        pick=st.integers(0, 20),
        status=st.sampled_from(["started", "completed", "interrupted", "not_started"]),
        paid_share=st.one_of(st.none(), st.floats(0, 1)),
        last=st.integers(0, 11),
    )
    def follow_up(self, pick: int, status: str, paid_share: float | None, last: int) -> None:
        def act(session: Session) -> None:
            rows = list(session.scalars(select(Commitment).order_by(Commitment.id)))
            if not rows:
                raise Conflict("nothing to follow up", slug="noop")
            row = rows[pick % len(rows)]
            month = min(last, row.months - 1)
            body = commitments.FollowUp(
                status=status,  # type: ignore[arg-type]
                last_month=date(
                    row.start.year + (row.start.month - 1 + month) // 12, (row.start.month - 1 + month) % 12 + 1, 1
                )
                if status == "interrupted"
                else None,
                paid=None if paid_share is None or status == "started" else int(row.grant * paid_share),
            )
            commitments.follow_up(session, self.admin, self._region(session), row.id, body)

        self._attempt(f"follow-up {status}", act)

    @rule(pick=st.integers(0, 50), share=st.floats(0, 1.2), budget=st.booleans())
    def change_limit(self, pick: int, share: float, budget: bool) -> None:
        """Cut or raise a programme's budget or a supervisor's seats (refused when commitments would not fit)."""
        kind = PROGRAMMES if budget else SUPERVISORS
        field = "budget" if budget else "capacity"

        def act(session: Session) -> None:
            region = self._region(session)
            rows = list(session.scalars(services.scoped(kind, self.admin, region, write=True)))
            row = rows[pick % len(rows)]
            value = int(row.data.get(field, 1) * share) if budget else round(3 * share)
            services.update_object(session, kind, self.admin, region, row, {field: value})

        self._attempt(f"change {field}", act)

    @invariant()
    def limits_hold(self) -> None:
        with self.sessions() as session:
            broken = commitments.violations(session, self.region_id)
        assert broken == [], (broken, self.steps)

    @invariant()
    def books_add_up(self) -> None:
        with self.sessions() as session:
            books = _books(session, self._region(session), ROUND_DATE)
            held = sum(commitments.held(r)[0] for r in commitments.region_commitments(session, self.region_id))
        for p in books["programmes"]:
            assert p["budget"] == p["committed"] + p["left"], p
            assert p["granted"] == p["committed"] + p["released"], p
            assert p["committed"] == p["paid"] + p["outstanding"], p
            assert p["released"] >= 0 and p["outstanding"] >= 0
        assert books["totals"]["committed"] == held
        for name in ("months", "units"):
            assert sum(r.get("planned", r.get("committed", 0)) for r in books[name]) == held
        drawn = sum(e["drawn"] for e in books["earmarks"])
        earmarked = sum(e["committed"] for e in books["earmarks"])
        assert drawn <= earmarked <= held


Region07.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestCommitmentSequences = Region07.TestCase
