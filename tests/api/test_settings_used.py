"""Every setting an operator can set is read by the service: a setting nothing reads (START_GRACE_S was one)
tells the operator a lie about what they can tune."""

from __future__ import annotations

import re
from pathlib import Path

from api.core.settings import Settings

API = Path(__file__).resolve().parents[2] / "api"


def test_every_setting_is_read_outside_its_definition() -> None:
    sources = [p.read_text() for p in API.rglob("*.py") if p != API / "core" / "settings.py"]
    unread = [name for name in Settings.model_fields if not any(re.search(rf"\.{name}\b", s) for s in sources)]
    assert unread == []
