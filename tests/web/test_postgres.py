"""The pages on PostgreSQL (when VARDMATCH_TEST_POSTGRES_URL is set, as in CI): the demo served from it, a
coordinator's overview and search, a round started from the form, and a clinic's unit page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.databases import POSTGRES_URL, fresh_database
from tests.web.conftest import demo_server, login

if POSTGRES_URL:

    @pytest.fixture(scope="module")
    def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        """The demo on an emptied PostgreSQL database."""
        folder = tmp_path_factory.mktemp("web-postgres")
        with demo_server(fresh_database("postgres", folder), folder) as url:
            yield url

    @pytest.fixture
    def pg_page(browser: Browser, postgres_url: str) -> Iterator[Page]:
        """A fresh browser context on the PostgreSQL server."""
        context = browser.new_context(base_url=postgres_url)
        context.set_default_timeout(20_000)
        yield context.new_page()
        context.close()

    def test_the_pages_work_on_postgresql(pg_page: Page) -> None:
        page = pg_page
        login(page, "samordnare")
        expect(page.locator("h1")).to_contain_text("Region Stockholm")
        page.goto("/regions/01/offers?q=o00&status=published")
        assert page.locator("tbody tr").count() > 0
        page.goto("/regions/01/rounds/new")
        page.fill("#time_limit_s", "2")
        page.click("button:has-text('Starta omgången')")
        expect(page.locator("#placements")).to_be_visible(timeout=90_000)
        page.context.clear_cookies()
        login(page, "klinik")
        assert page.url.endswith("/regions/01/units/U001")
        expect(page.locator("h2#offers")).to_be_visible()
