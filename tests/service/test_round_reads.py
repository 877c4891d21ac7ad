"""Reads of a round read only what they need: a round's progress and the round lists never load its snapshot (every
input of the region) or its reports, for coordinators and clinics alike, and write nothing; a clinic's view of a
round stored before its unit index existed is the same as one read from the index."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text

from matching.input.validate import load_instance
from models.db import make_engine
from tests.service.conftest import FIXTURES, Service
from tests.service.helpers import add_region, ok, run_round
from tests.service.test_load_paths import statements

R = "/regions/09"
# What may name the reports' column: asking whether they are there and for their error, not loading them.
ASKING = re.compile(r"match_round\.analysis IS NOT NULL|match_round\.analysis_error")


@pytest.fixture(scope="module")
def published(service: Service) -> int:
    """Region 09 (the small pin-and-forbid region) with a coordinator and a clinic user of U1; a round, published."""
    add_region(service, "09", load_instance(FIXTURES / "pin_and_forbid.json"), {"coord09": None, "clinic09": "U1"})
    done = run_round(service, "coord09", "09", "round-reads-1")
    ok(service.call("coord09", "POST", f"{R}/rounds/{done['id']}/publish"))
    return int(done["id"])


@pytest.mark.parametrize("user", ["coord09", "clinic09"])
def test_progress_and_lists_load_neither_the_snapshot_nor_the_reports_and_write_nothing(
    service: Service, published: int, user: str
) -> None:
    service.token(user)  # logged in beforehand
    for path in (f"{R}/rounds/{published}", f"{R}/rounds"):
        with statements(service.app.state.engine) as seen:
            body = ok(service.call(user, "GET", path))
        assert body, path
        rounds = [s for s in seen if "match_round" in s]
        assert rounds, path
        assert not [s for s in rounds if "snapshot" in s], (path, rounds)
        assert not [s for s in rounds if "match_round.analysis" in ASKING.sub("", s)], (path, rounds)
        assert not [s for s in seen if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))], (path, seen)


def test_the_reports_state_is_read_without_the_reports(service: Service, published: int) -> None:
    def state() -> tuple[tuple[bool, str | None], bool]:
        view = ok(service.call("coord09", "GET", f"{R}/rounds/{published}"))
        [summary] = [r for r in ok(service.call("coord09", "GET", f"{R}/rounds"))["items"] if r["id"] == published]
        return (view["analysis_ready"], view["analysis_error"]), summary["analysis_ready"]

    assert state() == ((True, None), True)  # the round's reports were computed after it solved
    engine = make_engine(service.url)
    try:
        with engine.begin() as connection:
            stored = connection.execute(text("SELECT analysis FROM match_round WHERE id = :id"), {"id": published})
            reports = stored.scalar_one()
            update = text("UPDATE match_round SET analysis = :value, analysis_error = :error WHERE id = :id")
            failed = {"value": '{"error": "solver crashed"}', "error": "solver crashed", "id": published}
            connection.execute(update, failed)
        assert state() == ((True, "solver crashed"), True)
        with engine.begin() as connection:
            connection.execute(update, {"value": None, "error": None, "id": published})
        assert state() == ((False, None), False)
        with engine.begin() as connection:
            connection.execute(
                update,
                {"value": reports if isinstance(reports, str) else json.dumps(reports), "error": None, "id": published},
            )
    finally:
        engine.dispose()


def test_a_clinics_view_of_a_round_without_an_index_reads_the_snapshot_alike(service: Service, published: int) -> None:
    indexed = ok(service.call("clinic09", "GET", f"{R}/rounds/{published}"))
    listed = ok(service.call("clinic09", "GET", f"{R}/rounds"))["items"]
    assert indexed["view"] == "unit" and indexed["objective_statement"] and indexed["unit"]["unit_id"] == "U1"
    engine = make_engine(service.url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE match_round SET unit_index = NULL WHERE id = :id"), {"id": published})
        assert ok(service.call("clinic09", "GET", f"{R}/rounds/{published}")) == indexed
        assert ok(service.call("clinic09", "GET", f"{R}/rounds"))["items"] == listed
    finally:
        engine.dispose()
