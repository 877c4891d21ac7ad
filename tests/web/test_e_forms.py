"""The coordinator's forms for units, candidates and programmes, the commitments follow-up, the admin's deactivation
of a user, and the pages of the jobs a round's checks start; with what each role may and may not see on them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from api.core.demo import FAMILY, GIVEN
from tests.web.conftest import USERS, api_token, check_accessible, login, screenshot, solved_round

PERSONNUMMER = re.compile(r"\b(19|20)?\d{6}[-+]?\d{4}\b")


def _api(base_url: str, user: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{base_url}/api/v1{path}", headers=api_token(base_url, user), timeout=60, **kw)


def _tab_to(page: Page, element_id: str, limit: int = 300) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


@pytest.fixture
def own_programme(base_url: str) -> Iterator[dict[str, Any]]:
    """A programme of the test's own (a copy of the demo's first, with 1,000 SEK), deleted afterwards: the demo's
    programmes, which other tests' rounds spend, stay as they were."""
    first = _api(base_url, "samordnare", "GET", "/regions/01/programmes").json()["items"][0]
    read_only = ("region", "version", "updated_at", "archived_at")
    body = {**{k: v for k, v in first.items() if k not in read_only}, "id": "P-WEB-FORM", "budget": 1000}
    created = _api(base_url, "samordnare", "POST", "/regions/01/programmes", json=body)
    assert created.status_code == 201, created.text
    yield created.json()
    assert _api(base_url, "samordnare", "DELETE", "/regions/01/programmes/P-WEB-FORM").status_code == 200


@pytest.fixture
def restored_unit(base_url: str) -> Iterator[str]:
    """The demo unit U002, given back its name afterwards."""
    name = _api(base_url, "samordnare", "GET", "/regions/01/units/U002").json()["name"]
    yield "U002"
    assert _api(base_url, "samordnare", "PATCH", "/regions/01/units/U002", json={"name": name}).status_code == 200


def test_a_coordinator_edits_a_programme_with_errors_next_to_the_fields(
    page: Page, base_url: str, own_programme: dict[str, Any]
) -> None:
    login(page, "samordnare")
    programme = own_programme
    page.goto("/regions/01/programmes?q=P-WEB-FORM")
    page.click(f"a:has-text('{programme['id']}')")
    check_accessible(page)
    page.fill("#f-budget", "mycket")
    page.fill("#f-earmarks-0-id", "E-WEB")
    page.fill("#f-earmarks-0-amount", "-5")
    page.click("button:has-text('Spara')")
    # Each problem next to its field, in Swedish, tied to the field for screen readers; nothing written.
    expect(page.locator("#e-budget-1")).to_contain_text("Ange ett heltal")
    assert page.locator("#f-budget").get_attribute("aria-describedby") == "e-budget-1"
    expect(page.locator("#e-earmarks-0-amount-1")).to_contain_text("Ange minst 0")
    check_accessible(page)
    screenshot(page, "programme-form")
    assert _api(base_url, "samordnare", "GET", f"/regions/01/programmes/{programme['id']}").json() == programme
    page.fill("#f-budget", str(programme["budget"] + 1_000_000))
    page.fill("#f-earmarks-0-amount", "250000")
    page.fill("#f-earmarks-0-professions", "nurse")
    page.fill("#f-unit_caps-small", "70000")
    page.check("#f-professions-nurse")
    page.check("#f-professions-physician")
    page.click("button:has-text('Spara')")
    assert page.url.endswith("/regions/01/programmes")
    stored = _api(base_url, "samordnare", "GET", f"/regions/01/programmes/{programme['id']}").json()
    assert stored["budget"] == programme["budget"] + 1_000_000
    assert stored["earmarks"] == [{"id": "E-WEB", "amount": 250000, "professions": ["nurse"], "offer_kinds": []}]
    assert stored["unit_caps"]["small"] == 70000
    assert set(stored["professions"]) == {*programme["professions"], "nurse", "physician"}
    assert stored["version"] == programme["version"] + 1
    # Every new form refuses a post without this browser's CSRF token, and writes nothing.
    for path in ("/regions/01/programmes/new", f"/regions/01/programmes/{programme['id']}", "/regions/01/units/new"):
        assert page.request.post(path, form={"id": "P-CSRF", "budget": "1"}).status == 403, path
    assert page.request.post("/regions/01/commitments/1", form={"status": "started"}).status == 403
    assert page.request.post("/regions/01/rounds/1/stable", form={"seconds": "1"}).status == 403
    assert _api(base_url, "samordnare", "GET", "/regions/01/programmes/P-CSRF").status_code == 404
    # Emptying the earmark's row removes it (the form is the whole programme).
    page.click(f"a:has-text('{programme['id']}')")
    for column in ("id", "amount", "professions"):
        page.fill(f"#f-earmarks-0-{column}", "")
    page.click("button:has-text('Spara')")
    assert _api(base_url, "samordnare", "GET", f"/regions/01/programmes/{programme['id']}").json()["earmarks"] == []


