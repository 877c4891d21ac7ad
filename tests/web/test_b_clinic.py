"""A clinic's pages: only its own unit, never a candidate's identity, answers with the keyboard alone, offers
created, published and withdrawn; and every refusal is the API's."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from api.core.demo import FAMILY, GIVEN
from tests.web.conftest import api_token, check_accessible, login, screenshot, solved_round


@pytest.fixture(scope="module")
def published(base_url: str) -> dict[str, Any]:
    """A demo round, solved and published through the API."""
    headers = api_token(base_url, "samordnare")
    body = solved_round(base_url, headers)
    answer = httpx.post(f"{base_url}/api/v1/regions/01/rounds/{body['id']}/publish", headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    return body


def _api(base_url: str, user: str, path: str) -> httpx.Response:
    return httpx.get(f"{base_url}/api/v1{path}", headers=api_token(base_url, user), timeout=30)


def test_a_clinic_sees_its_own_proposals_and_nothing_of_other_units_or_identities(
    page: Page, base_url: str, published: dict[str, Any]
) -> None:
    login(page, "klinik")
    assert page.url.endswith("/regions/01/units/U001")
    api = _api(base_url, "klinik", f"/regions/01/rounds/{published['id']}/proposals").json()
    assert api["total"] > 0
    shown = page.locator("article h3").all_inner_texts()
    assert len(shown) == api["total"]
    for proposal in api["items"]:
        assert any(f"Förslag {proposal['id']}:" in text for text in shown)
    html = page.content()
    units = _api(base_url, "samordnare", "/regions/01/units?limit=200").json()["items"]
    others = [u["id"] for u in units if u["id"] != "U001"]
    assert others and not [ref for ref in others if re.search(rf"\b{re.escape(ref)}\b", html)]
    assert not re.search(r"\d{6,8}[-+]?\d{4}", html)  # no personnummer
    assert not [name for name in (*GIVEN, *FAMILY) if name in html]
    check_accessible(page)
    screenshot(page, "clinic")


def test_another_units_or_regions_url_gets_the_same_refusal_as_the_api(page: Page, base_url: str) -> None:
    login(page, "klinik")
    for path in ("/regions/01/units/U002", "/regions/02/units/U001"):
        api = _api(base_url, "klinik", path)
        response = page.goto(path)
        assert response is not None and response.status == api.status_code == 404
        assert page.locator("h1").inner_text().startswith("Hittades inte")
    expect(page.locator("[role=alert]")).to_have_text("region 02 hittades inte")
    check_accessible(page)
    other_offer = _api(base_url, "samordnare", "/regions/01/offers?unit=U002").json()["items"][0]["id"]
    api = _api(base_url, "klinik", f"/regions/01/offers/{other_offer}")
    response = page.goto(f"/regions/01/offers/{other_offer}")
    assert response is not None and response.status == api.status_code == 404
    # Coordinators' pages (programmes, rounds) are refused to clinics.
    for path in ("/regions/01", "/regions/01/programmes", "/regions/01/rounds/new"):
        response = page.goto(path)
        assert response is not None and (response.status == 403 or page.url.endswith("/units/U001")), path


def _tab_to(page: Page, element_id: str, limit: int = 400) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_a_clinic_accepts_and_declines_with_the_keyboard_alone(
    page: Page, base_url: str, published: dict[str, Any]
) -> None:
    login(page, "klinik")
    pending = [p for p in _api(base_url, "klinik", f"/regions/01/rounds/{published['id']}/proposals").json()["items"]]
    assert len(pending) >= 2, "the demo round proposes at least two placements to U001"
    first, second = pending[0]["id"], pending[1]["id"]
    _tab_to(page, f"accept-{first}")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    _tab_to(page, f"reason-{second}")
    page.keyboard.press("ArrowDown")  # the first reason of the list
    _tab_to(page, f"decline-{second}")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    answers = {
        p["id"]: p["answer"]
        for p in _api(base_url, "klinik", f"/regions/01/rounds/{published['id']}/proposals").json()["items"]
    }
    assert answers[first] == "accepted" and answers[second] == "declined"
    check_accessible(page)
    # The coordinator sees both answers, and the reason, on the round's page.
    page.context.clear_cookies()
    login(page, "samordnare")
    page.goto(f"/regions/01/rounds/{published['id']}")
    expect(page.locator("#answers")).to_contain_text("1 godtagna, 1 avböjda")
    table = page.locator("#rerun-form").inner_text()
    assert "godtagen" in table and "avböjd (Ingen handledare tillgänglig)" in table


def test_a_clinic_creates_publishes_and_withdraws_an_offer(page: Page, base_url: str) -> None:
    login(page, "klinik")
    page.click("text=Nytt erbjudande")
    check_accessible(page)
    page.fill("#f-id", "O-WEB-1")
    page.select_option("#f-profession", "nurse")
    page.fill("#f-start", "2027-03-01")
    page.fill("#f-months", "tre")
    page.click("button:has-text('Spara')")
    expect(page.locator("table.errors")).to_contain_text("months")
    expect(page.locator("#e-months-1")).to_contain_text("Ange ett heltal")  # and next to the field
    check_accessible(page)
    page.fill("#f-months", "3")
    page.click("button:has-text('Spara')")
    assert page.url.endswith("/regions/01/units/U001")
    row = page.locator("tr", has_text="O-WEB-1")
    expect(row).to_contain_text("utkast")
    page.click("button:has-text('Publicera O-WEB-1')")
    expect(page.locator("tr", has_text="O-WEB-1")).to_contain_text("publicerad")
    page.click("button:has-text('Dra tillbaka O-WEB-1')")
    expect(page.locator("tr", has_text="O-WEB-1")).to_contain_text("tillbakadragen")
    stored = _api(base_url, "klinik", "/regions/01/offers/O-WEB-1").json()
    assert stored["status"] == "withdrawn" and stored["unit_id"] == "U001"
    # Edit: the saved form is what the API reads back.
    page.click("a:has-text('O-WEB-1')")
    check_accessible(page)
    page.fill("#f-slots", "2")
    page.fill("#f-specialty", "akutsjukvård")
    page.click("button:has-text('Spara')")
    stored = _api(base_url, "klinik", "/regions/01/offers/O-WEB-1").json()
    assert stored["slots"] == 2 and stored["specialty"] == "akutsjukvård" and stored["version"] == 4
    # Another unit's offer cannot be created from a clinic's form: the API's reference check answers.
    page.goto("/regions/01/offers/new")
    page.fill("#f-id", "O-WEB-2")
    page.fill("#f-unit_id", "U002")
    page.select_option("#f-profession", "nurse")
    page.fill("#f-start", "2027-03-01")
    page.fill("#f-months", "3")
    page.click("button:has-text('Spara')")
    expect(page.locator("table.errors")).to_contain_text("unit_id")
    assert _api(base_url, "samordnare", "/regions/01/offers/O-WEB-2").status_code == 404


def test_a_clinic_adds_and_edits_a_supervisor(page: Page, base_url: str) -> None:
    login(page, "klinik")
    page.click("text=Ny handledare")
    assert page.locator("#f-licensed").is_checked()  # the engine's default
    page.fill("#f-id", "S-WEB-1")
    page.select_option("#f-profession", "physician")
    page.fill("#f-available_from", "2027-01-01")
    page.click("button:has-text('Spara')")
    expect(page.locator("tr", has_text="S-WEB-1")).to_contain_text("läkare")
    page.click("a:has-text('S-WEB-1')")
    page.fill("#f-capacity", "2")
    page.click("button:has-text('Spara')")
    stored = _api(base_url, "klinik", "/regions/01/supervisors/S-WEB-1").json()
    assert stored["capacity"] == 2 and stored["licensed"] is True and stored["unit_id"] == "U001"
    check_accessible(page)
