"""The engine stays pure: importing it pulls in no web or database code."""

import subprocess
import sys

import matching

MODULES = [
    "matching.input.instance",
    "matching.input.validate",
    "matching.rules.eligibility",
    "matching.rules.scoring",
    "matching.rules.prepare",
    "matching.solvers.cpsat",
    "matching.solvers.flow",
    "matching.solvers.solve",
    "matching.reports.verify",
]


def test_importing_the_engine_imports_no_service_code() -> None:
    code = (
        "import sys, importlib\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "service = {'fastapi', 'sqlalchemy', 'api', 'models', 'starlette'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in service)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_engine_package_is_documented() -> None:
    assert matching.__doc__ and "never imports" in matching.__doc__
