"""Versions of everything that can change a round's result: stored with each round so it can be reproduced."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

PACKAGES = ("vardmatch", "ortools", "numpy", "scipy", "pydantic", "rapidfuzz")


def versions() -> dict[str, str]:
    """Python, platform and the installed version of each package that shapes a solution."""
    out = {"python": sys.version.split()[0], "platform": platform.platform(terse=True)}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def differences(stored: dict[str, str], current: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    """Entries whose stored and current versions differ (the platform string is informational, not compared)."""
    keys = (set(stored) | set(current)) - {"platform"}
    return {k: (stored.get(k), current.get(k)) for k in sorted(keys) if stored.get(k) != current.get(k)}
