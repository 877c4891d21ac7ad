"""The `vardmatch` command line, run as a real process and in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SMALL = FIXTURES / "small" / "shared_supervisor.json"
runner = CliRunner()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command in a child process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, timeout=300)


def test_solve_prints_the_solution_as_json() -> None:
    result = run("solve", str(SMALL), "--time-limit", "10", "--json")
    assert result.returncode == 0, result.stderr
    solution = json.loads(result.stdout)
    assert {"status", "objective", "bound", "gap", "assignments", "unmatched"} <= set(solution)
    assert solution["status"] == "OPTIMAL" and len(solution["assignments"]) == 3


def test_solve_with_the_mip_shows_readable_progress_and_keeps_stdout_clean() -> None:
    # HiGHS inside OR-Tools prints a banner unless told not to; JSON on stdout must stay parseable.
    result = run("solve", str(SMALL), "--time-limit", "10", "--method", "mip", "--progress", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["method"] == "mip_highs"
    lines = [line for line in result.stderr.splitlines() if "gap" in line]
    assert lines and "placements 3" in lines[-1] and "score" in lines[-1] and "0.00%" in lines[-1]
    assert "[prepare]" in result.stderr and "[explain]" in result.stderr


def test_solve_then_verify_passes_and_a_tampered_solution_fails(tmp_path: Path) -> None:
    out = tmp_path / "solution.json"
    assert runner.invoke(app, ["solve", str(SMALL), "--output", str(out)]).exit_code == 0
    ok = runner.invoke(app, ["verify", str(SMALL), str(out)])
    assert ok.exit_code == 0 and "no violations" in ok.output
    data = json.loads(out.read_text())
    data["assignments"][0]["grant"] += 1
    out.write_text(json.dumps(data))
    bad = runner.invoke(app, ["verify", str(SMALL), str(out)])
    assert bad.exit_code == 1 and "grant_amount" in bad.output


def test_bad_input_names_object_field_and_rule_without_a_traceback(tmp_path: Path) -> None:
    data = json.loads(SMALL.read_text())
    data["units"][0]["hsa_id"] = "SE2321000017-X"
    data["candidates"][0]["cefr"] = "C3"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    result = run("solve", str(path))
    assert result.returncode == 2
    assert "hsa_id" in result.stderr and "[rule: hsa_id]" in result.stderr
    assert ".cefr" in result.stderr and "[rule: allowed_values]" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_and_non_json_files_are_clear_errors(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["solve", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    result = runner.invoke(app, ["solve", str(garbage)])
    assert result.exit_code == 2 and "rule: json" in result.output


def test_deeply_nested_json_is_a_clear_error_with_exit_2(tmp_path: Path) -> None:
    """Nesting deeper than the JSON reader's recursion limit: exit 2 (not 1, which `verify` means as violations)."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    solved = run("solve", str(deep))
    assert solved.returncode == 2 and "nested too deeply" in solved.stderr
    assert "Traceback" not in solved.stderr
    for args in ((str(deep), str(SMALL)), (str(SMALL), str(deep))):
        checked = run("verify", *args)
        assert checked.returncode == 2 and "nested too deeply" in checked.stderr, checked.stderr
        assert "Traceback" not in checked.stderr


def test_explain_lists_each_offer_with_the_rules_that_exclude_it() -> None:
    result = runner.invoke(app, ["explain", str(FIXTURES / "small" / "cofunding_paused.json"), "CAND-B"])
    assert result.exit_code == 0
    assert "excluded by funding" in result.output and "the programme is open" in result.output


def test_generate_writes_a_valid_instance(tmp_path: Path) -> None:
    out = tmp_path / "round.json"
    result = runner.invoke(app, ["generate", "--candidates", "40", "--offers", "20", "--seed", "5", "-o", str(out)])
    assert result.exit_code == 0
    from matching.input.validate import load_instance

    instance = load_instance(out.read_bytes())
    assert len(instance.candidates) == 40 and len(instance.offers) == 20


def test_schema_is_json_schema_of_the_instance() -> None:
    result = runner.invoke(app, ["schema"])
    schema = json.loads(result.output)
    assert {"candidates", "offers", "programmes", "policy"} <= set(schema["properties"])
    solution = json.loads(runner.invoke(app, ["schema", "--solution"]).output)
    assert {"status", "objective", "bound", "gap", "assignments", "unmatched"} <= set(solution["properties"])


def test_demo_summary_reports_professions_money_and_reasons() -> None:
    result = run("demo", "--instance", str(FIXTURES / "small" / "earmark_nurses.json"))
    assert result.returncode == 0, result.stderr
    for heading in ("Matched per profession", "Money per programme", "Why candidates were left unmatched"):
        assert heading in result.stdout
