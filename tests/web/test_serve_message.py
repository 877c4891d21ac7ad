"""`vardmatch serve --demo` prints one URL: the login page."""

from __future__ import annotations

import re

from api.server import login_help


def test_the_demo_prints_one_url() -> None:
    text = login_help("127.0.0.1", 8000)
    assert re.findall(r"https?://\S+", text) == ["http://localhost:8000"]
    assert "samordnare" in text and "klinik" in text
