"""A command that prints data (`vardmatch solve --json`) keeps standard output for it: what native code writes to
file descriptor 1 (HiGHS prints debugging lines there, sometimes from a thread that outlives the solve) goes to
standard error instead."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NATIVE_NOISE = """
import os, sys
from api.cli.common import keep_stdout_for_output
keep_stdout_for_output()
os.write(1, b"HighsMipSolverData::transformNewIntegerFeasibleSolution\\n")
print('{"placed": 96}')
"""


def test_native_writes_to_fd_1_go_to_stderr_and_printed_output_to_stdout() -> None:
    done = subprocess.run([sys.executable, "-c", NATIVE_NOISE], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"placed": 96}
    assert "HighsMipSolverData" in done.stderr


def test_solve_json_prints_only_the_solution() -> None:
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "api.cli", "solve", str(root / "fixtures" / "demo_region.json"), "--json"]
    done = subprocess.run([*command, "--method", "greedy"], capture_output=True, text=True, check=True, cwd=root)
    assert json.loads(done.stdout)["status"]
