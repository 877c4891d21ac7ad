"""A coordinator's whole round in the browser: start with a policy, watch it solve, review, why-not, what-if,
pin and re-run, read the diff, publish."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.web.conftest import api_token, check_accessible, login, screenshot


def _wait_for_review(page: Page) -> None:
    # The live page polls with htmx and reloads itself when the round is done.
    expect(page.locator("#placements")).to_be_visible(timeout=90_000)


def _wait_for_reports(page: Page) -> None:
    # The reports are computed after solving (VARDMATCH_ANALYSIS_SECONDS=3 in the tests); the page says so until then.
    for _ in range(60):
        if page.locator("#h-prices").count():
            return
        page.wait_for_timeout(500)
        page.reload()
    raise AssertionError("the round's reports never appeared")


def test_a_coordinator_runs_reviews_reruns_and_publishes_a_round(page: Page, base_url: str) -> None:
    login(page, "samordnare")
    page.goto("/regions/01/rounds/new")
    check_accessible(page)
    page.fill("#name", "Webbomgång")
    page.fill("#time_limit_s", "8")
    page.select_option("#floor_group_0", "profession")
    page.fill("#floor_value_0", "nurse")
    page.fill("#floor_count_0", "1")
    page.click("button:has-text('Starta omgången')")
    assert re.search(r"/regions/01/rounds/\d+$", page.url)
    round_id = int(page.url.rsplit("/", 1)[1])
    # The live view: htmx polls the progress, and the page carries the points seen so far back on each poll,
    # so the gap line grows (two points or more) while the round solves. The solver reports its first gap once its
    # last phase starts (about halfway), and the line then grows with every heartbeat.
    expect(page.locator("#progress svg.chart")).to_have_count(2)
    for _ in range(120):
        line = page.locator("#progress polyline.gap-line")
        if line.count() and len((line.get_attribute("points") or "").split()) >= 2:
            break
        page.wait_for_timeout(250)
    else:
        raise AssertionError("the gap line never grew to two points")
    # The line starts at the first progress report, not at the first gap: before the solver has a solution and a
    # bound, the stretch from the first report on is drawn as "not known yet" and the gap line takes over from it.
    unknown = (page.locator("#progress polyline.gap-unknown").get_attribute("points") or "").split()
    known = (page.locator("#progress polyline.gap-line").get_attribute("points") or "").split()
    assert len(unknown) == 2 and float(unknown[0].split(",")[0]) < float(known[0].split(",")[0])
    assert unknown[1].split(",")[0] == known[0].split(",")[0]
    # The heading's status follows the polls too (it was "queued" when the page opened).
    expect(page.locator("#live-status")).to_have_text("löses")
    check_accessible(page)
    screenshot(page, "round-live")
    _wait_for_review(page)
    check_accessible(page)
    screenshot(page, "round-review")
    main = page.locator("main").inner_text()
    assert "Minst 1 av" in main  # the floor, in the objective statement, in Swedish
    assert "Förslag per enhet och yrke" in main and "Pengar per program" in main
    api = httpx.get(f"{base_url}/api/v1/regions/01/rounds/{round_id}", headers=api_token(base_url, "samordnare"))
    assert page.locator("#placements").inner_text() == str(api.json()["result"]["placements"])
    _wait_for_reports(page)
    prices = page.locator("#h-prices + ul li").all_inner_texts()
    assert prices and all("LP-uppskattning" in line or "Ingen gräns binder" in line for line in prices)
    assert page.locator("#h-fairness + .table-wrap tbody tr").count() > 0

    # A placed candidate's score breakdown adds up to the score the table shows.
    first = page.locator("#rerun-form tbody tr").first
    score = int(first.locator("td.num").nth(1).inner_text())
    first.locator("a").click()
    weighted = [int(t) for t in page.locator("tbody tr:not(:has(th)) td:nth-child(4)").all_inner_texts()]
    assert sum(weighted) == score
    check_accessible(page)
    page.go_back()

    # Why not: an unplaced candidate's cause and the smallest change.
    page.click("summary:has-text('Alla kandidater som inte placerades')")
    page.locator("#h-unmatched ~ details li a").first.click()
    eligible = int(re.sub(r"\D", "", page.locator("text=Behöriga erbjudanden").inner_text()))
    assert page.locator("ul.pins button[name=pin]").count() == min(eligible, 30)
    check_accessible(page)
    if page.locator("#why-not").count():
        # Not in the stored reports: computed as a job, whose page follows it to the answer.
        page.click("#why-not")
        assert "/jobs/" in page.url
        expect(page.locator("#cause")).to_be_visible(timeout=60_000)
        expect(page.locator("#change")).to_be_visible()
        check_accessible(page)
        page.go_back()
    else:
        expect(page.locator("#cause")).to_be_visible()
        expect(page.locator("#change")).to_be_visible()
    page.go_back()

    # What if: a bigger budget, before and after.
    programme = httpx.get(f"{base_url}/api/v1/regions/01/programmes", headers=api_token(base_url, "samordnare")).json()[
        "items"
    ][0]["id"]
    page.select_option("#target", "programme")
    page.fill("#target_id", programme)
    page.fill("#value", "20000000")
    page.fill("#wi_time", "3")
    page.click("#what-if")
    assert "/jobs/" in page.url  # a job: its page follows it (htmx) and shows before and after once it is done
    expect(page.locator("#before")).to_be_visible(timeout=60_000)
    assert int(page.locator("#after").inner_text()) >= int(page.locator("#before").inner_text())
    check_accessible(page)
    page.go_back()

    # Pin the first proposal and forbid the second, re-run, read the diff.
    pins = page.locator("input[name=pin]")
    pinned = pins.nth(0).get_attribute("value")
    forbidden = page.locator("input[name=forbid]").nth(1).get_attribute("value")
    pins.nth(0).check()
    page.locator("input[name=forbid]").nth(1).check()
    page.click("#rerun")
    rerun_id = int(page.url.rsplit("/", 1)[1])
    assert rerun_id != round_id
    _wait_for_review(page)
    assert page.locator(f"input[name=pin][value='{pinned}']").count() == 1  # the pinned pair is proposed again
    assert page.locator(f"input[name=pin][value='{forbidden}']").count() == 0  # the forbidden pair is not
    page.click("text=Vad som ändrats sedan omgång")
    expect(page.locator("#diff-summary")).to_contain_text("behöll sin plats")
    check_accessible(page)
    page.go_back()

    page.click("#publish")
    expect(page.locator("#round-status")).to_have_text("publicerad")
    check_accessible(page)


def test_a_round_can_be_cancelled_while_it_solves(page: Page, base_url: str) -> None:
    login(page, "samordnare")
    page.goto("/regions/01/rounds/new")
    page.fill("#time_limit_s", "60")
    page.click("button:has-text('Starta omgången')")
    round_id = int(page.url.rsplit("/", 1)[1])
    page.click("button:has-text('Avbryt omgången')")
    expect(page.locator("h1 .badge")).to_have_text("avbruten")
    check_accessible(page)
    api = httpx.get(f"{base_url}/api/v1/regions/01/rounds/{round_id}", headers=api_token(base_url, "samordnare"))
    assert api.json()["status"] == "cancelled"


def test_a_bad_policy_is_shown_in_the_form_and_nothing_starts(page: Page, base_url: str) -> None:
    login(page, "samordnare")
    page.goto("/regions/01/rounds/new")
    page.fill("#time_limit_s", "100000")
    page.click("button:has-text('Starta omgången')")
    expect(page.locator("table.errors")).to_contain_text("time_limit_s")
    check_accessible(page)
