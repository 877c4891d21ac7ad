"""The pages every role starts from: login, language, security headers, CSRF, the coordinator's overview and lists,
the admin's regions and users. Each page is checked by axe-core for WCAG 2.1 AA."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.web.conftest import api_token, check_accessible, login, screenshot


def test_the_printed_url_shows_the_login_page_in_swedish_and_english_on_request(page: Page, base_url: str) -> None:
    response = page.goto("/")
    assert response is not None and page.url.endswith("/login")
    expect(page.locator("h1")).to_have_text("Logga in")
    assert page.locator("html").get_attribute("lang") == "sv"
    check_accessible(page)
    screenshot(page, "login")
    page.click("button[name=lang]")
    expect(page.locator("h1")).to_have_text("Log in")
    assert page.locator("html").get_attribute("lang") == "en"
    check_accessible(page)


def test_every_page_carries_a_csp_without_inline_scripts_and_cookies_are_strict(page: Page, base_url: str) -> None:
    response = page.goto("/login")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "style-src 'self'" in csp
    login(page, "samordnare")
    for path in ("/regions/01", "/regions/01/offers", "/regions/01/rounds", "/regions/01/rounds/new"):
        response = page.goto(path)
        assert response is not None and response.status == 200
        check_accessible(page)
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        html = page.content()
        # Every script comes from a file of ours; no inline script, event handler or style attribute.
        assert all(s.get_attribute("src") for s in page.locator("script").all()), path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert " style=" not in html, path
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["vm_session"]["httpOnly"] and cookies["vm_session"]["sameSite"] == "Strict"
    assert cookies["vm_csrf"]["httpOnly"] and cookies["vm_csrf"]["sameSite"] == "Strict"


def test_a_form_without_this_browsers_csrf_token_is_refused(page: Page, base_url: str) -> None:
    login(page, "samordnare")
    # The same browser (its cookies go along), but the token is not the one its pages carry.
    refused = page.request.post("/logout", form={"csrf": "x" * 43})
    assert refused.status == 403
    missing = page.request.post("/regions/01/rounds/new", form={"time_limit_s": "1"})
    assert missing.status == 403
    # Still logged in: the refused logout did nothing.
    assert page.goto("/regions/01") is not None and page.url.endswith("/regions/01")
    # A login form posted from elsewhere (no CSRF cookie of ours) is refused too.
    outside = httpx.post(f"{base_url}/login", data={"username": "samordnare", "password": "x", "csrf": "y"})
    assert outside.status_code == 403


def test_login_goes_back_to_the_page_asked_for_but_never_to_another_site(page: Page) -> None:
    page.goto("/regions/01/offers")
    assert "/login?next=" in page.url
    page.fill("#username", "samordnare")
    page.fill("#password", "demo-coordinator-pass")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/regions/01/offers")
    page.context.clear_cookies()
    page.goto("/login?next=//example.org/x")
    assert page.locator("main input[name=next]").get_attribute("value") == ""


def test_wrong_password_says_so_without_logging_in(page: Page) -> None:
    page.goto("/login")
    page.fill("#username", "samordnare")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit].primary")
    expect(page.locator(".error")).to_have_text("Fel användarnamn eller lösenord.")
    check_accessible(page)


def test_coordinator_overview_shows_counts_money_and_rounds(page: Page, base_url: str) -> None:
    login(page, "samordnare")
    assert page.url.endswith("/regions/01")
    expect(page.locator("h1")).to_contain_text("Region Stockholm")
    main = page.locator("main").inner_text()
    for words in ("Erbjudanden", "Kandidater", "Handledare", "Program", "Budgeterat", "Åtaget", "Kvar", "Omgångar"):
        assert words in main
    # The money is the books' (the API's GET /books): the total budget shown is theirs.
    assert "kr" in main and page.locator("svg.chart").count() == 1
    check_accessible(page)
    screenshot(page, "overview")
    page.click("button[name=lang]")
    assert "Budgeted" in page.locator("main").inner_text()
    check_accessible(page)


def test_lists_search_filter_and_page(page: Page, base_url: str) -> None:
    login(page, "samordnare")
    # The total as the API counts it now (other tests may add or remove candidates of their own).
    total = httpx.get(
        f"{base_url}/api/v1/regions/01/candidates?limit=1", headers=api_token(base_url, "samordnare"), timeout=30
    ).json()["total"]
    page.goto("/regions/01/candidates")
    first = page.locator("tbody tr").count()
    assert total > 25 and first == 25 and f"({total})" in page.locator("h1").inner_text()
    check_accessible(page)
    page.click("text=Nästa sida")
    assert "offset=25" in page.url and page.locator("tbody tr").count() == 25
    page.goto("/regions/01/offers")
    page.select_option("#status", "published")
    page.select_option("#profession", "nurse")
    page.click("button:has-text('Filtrera')")
    rows = page.locator("tbody tr")
    assert rows.count() > 0
    for text in rows.all_inner_texts():
        assert "sjuksköterska" in text and "publicerad" in text
    check_accessible(page)
    page.fill("#q", "O00")
    page.click("button:has-text('Filtrera')")
    assert all("O00" in t for t in page.locator("tbody tr td:first-child").all_inner_texts())
    for kind in ("supervisors", "programmes", "units"):
        page.goto(f"/regions/01/{kind}")
        assert page.locator("tbody tr").count() > 0
        check_accessible(page)


def test_admin_sees_regions_and_users_and_creates_a_region(page: Page) -> None:
    login(page, "admin")
    assert page.url.endswith("/admin/regions")
    check_accessible(page)
    page.fill("#code", "99")
    page.fill("#name", "Region Testland")
    page.click("button:has-text('Skapa')")
    expect(page.locator("tbody")).to_contain_text("Region Testland")
    page.goto("/admin/users")
    expect(page.locator("tbody")).to_contain_text("klinik2")
    check_accessible(page)
    page.fill("#username", "ny-samordnare")
    page.fill("#password", "kort")
    page.click("button:has-text('Skapa')")
    expect(page.locator("table.errors")).to_contain_text("password")
    check_accessible(page)
    page.fill("#username", "ny-samordnare")
    page.fill("#password", "ett-langt-losenord")
    page.fill("#region", "01")
    page.click("button:has-text('Skapa')")
    expect(page.locator("tbody")).to_contain_text("ny-samordnare")
    page.context.clear_cookies()
    page.goto("/login")
    page.fill("#username", "ny-samordnare")
    page.fill("#password", "ett-langt-losenord")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/regions/01")


def test_pages_refuse_what_the_api_refuses(page: Page, base_url: str) -> None:
    login(page, "samordnare")
    response = page.goto("/admin/users")
    assert response is not None and response.status == 403
    response = page.goto("/regions/02")
    assert response is not None and response.status == 404
    expect(page.locator("[role=alert]")).to_have_text("region 02 hittades inte")
    check_accessible(page)


def test_a_poll_without_a_session_sends_the_whole_page_to_the_login(base_url: str) -> None:
    headers = {"HX-Request": "true", "HX-Current-URL": f"{base_url}/regions/01/rounds/1"}
    answer = httpx.get(f"{base_url}/regions/01/rounds/1/progress", headers=headers, follow_redirects=False)
    assert answer.status_code == 200 and answer.headers["HX-Redirect"] == "/login?next=%2Fregions%2F01%2Frounds%2F1"
    plain = httpx.get(f"{base_url}/regions/01/rounds/1", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/login?next=%2Fregions%2F01%2Frounds%2F1"
