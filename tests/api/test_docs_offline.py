"""/docs works on a network without internet: the page and every asset it loads come from the service itself."""

from __future__ import annotations

import asyncio
import re

import httpx

from api.app import create_app
from api.core.settings import Settings


def _get_all(paths: list[str]) -> list[httpx.Response]:
    app = create_app(Settings(environment="test", database_url="sqlite://"))

    async def fetch() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vardmatch") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(fetch())


def test_the_documentation_loads_nothing_from_outside() -> None:
    [page] = _get_all(["/docs"])
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) >= 3 and not re.search(r"https?://", page.text), page.text
    assert all(a.startswith("/docs/assets/") for a in assets), assets
    for asset, response in zip(assets, _get_all(assets), strict=True):
        assert response.status_code == 200 and len(response.content) > 1000, asset
    assert "'/api/v1/openapi.json'" in page.text
