"""The pipeline outlook: per profession and month, who will be ready, the places offered, free seats and money."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from matching.input.validate import load_instance
from matching.reports.outlook import outlook
from tests.factories import candidate, instance_dict, make, offer, programme, supervisor

GRANT = 6 * (30_000 + 4_000)


def test_readiness_slots_seats_and_money_per_month() -> None:
    instance = make(
        candidates=[
            candidate("C1"),  # ready now
            candidate("C2", ladder={"practical_test": "2027-02-20", "ptj_decision": "2027-03-05"}),  # from March
            candidate("C3", cefr="B2"),  # below every offer's C1
            candidate("C4", available_until="2027-01-31"),  # gone after January
        ],
        offers=[offer("O1", start="2027-02-01"), offer("O2", start="2027-04-01", slots=2), offer("O3", status="draft")],
        supervisors=[supervisor("S1", capacity=2)],
        programmes=[programme(budget=2 * GRANT + 1000)],
    )
    rows = {r.month: r for r in outlook(instance, date(2027, 1, 1), 4).rows}
    assert [rows[m].ready for m in ("2027-01", "2027-02", "2027-03", "2027-04")] == [2, 1, 2, 2]
    assert [rows[m].slots for m in ("2027-01", "2027-02", "2027-03", "2027-04")] == [0, 1, 0, 2]
    assert rows["2027-04"].slots_to_date == 3 and rows["2027-04"].shortfall == -1
    assert rows["2027-01"].seats_free == 2
    assert rows["2027-01"].money_left == 2 * GRANT + 1000 and rows["2027-01"].fundable == 2


def test_commitments_take_seats_and_money() -> None:
    data = instance_dict(supervisors=[supervisor("S1", capacity=2)])
    data["commitments"] = [
        {"id": "K1", "candidate_id": "X", "unit_id": "U1", "supervisor_id": "S1", "programme_id": "P1",
         "start": "2027-03-01", "months": 6, "grant": 400_000}
    ]  # fmt: skip
    rows = {r.month: r for r in outlook(load_instance(data), date(2027, 2, 1), 3).rows}
    assert (rows["2027-02"].seats_free, rows["2027-03"].seats_free) == (2, 1)
    assert rows["2027-02"].money_left == 600_000


def test_the_command_prints_the_table_and_json(tmp_path: Path) -> None:
    path = tmp_path / "round.json"
    path.write_text(json.dumps(instance_dict()))
    runner = CliRunner()
    table = runner.invoke(app, ["outlook", str(path), "--start", "2027-01", "--months", "2"])
    assert table.exit_code == 0 and "shortfall" in table.output and "2027-02" in table.output
    as_json = json.loads(runner.invoke(app, ["outlook", str(path), "--months", "2", "--json"]).output)
    assert as_json["start"] == "2027-01" and len(as_json["rows"]) == 2
    bad = runner.invoke(app, ["outlook", str(path), "--start", "2027-13"])
    assert bad.exit_code == 2 and "not a month" in bad.output