def test_a_coordinator_edits_a_unit_by_keyboard_and_creates_a_candidate_without_identity(
    page: Page, base_url: str, restored_unit: str
) -> None:
    login(page, "samordnare")
    page.goto("/regions/01/units/U002")
    page.click("text=Ändra enheten")
    check_accessible(page)
    _tab_to(page, "f-name")
    page.keyboard.press("Control+a")
    page.keyboard.type("Vårdcentral Webb")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/regions/01/units/U002")
    expect(page.locator("h1")).to_contain_text("Vårdcentral Webb")
    check_accessible(page)
    assert _api(base_url, "samordnare", "GET", "/regions/01/units/U002").json()["name"] == "Vårdcentral Webb"

    page.goto("/regions/01/candidates/new")
    check_accessible(page)
    page.fill("#f-id", "C-WEB-1")
    page.select_option("#f-profession", "nurse")
    page.select_option("#f-cefr", "B2")
    page.fill("#f-residence_county", "01")
    page.fill("#f-residence_municipality", "0180")
    page.fill("#f-available_from", "2027-02-01")
    page.fill("#f-ready_since", "2026-06-01")
    page.fill("#f-ladder-theory_test", "2026-05-01")
    page.fill("#f-wishes", "U002, NO-SUCH-OFFER")
    page.click("button:has-text('Spara')")
    expect(page.locator("#e-wishes-1")).to_contain_text("inget sådant erbjudande eller enhet i regionen")
    page.fill("#f-wishes", "U002")
    page.click("button:has-text('Spara')")
    assert page.url.endswith("/regions/01/candidates")
    stored = _api(base_url, "samordnare", "GET", "/regions/01/candidates/C-WEB-1").json()
    assert stored["wishes"] == ["U002"] and stored["ladder"]["theory_test"] == "2026-05-01"
    # The form is the whole candidate: a date emptied on it is gone (not kept from before).
    page.goto("/regions/01/candidates/C-WEB-1")
    page.fill("#f-ladder-theory_test", "")
    page.click("button:has-text('Spara')")
    stored = _api(base_url, "samordnare", "GET", "/regions/01/candidates/C-WEB-1").json()
    assert stored["ladder"]["theory_test"] is None and stored["wishes"] == ["U002"] and stored["version"] == 2
    # Entered for the test only: removed, so that the region's candidates (listed and placed by other tests) are the
    # demo's again.
    assert _api(base_url, "samordnare", "DELETE", "/regions/01/candidates/C-WEB-1").json()["outcome"] == "deleted"
    # An existing candidate's form: profile and wishes, never who they are.
    demo = _api(base_url, "samordnare", "GET", "/regions/01/candidates?limit=1").json()["items"][0]["id"]
    identity = _api(base_url, "samordnare", "GET", f"/regions/01/candidates/{demo}/identity").json()
    page.goto(f"/regions/01/candidates/{demo}")
    html = page.content()
    assert identity["given_name"] not in html and identity["family_name"] not in html
    assert not PERSONNUMMER.search(html) and not [n for n in (*GIVEN, *FAMILY) if n in html]
    assert page.locator("input[name*=personnummer], input[name*=identity]").count() == 0
    check_accessible(page)


