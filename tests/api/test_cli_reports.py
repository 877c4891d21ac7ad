"""The explaining commands: why-not, what-if, prices, fairness, stable and analyse, on hand-checkable fixtures."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app

SMALL = Path(__file__).resolve().parents[2] / "fixtures" / "small"
ONE_SLOT = str(SMALL / "one_slot_two_candidates.json")
BUDGET = str(SMALL / "budget_funds_one.json")
runner = CliRunner()


def test_solve_summary_states_the_objective() -> None:
    result = runner.invoke(app, ["solve", ONE_SLOT])
    assert result.exit_code == 0, result.output
    assert "What the round optimises" in result.output and "place as many candidates as possible" in result.output


def test_why_not_gives_a_verified_change_that_what_if_confirms(tmp_path: Path) -> None:
    solution = tmp_path / "solution.json"
    assert runner.invoke(app, ["solve", ONE_SLOT, "-o", str(solution)]).exit_code == 0
    why = runner.invoke(app, ["why-not", ONE_SLOT, "CAND-B", "--solution", str(solution), "--json"])
    assert why.exit_code == 0, why.output
    found = json.loads(why.output)
    assert found["cause"] == "out_competed" and found["rival_id"] == "CAND-A" and found["verified"]
    changes = [f"--change={json.dumps(c)}" for c in found["change"]]
    confirmed = runner.invoke(app, ["what-if", ONE_SLOT, "--solution", str(solution), *changes, "--json"])
    assert confirmed.exit_code == 0, confirmed.output
    body = json.loads(confirmed.output)
    assert (body["before"], body["after"]) == (1, 2)
    assert [m["candidate_id"] for m in body["diff"]["added"]] == ["CAND-B"] and body["diff"]["kept"] == 1
    matched = runner.invoke(app, ["why-not", ONE_SLOT, "CAND-A", "--solution", str(solution)])
    assert matched.exit_code == 1 and "is matched" in matched.output


def test_what_if_reports_bad_changes_by_path_and_rule() -> None:
    change = '--change={"target": "offer", "id": "O9", "set": {"slots": 2}}'
    result = runner.invoke(app, ["what-if", ONE_SLOT, change])
    assert result.exit_code == 2 and "changes[0]" in result.output and "known_id" in result.output
    garbled = runner.invoke(app, ["what-if", ONE_SLOT, "--change={not json"])
    assert garbled.exit_code == 2 and "--change" in garbled.output


def test_a_solution_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    assert runner.invoke(app, ["solve", ONE_SLOT, "-o", str(other)]).exit_code == 0
    tampered = json.loads(other.read_text())
    tampered["assignments"][0]["offer_id"] = "O9"
    other.write_text(json.dumps(tampered))
    result = runner.invoke(app, ["fairness", ONE_SLOT, "--solution", str(other)])
    assert result.exit_code == 2 and "does not fit" in result.output


def test_prices_fairness_and_stable_print_tables() -> None:
    prices = runner.invoke(app, ["prices", BUDGET])
    assert prices.exit_code == 0 and "P1" in prices.output, prices.output
    fairness = runner.invoke(app, ["fairness", ONE_SLOT])
    assert fairness.exit_code == 0 and "waiting_band" in fairness.output and "50%" in fairness.output
    stable = runner.invoke(app, ["stable", ONE_SLOT, "--time-limit", "5"])
    assert stable.exit_code == 0 and "deferred_acceptance" in stable.output and "optimiser_no_blocking" in stable.output


def test_analyse_writes_every_report(tmp_path: Path) -> None:
    out = tmp_path / "analysis.json"
    result = runner.invoke(app, ["analyse", ONE_SLOT, "--seconds", "20", "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {"fairness", "floor_prices", "prices", "price_lines", "why_not", "why_not_summary"} <= set(report)
    assert report["why_not_summary"]["total"] == 1 and report["why_not"][0]["candidate_id"] == "CAND-B"


def test_solve_says_why_there_is_no_solution(tmp_path: Path) -> None:
    data = json.loads(Path(ONE_SLOT).read_text())
    data.setdefault("policy", {})["floors"] = [{"group": "profession", "value": "physician", "min_count": 2}]
    floored = tmp_path / "floored.json"
    floored.write_text(json.dumps(data))
    result = runner.invoke(app, ["solve", str(floored)])
    assert result.exit_code == 0 and "INFEASIBLE" in result.output
    assert "No solution: no matching meets the floors" in result.output
