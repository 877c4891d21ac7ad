"""Explaining a round through real HTTP: objective statement and provenance, fairness, prices, why-not with a change
that the what-if confirms, minimal-disruption re-runs with their diff, stable mode, floors and reproduction."""

from __future__ import annotations

import copy
import itertools
import time
from datetime import date
from typing import Any

import pytest

from matching.input.instance import Instance, waiting_band
from models import MatchRound
from models.db import make_engine, make_sessionmaker
from tests.service.conftest import Service

R = "/regions/01"
_keys = itertools.count()


def _start(service: Service, body: dict[str, Any], path: str = f"{R}/rounds") -> dict[str, Any]:
    r = service.call("coord01", "POST", path, json=body, headers={"Idempotency-Key": f"analysis-{next(_keys)}"})
    assert r.status_code == 202, r.text
    solved = service.wait_round("coord01", "01", r.json()["id"])
    assert solved["status"] == "solved", solved
    return solved


def _analysed(service: Service, round_id: int, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = service.call("coord01", "GET", f"{R}/rounds/{round_id}").json()
        if body["analysis_ready"]:
            assert body["analysis_error"] is None, body["analysis_error"]
            return body
        time.sleep(0.2)
    raise AssertionError(f"round {round_id} has no analysis after {timeout} s")


def _get(service: Service, path: str, status: int = 200, **kw: Any) -> Any:
    r = service.call("coord01", "GET", path, **kw)
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture(scope="module")
def first(service: Service) -> dict[str, Any]:
    """A solved, analysed round of region 01: three candidates for two one-slot offers."""
    solved = _start(service, {"round_date": "2027-01-15", "time_limit_s": 5})
    return _analysed(service, solved["id"])


def test_round_states_its_objective_and_provenance(first: dict[str, Any]) -> None:
    statement = " ".join(first["objective_statement"])
    assert "place as many candidates as possible" in statement and "x specialty fit" in statement
    assert first["provenance"]["versions"]["ortools"].startswith("9.15")
    assert first["provenance"]["method"] in ("min_cost_flow", "cp_sat")


def test_fairness_and_prices(service: Service, first: dict[str, Any]) -> None:
    fairness = _get(service, f"{R}/rounds/{first['id']}/fairness")
    physicians = next(g for g in fairness["groups"] if g["group"] == "profession" and g["value"] == "physician")
    assert (physicians["candidates"], physicians["matched"]) == (3, 2)
    assert {g["group"] for g in fairness["groups"]} == {"profession", "county", "country", "waiting_band"}
    prices = _get(service, f"{R}/rounds/{first['id']}/prices")
    assert prices["prices"][0]["objective"] == "placements"
    # The budget does not bind; a slot or a seat alone places nobody (each offer's only supervisor is full too).
    assert prices["prices"][0]["programmes"][0]["per_krona"] == 0
    assert prices["lines"] == []
    # Computed now as a job: the same report.
    again = service.result("coord01", service.call("coord01", "POST", f"{R}/rounds/{first['id']}/prices"))
    assert again == prices


def test_reports_not_stored_yet_are_409_on_get_and_a_job_on_post(service: Service) -> None:
    with service.solver_delay(3):  # the round's own analysis job waits too, so the reports are not stored yet
        solved = _start(service, {"round_date": "2027-01-15", "time_limit_s": 5})
        base = f"{R}/rounds/{solved['id']}"
        for path in ("prices", "why-not"):
            assert _get(service, f"{base}/{path}", 409)["type"].endswith(":report-not-ready")
        unmatched = next(u["candidate_id"] for u in solved["result"]["unmatched"])
        assert _get(service, f"{base}/candidates/{unmatched}/why-not", 409)["type"].endswith(":report-not-ready")
        summary = service.result("coord01", service.call("coord01", "POST", f"{base}/why-not"))
        assert summary["summary"]["total"] == 1 and summary["candidates"][0]["candidate_id"] == unmatched
        one = service.call("coord01", "POST", f"{base}/candidates/{unmatched}/why-not", params={"seconds": 5})
        assert service.result("coord01", one)["candidate_id"] == unmatched


def test_why_not_names_a_change_that_the_what_if_confirms(service: Service, first: dict[str, Any]) -> None:
    base = f"{R}/rounds/{first['id']}"
    summary = _get(service, f"{base}/why-not")
    assert summary["summary"]["total"] == 1
    [unmatched] = summary["candidates"]
    ref = unmatched["candidate_id"]
    why = _get(service, f"{base}/candidates/{ref}/why-not")
    assert why["cause"] in ("out_competed", "no_capacity") and why["verified"], why
    assert why["change"] and why["change_text"]
    body = service.result(
        "coord01", service.call("coord01", "POST", f"{base}/what-if", json={"changes": why["change"]})
    )
    assert ref in {m["candidate_id"] for m in body["diff"]["added"]}
    assert body["placements_after"] == body["placements_before"] + 1
    assert body["diff"]["kept"] == 2  # everyone placed before keeps their place
    matched = _get(service, f"{base}/proposals")["items"][0]["candidate_ref"]
    assert _get(service, f"{base}/candidates/{matched}/why-not", 409)["type"].endswith(":candidate-matched")


def test_what_if_a_budget_cut_says_who_loses(service: Service, first: dict[str, Any]) -> None:
    base = f"{R}/rounds/{first['id']}"
    cut = {"changes": [{"target": "programme", "id": "P1", "set": {"budget": 216_000}}]}
    body = service.result("coord01", service.call("coord01", "POST", f"{base}/what-if", json=cut))
    assert body["changes"] == ["programme P1: budget 1,000,000 -> 216,000 SEK"]
    assert (body["placements_before"], body["placements_after"], body["placements_change"]) == (2, 1, -1)
    [lost] = body["diff"]["lost"]
    assert lost["why"]
    bad = service.call(
        "coord01",
        "POST",
        f"{base}/what-if",
        json={"changes": [{"target": "programme", "id": "NOPE", "set": {"budget": 1}}]},
    )
    assert bad.status_code == 422 and bad.json()["issues"][0]["path"] == "changes[0]"


def test_stable_mode_side_by_side(service: Service, first: dict[str, Any]) -> None:
    r = service.call("coord01", "POST", f"{R}/rounds/{first['id']}/stable", params={"seconds": 5})
    body = service.result("coord01", r)
    assert [row["method"] for row in body["rows"]] == ["deferred_acceptance", "optimiser", "optimiser_no_blocking"]
    assert body["rows"][2]["blocking_pairs"] in (0, None) and body["summary"]


def test_a_stored_round_reproduces_exactly(service: Service, first: dict[str, Any]) -> None:
    body = service.result("coord01", service.call("coord01", "POST", f"{R}/rounds/{first['id']}/reproduce"))
    assert body["deterministic"] and body["identical"], body
    assert body["differences"] == [] and body["version_differences"] == {}


def test_rerun_after_a_decline_changes_only_what_it_must(service: Service, first: dict[str, Any]) -> None:
    base = f"{R}/rounds/{first['id']}"
    assert service.call("coord01", "POST", f"{base}/publish").status_code == 200
    proposals = _get(service, f"{base}/proposals")["items"]
    declined = next(p for p in proposals if p["offer_ref"] == "O2")
    r = service.call("clinic_u2", "POST", f"{base}/proposals/{declined['id']}/decline")
    assert r.status_code == 200, r.text
    second = _start(service, {}, path=f"{base}/rerun")
    assert second["policy"]["keep"] == [
        {"candidate_id": p["candidate_ref"], "offer_id": p["offer_ref"]} for p in proposals if p is not declined
    ]
    diff = _get(service, f"{R}/rounds/{second['id']}/diff")
    assert diff["kept"] == 1  # the proposal nobody declined stands
    moved_or_lost = [*diff["moved"], *diff["lost"]]
    assert [m["candidate_id"] for m in moved_or_lost] == [declined["candidate_ref"]]
    assert "declined or forbidden" in moved_or_lost[0]["why"]
    assert _get(service, f"{base}/diff", 409)["type"].endswith(":no-previous-round")


def test_a_floor_places_its_group_and_has_a_price(service: Service, first: dict[str, Any]) -> None:
    snapshot = Instance.model_validate(_get(service, f"{R}/rounds/{first['id']}/snapshot"))
    placed = {p["candidate_ref"] for p in _get(service, f"{R}/rounds/{first['id']}/proposals")["items"]}
    left_out = next(c for c in snapshot.candidates if c.id not in placed)
    band = waiting_band((date(2027, 1, 15) - left_out.ready_since).days)
    floor = {"group": "waiting_band", "value": band, "min_count": 1}
    floored = _start(service, {"round_date": "2027-01-15", "time_limit_s": 5, "floors": [floor]})
    assert any("must be placed (a floor)" in line for line in floored["objective_statement"])
    _analysed(service, floored["id"])
    fairness = _get(service, f"{R}/rounds/{floored['id']}/fairness")
    row = next(g for g in fairness["groups"] if g["group"] == "waiting_band" and g["value"] == band)
    assert row["floor"] == 1 and row["matched"] >= 1
    [price] = fairness["floor_prices"]
    assert price["floor"] == f"waiting_band={band}" and price["statement"]


def test_floors_that_cannot_be_met_are_refused_with_the_rule(service: Service) -> None:
    floor = {"group": "profession", "value": "nurse", "min_count": 1}
    r = service.call(
        "coord01", "POST", f"{R}/rounds", json={"floors": [floor]}, headers={"Idempotency-Key": "floor-too-big"}
    )
    assert r.status_code == 422 and r.json()["issues"][0]["rule"] == "floor_within_group"


def test_floors_the_round_cannot_meet_fail_it_with_the_reason(service: Service) -> None:
    floor = {"group": "profession", "value": "physician", "min_count": 3}  # three physicians, two slots
    body = {"round_date": "2027-01-15", "time_limit_s": 5, "floors": [floor]}
    r = service.call("coord01", "POST", f"{R}/rounds", json=body, headers={"Idempotency-Key": "floor-infeasible"})
    assert r.status_code == 202, r.text
    failed = service.wait_round("coord01", "01", r.json()["id"])
    assert failed["status"] == "failed" and "no matching meets the floors" in failed["failure"]


def test_a_stored_report_of_an_older_shape_is_computed_again(service: Service, first: dict[str, Any]) -> None:
    """The why-not routes declare their answer: a report stored in a shape they no longer declare (a field an older
    version wrote) is never answered as it is (nor a 500): the GET says it is not ready, and a job computes it."""
    engine = make_engine(service.url)
    with make_sessionmaker(engine)() as session:
        row = session.get_one(MatchRound, first["id"])
        stored = copy.deepcopy(row.analysis)
        analysis = copy.deepcopy(stored)
        for entry in analysis["why_not"]:
            entry["from_an_older_version"] = True
        row.analysis = analysis
        session.commit()
    try:
        assert _get(service, f"{R}/rounds/{first['id']}/why-not", 409)["type"].endswith(":report-not-ready")
        answer = service.result("coord01", service.call("coord01", "POST", f"{R}/rounds/{first['id']}/why-not"))
        assert answer["candidates"] and all("from_an_older_version" not in c for c in answer["candidates"])
        assert [c["candidate_id"] for c in answer["candidates"]] == [c["candidate_id"] for c in stored["why_not"]]
    finally:
        with make_sessionmaker(engine)() as session:
            session.get_one(MatchRound, first["id"]).analysis = stored
            session.commit()
        engine.dispose()
