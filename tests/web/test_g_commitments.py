"""A clinic's commitments page: the accepted placements at its own unit with their follow-up, months, supervisor and
grant, and what supervision needs of each candidate; never who they are, nothing of other units."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from api.core.demo import FAMILY, GIVEN
from api.web.commitments import STATUSES
from tests.web.conftest import api_token, check_accessible, login, solved_round


def _api(base_url: str, user: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{base_url}/api/v1{path}", headers=api_token(base_url, user), timeout=60, **kw)


@pytest.fixture(scope="module")
def accepted(base_url: str) -> dict[str, int]:
    """A round of its own, published; the clinics of U001 and U002 each accept one proposal. The commitment ids."""
    body = solved_round(base_url, api_token(base_url, "samordnare"))
    published = _api(base_url, "samordnare", "POST", f"/regions/01/rounds/{body['id']}/publish")
    assert published.status_code == 200, published.text
    ids = {}
    for clinic, unit in (("klinik", "U001"), ("klinik2", "U002")):
        mine = _api(base_url, clinic, "GET", f"/regions/01/rounds/{body['id']}/proposals").json()["items"]
        assert mine, f"the demo round proposes placements to {unit}"
        # U001 accepts two when it can, so that its page has commitments of more than one status to filter.
        for index, proposal in enumerate(mine[: 2 if unit == "U001" else 1]):
            path = f"/regions/01/rounds/{body['id']}/proposals/{proposal['id']}/accept"
            answer = _api(base_url, clinic, "POST", path)
            assert answer.status_code == 200, answer.text
            found = _api(base_url, "samordnare", "GET", f"/regions/01/commitments?unit={unit}&limit=200").json()
            ids[unit + ("" if index == 0 else "b")] = next(
                c["id"] for c in found["items"] if c["proposal_id"] == proposal["id"]
            )
    return ids


def test_a_clinic_sees_its_units_commitments_and_their_follow_up(
    page: Page, base_url: str, accepted: dict[str, int]
) -> None:
    own, other = accepted["U001"], accepted["U002"]
    start = _api(base_url, "samordnare", "GET", f"/regions/01/commitments/{own}").json()["start"]
    followed = _api(
        base_url,
        "samordnare",
        "POST",
        f"/regions/01/commitments/{own}/follow-up",
        json={"status": "interrupted", "last_month": start},
    )
    assert followed.status_code == 200, followed.text

    login(page, "klinik")
    page.click("nav >> text=Åtaganden")
    assert page.url.endswith("/regions/01/units/U001/commitments")
    # The page shows exactly the commitments the API gives this clinic, every one at its own unit.
    api = _api(base_url, "klinik", "GET", "/regions/01/commitments?limit=200").json()["items"]
    assert {c["unit_id"] for c in api} == {"U001"} and own in {c["id"] for c in api}
    shown = {
        int(i.removeprefix("commitment-"))
        for i in page.locator("article[id^=commitment-]").evaluate_all("nodes => nodes.map(n => n.id)")
    }
    assert shown == {c["id"] for c in api} and other not in shown
    card = page.locator(f"#commitment-{own}")
    expect(card).to_contain_text(f"avbruten (sista månad {start[:7]})")
    commitment = next(c for c in api if c["id"] == own)
    expect(card).to_contain_text(commitment["supervisor_id"])
    expect(card).to_contain_text(commitment["candidate_id"])
    expect(card.locator("dt", has_text="Språknivå")).to_have_count(1)  # what supervision needs
    assert card.locator("a", has_text="Följ upp").count() == 0  # follow-up is the coordinator's
    html = page.content()
    units = _api(base_url, "samordnare", "GET", "/regions/01/units?limit=200").json()["items"]
    assert not [u["id"] for u in units if u["id"] != "U001" and re.search(rf"\b{re.escape(u['id'])}\b", html)]
    assert not re.search(r"\d{6,8}[-+]?\d{4}", html)  # no personnummer
    assert not [name for name in (*GIVEN, *FAMILY) if re.search(rf"\b{re.escape(name)}\b", html)]
    check_accessible(page)

    # Another unit's commitments are refused as the API refuses that unit.
    response = page.goto("/regions/01/units/U002/commitments")
    assert response is not None and response.status == 404
    assert _api(base_url, "klinik", "GET", "/regions/01/units/U002").status_code == 404
    assert _api(base_url, "klinik", "GET", f"/regions/01/commitments/{other}").status_code == 404


def test_a_coordinator_reads_a_units_commitments_with_the_follow_up_link(
    page: Page, base_url: str, accepted: dict[str, int]
) -> None:
    login(page, "samordnare")
    page.goto("/regions/01/units/U002/commitments")
    card = page.locator(f"#commitment-{accepted['U002']}")
    expect(card.locator("a", has_text=f"Följ upp {accepted['U002']}")).to_be_visible()
    assert page.locator(f"#commitment-{accepted['U001']}").count() == 0
    check_accessible(page)
    # The region's list refuses an unknown status as the unit's page does (it said "should match pattern ...").
    response = page.goto("/regions/01/commitments?status=finished")
    assert response is not None and response.status == 422
    expect(page.locator("[role=alert]")).to_contain_text("okänd status: använd en av accepted, started")


def _shown(page: Page) -> set[int]:
    ids = page.locator("article[id^=commitment-]").evaluate_all("nodes => nodes.map(n => n.id)")
    return {int(i.removeprefix("commitment-")) for i in ids}


def test_a_clinic_filters_its_commitments_by_status_without_seeing_more(
    page: Page, base_url: str, accepted: dict[str, int]
) -> None:
    assert "U001b" in accepted, "the demo round proposes two placements to U001"
    second = accepted["U001b"]
    if _api(base_url, "samordnare", "GET", f"/regions/01/commitments/{second}").json()["status"] == "accepted":
        started = _api(
            base_url, "samordnare", "POST", f"/regions/01/commitments/{second}/follow-up", json={"status": "started"}
        )
        assert started.status_code == 200, started.text
    api = _api(base_url, "klinik", "GET", "/regions/01/commitments?limit=200").json()["items"]
    assert {c["unit_id"] for c in api} == {"U001"}

    login(page, "klinik")
    page.goto("/regions/01/units/U001/commitments")
    options = page.locator("#status option")
    assert options.evaluate_all("nodes => nodes.map(n => n.value)") == ["", *STATUSES]
    expect(options.nth(STATUSES.index("not_started") + 1)).to_have_text("aldrig påbörjad")
    filled = set()
    for status in STATUSES:
        # The plain GET form, as a person submits it (no script involved).
        page.select_option("#status", status)
        page.click("form[role=search] button[type=submit]")
        assert page.url.endswith(f"/regions/01/units/U001/commitments?status={status}")
        expected = {c["id"] for c in api if c["status"] == status}
        assert _shown(page) == expected, status
        if expected:
            filled.add(status)
        else:
            expect(page.locator("main")).to_contain_text("Inga placeringar på enheten med den här statusen.")
    assert "started" in filled and len(filled) >= 2  # the filter really narrowed: more than one status was shown
    page.select_option("#status", "")
    page.click("form[role=search] button[type=submit]")
    assert _shown(page) == {c["id"] for c in api}
    page.goto("/regions/01/units/U001/commitments?status=started")
    check_accessible(page)

    # The filter narrows the clinic's own read and nothing else: another unit stays 404 with any status.
    for status in ("", "started", "accepted"):
        response = page.goto(f"/regions/01/units/U002/commitments?status={status}")
        assert response is not None and response.status == 404
    # An unknown status is a clear 422 naming the field and the rule, in Swedish and in English.
    response = page.goto("/regions/01/units/U001/commitments?status=finished")
    assert response is not None and response.status == 422
    expect(page.locator("[role=alert]")).to_contain_text("okänd status: använd en av accepted, started")
    expect(page.locator("table.errors tbody tr")).to_contain_text(["status"])
    expect(page.locator("table.errors tbody td").last).to_have_text("one_of")
    assert "finished" not in page.locator("main").inner_text()  # what was typed is not echoed
    page.click("button[name=lang]")
    expect(page.locator("[role=alert]")).to_contain_text("unknown status: use one of accepted, started")