def test_a_clinic_gets_the_apis_refusals_for_other_units_and_coordinator_forms(page: Page, base_url: str) -> None:
    login(page, "klinik")
    proposed = _api(base_url, "samordnare", "GET", "/regions/01/candidates?limit=1").json()["items"][0]["id"]
    cases = {
        "/regions/01/units/U001/edit": ("PATCH", "/regions/01/units/U001", 403),
        "/regions/01/units/U002/edit": ("PATCH", "/regions/01/units/U002", 404),
        "/regions/01/units/new": ("POST", "/regions/01/units", 403),
        "/regions/01/candidates/new": ("POST", "/regions/01/candidates", 403),
        f"/regions/01/candidates/{proposed}": ("PATCH", f"/regions/01/candidates/{proposed}", None),
        "/regions/01/programmes/new": ("POST", "/regions/01/programmes", 403),
        "/regions/01/commitments": ("GET", "/regions/01/books", 403),
    }
    for path, (method, api_path, status) in cases.items():
        api = _api(base_url, "klinik", method, api_path, json={})
        response = page.goto(path)
        assert response is not None, path
        assert response.status == (status or api.status_code) and response.status in (403, 404), path
        if status is not None and method != "GET":
            assert api.status_code in (status, 422), (path, api.status_code)
        html = page.content()
        # The refusal page shows no field of the object asked for.
        assert 'name="csrf"' not in html.split("<main", 1)[1] and "<form" not in html.split("<main", 1)[1], path
    page.goto("/regions/01/units/U001")
    assert page.locator("text=Ändra enheten").count() == 0


