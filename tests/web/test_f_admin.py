"""The admin changes a user's role and scope on the users page: refusals next to the field, the user's open session
and old token end, a new login lands on the new scope's pages; the last active admin cannot demote themselves."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import USERS, api_token, check_accessible, login


def test_an_admin_makes_a_coordinator_a_clinic_user(browser: Browser, page: Page, base_url: str) -> None:
    name, password = "flyttas", "ett-annat-langt-losenord"
    body = {"username": name, "password": password, "role": "coordinator", "region": "01"}
    created = httpx.post(f"{base_url}/api/v1/users", json=body, headers=api_token(base_url, "admin"), timeout=30)
    assert created.status_code == 201, created.text
    USERS[name] = password
    theirs = browser.new_context(base_url=base_url).new_page()
    login(theirs, name)
    old_token = api_token(base_url, name)
    assert httpx.get(f"{base_url}/api/v1/regions/01/programmes", headers=old_token).json()["items"]

    login(page, "admin")
    page.goto("/admin/users")
    page.click(f"#scope-{name}")
    expect(page.locator("h1")).to_contain_text(name)
    check_accessible(page)
    # A clinic user without a unit is refused next to the unit field, and nothing changes.
    page.select_option("#role", "clinic")
    page.click("#save-scope")
    expect(page.locator("#unit")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field-error")).to_contain_text("klinikanvändare behöver en enhet")
    check_accessible(page)
    assert httpx.get(f"{base_url}/api/v1/me", headers=old_token).json()["role"] == "coordinator"
    page.fill("#unit", "U002")
    page.click("#save-scope")
    expect(page.locator("tr", has_text=name)).to_contain_text("U002")

    # Their session and token ended; a new login has the clinic's rights only.
    theirs.goto("/regions/01")
    assert "/login" in theirs.url
    assert httpx.get(f"{base_url}/api/v1/regions/01/programmes", headers=old_token).status_code == 401
    login(theirs, name)
    assert theirs.url.endswith("/regions/01/units/U002")
    me = httpx.get(f"{base_url}/api/v1/me", headers=api_token(base_url, name)).json()
    assert (me["role"], me["region"], me["unit"]) == ("clinic", "01", "U002")
    theirs.context.close()


def test_the_last_active_admin_cannot_demote_themselves_on_the_page(page: Page, base_url: str) -> None:
    login(page, "admin")
    page.goto("/admin/users")
    page.click("#scope-admin")
    page.select_option("#role", "coordinator")
    page.select_option("#region", "01")
    page.click("#save-scope")
    expect(page.locator(".field-error")).to_contain_text("den sista aktiva administratören kan inte degraderas")
    check_accessible(page)
    assert httpx.get(f"{base_url}/api/v1/me", headers=api_token(base_url, "admin")).json()["role"] == "admin"