@pytest.fixture(scope="module")
def commitment(base_url: str) -> dict[str, Any]:
    """A round solved and published through the API, one of its proposals accepted by the clinic of U002."""
    headers = api_token(base_url, "samordnare")
    body = solved_round(base_url, headers)
    published = httpx.post(f"{base_url}/api/v1/regions/01/rounds/{body['id']}/publish", headers=headers, timeout=60)
    assert published.status_code == 200, published.text
    mine = _api(base_url, "klinik2", "GET", f"/regions/01/rounds/{body['id']}/proposals").json()["items"]
    assert mine, "the demo round proposes placements to U002"
    accepted = _api(base_url, "klinik2", "POST", f"/regions/01/rounds/{body['id']}/proposals/{mine[0]['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    found = _api(base_url, "samordnare", "GET", "/regions/01/commitments?unit=U002&status=accepted").json()["items"]
    return {"round": body, **next(c for c in found if c["proposal_id"] == mine[0]["id"])}


def test_a_coordinator_follows_up_a_commitment(page: Page, base_url: str, commitment: dict[str, Any]) -> None:
    login(page, "samordnare")
    page.click("#follow-up-link")
    page.wait_for_url("**/regions/01/commitments")
    check_accessible(page)
    page.select_option("#status", "accepted")
    page.fill("#unit", "U002")
    page.click("button:has-text('Filtrera')")
    page.click(f"a:has-text('Följ upp {commitment['id']}')")
    expect(page.locator("#commitment-status")).to_have_text("godtagen")
    check_accessible(page)
    page.select_option("#status", "interrupted")
    page.click("#record")
    expect(page.locator("#e-last_month-1")).to_contain_text("en avbruten placering behöver sin sista månad")
    assert page.locator("#last_month").get_attribute("aria-invalid") == "true"
    check_accessible(page)
    page.select_option("#status", "interrupted")
    page.fill("#last_month", commitment["start"])
    page.fill("#paid", str(commitment["grant"] + 1))
    page.click("#record")
    expect(page.locator("#e-paid-1")).to_contain_text(f"är mer än bidraget {commitment['grant']}")
    stored = _api(base_url, "samordnare", "GET", f"/regions/01/commitments/{commitment['id']}").json()
    assert stored["status"] == "accepted" and stored["version"] == commitment["version"]  # nothing written
    page.select_option("#status", "interrupted")
    page.fill("#last_month", commitment["start"])
    page.fill("#paid", "1000")
    page.click("#record")
    expect(page.locator("#commitment-status")).to_have_text("avbruten")
    screenshot(page, "commitment")
    stored = _api(base_url, "samordnare", "GET", f"/regions/01/commitments/{commitment['id']}").json()
    assert stored["status"] == "interrupted" and stored["paid"] == 1000 and stored["held_months"] == 1
    assert page.locator("#c-released").inner_text().replace(
        "\u00a0", " "
    ) == f"{commitment['grant'] - 1000:,} kr".replace(",", " ")


def test_the_checks_of_a_round_run_as_jobs_whose_pages_follow_them(
    page: Page, base_url: str, commitment: dict[str, Any]
) -> None:
    round_id = commitment["round"]["id"]
    login(page, "samordnare")
    page.goto(f"/regions/01/rounds/{round_id}")
    page.fill("#stable_seconds", "2")
    page.click("#stable")
    assert re.search(rf"/regions/01/rounds/{round_id}/jobs/\d+$", page.url)
    stable_url = page.url
    check_accessible(page)  # while it runs (or, on a fast machine, already with its result)
    # The page follows the job (htmx polls it) and shows the result without being reloaded by hand.
    expect(page.locator("#stable-summary li").first).to_contain_text("Uppskjuten acceptans placerar", timeout=60_000)
    check_accessible(page)
    page.goto(f"/regions/01/rounds/{round_id}")
    page.click("#reproduce")
    expect(page.locator("#identical")).to_be_visible(timeout=60_000)
    check_accessible(page)
    job_id = int(stable_url.rsplit("/", 1)[1])
    api = _api(base_url, "samordnare", "GET", f"/jobs/{job_id}").json()
    assert api["status"] == "succeeded" and api["kind"] == "stable"
    assert str(api["result"]["rows"][0]["placements"]) in page.context.request.get(stable_url).text()
    # A job under another round's address, or a job no page shows (the round's own solve), is not found.
    assert page.request.get(stable_url.replace(f"/rounds/{round_id}/", f"/rounds/{round_id + 1000}/")).status == 404
    solve_job = commitment["round"]["job_id"]
    assert page.request.get(f"/regions/01/rounds/{round_id}/jobs/{solve_job}").status == 404
    # A clinic gets the API's refusal.
    page.context.clear_cookies()
    login(page, "klinik2")
    assert page.request.get(stable_url).status == _api(base_url, "klinik2", "GET", f"/jobs/{job_id}").status_code


def test_an_admin_deactivates_and_reactivates_a_user(browser: Browser, page: Page, base_url: str) -> None:
    created = _api(
        base_url,
        "admin",
        "POST",
        "/users",
        json={
            "username": "tillfallig",
            "password": "ett-langt-losenord",
            "role": "clinic",
            "region": "01",
            "unit": "U002",
        },
    )
    assert created.status_code == 201, created.text
    USERS["tillfallig"] = "ett-langt-losenord"
    other = browser.new_context(base_url=base_url)
    theirs = other.new_page()
    login(theirs, "tillfallig")
    token = api_token(base_url, "tillfallig")
    login(page, "admin")
    page.goto("/admin/users")
    page.click("#deactivate-tillfallig")
    expect(page.locator("tr", has_text="tillfallig")).to_contain_text("nej")
    check_accessible(page)
    # Their open session, their token and a new login all stop working.
    theirs.goto("/regions/01/units/U002")
    assert "/login" in theirs.url
    assert httpx.get(f"{base_url}/api/v1/me", headers=token).status_code == 401
    theirs.fill("#username", "tillfallig")
    theirs.fill("#password", "ett-langt-losenord")
    theirs.click("button[type=submit].primary")
    expect(theirs.locator(".error")).to_have_text("Fel användarnamn eller lösenord.")
    page.click("#reactivate-tillfallig")
    expect(page.locator("tr", has_text="tillfallig")).to_contain_text("ja")
    login(theirs, "tillfallig")
    assert theirs.url.endswith("/regions/01/units/U002")
    assert httpx.get(f"{base_url}/api/v1/me", headers=token).status_code == 401  # the old token stays dead
    other.close()
    # An admin has no button to deactivate themselves.
    assert page.locator("#deactivate-admin").count() == 0
