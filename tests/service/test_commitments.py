"""Commitments over real HTTP: an accepted placement holds its grant and its supervisor's months in every later
round; follow-up releases them; the books add up; nothing ever leaves a limit exceeded.

Region 07 (below): one programme P1 of 3 x 204,000 SEK with a cap of 2 x 204,000 per medium unit; unit U1 with
supervisor S1 (two seats) and offer O1 (three slots), unit U2 with S2 (one seat) and O2 (two slots); five physicians.
Every pair is a six-month PTJ from March 2027 costing 204,000 SEK, paid in full.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from openpyxl import load_workbook

from api.core.services import CLINIC_CANDIDATE_FIELDS
from matching.input.instance import Instance
from matching.input.months import month_index
from matching.input.validate import load_instance
from matching.model.solution import Solution
from matching.reports.verify import verify
from matching.solvers.solve import solve
from tests.factories import candidate, instance_dict, offer, programme, supervisor, unit
from tests.service.conftest import Service
from tests.service.helpers import add_region

GRANT = 6 * (30_000 + 4_000)
REGION = "07"
BASE = f"/regions/{REGION}"


def region_07() -> Instance:
    return load_instance(
        instance_dict(
            candidates=[candidate(f"C{i}") for i in range(1, 6)],
            units=[unit("U1"), unit("U2")],
            supervisors=[supervisor("S1", capacity=2), supervisor("S2", unit_id="U2")],
            offers=[offer("O1", slots=3), offer("O2", unit_id="U2", supervisors=("S2",), slots=2)],
            programmes=[programme(budget=3 * GRANT, unit_caps={"medium": 2 * GRANT})],
        )
    )


@pytest.fixture(scope="module")
def region(service: Service) -> Iterator[Service]:
    """Region 07 with a coordinator and a clinic user at each unit."""
    users = {"coord07": None, "clinic07_u1": "U1", "clinic07_u2": "U2"}
    add_region(service, REGION, region_07(), users, name="Region Åtagande")
    yield service


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def run_round(service: Service, key: str, **body: Any) -> dict[str, Any]:
    payload = {"round_date": "2027-01-15", "time_limit_s": 5, "seed": 1, **body}
    created = _ok(
        service.call("coord07", "POST", f"{BASE}/rounds", json=payload, headers={"Idempotency-Key": key}), 202
    )
    done = service.wait_round("coord07", REGION, created["id"])
    assert done["status"] == "solved", done
    return done


def proposals(service: Service, round_id: int, user: str = "coord07") -> list[dict[str, Any]]:
    return _ok(service.call(user, "GET", f"{BASE}/rounds/{round_id}/proposals"))["items"]


def snapshot(service: Service, round_id: int) -> Instance:
    return Instance.model_validate(_ok(service.call("coord07", "GET", f"{BASE}/rounds/{round_id}/snapshot")))


def stored_solution(service: Service, round_id: int) -> Solution:
    """The round's proposals as a solution (what `verify` checks)."""
    round_view = _ok(service.call("coord07", "GET", f"{BASE}/rounds/{round_id}"))
    assignments = [
        {
            "candidate_id": p["candidate_ref"],
            "offer_id": p["offer_ref"],
            "supervisor_id": p["supervisor_ref"],
            "programme_id": p["programme_ref"],
            "earmark_id": p["earmark_ref"],
            "start": p["start"],
            "months": p["months"],
            "total_cost": p["total_cost"],
            "grant": p["grant"],
            "unit_share": p["unit_share"],
            "score": p["score"],
            "breakdown": p["breakdown"],
        }
        for p in proposals(service, round_id)
    ]
    summary = {k: v for k, v in (round_view["result"] or {}).items() if k in Solution.model_fields}
    return Solution.model_validate({**summary, "assignments": assignments})


def answer(service: Service, round_id: int, proposal: dict[str, Any], accept: bool) -> Any:
    user = "clinic07_u1" if proposal["offer_ref"] == "O1" else "clinic07_u2"
    verb = "accept" if accept else "decline"
    return service.call(user, "POST", f"{BASE}/rounds/{round_id}/proposals/{proposal['id']}/{verb}")


def limits_hold(instance: Instance, solution: Solution) -> None:
    """Proposals plus commitments within budget, unit cap and every supervisor month: counted here, by hand."""
    spent = sum(a.grant for a in solution.assignments) + sum(c.grant for c in instance.commitments)
    assert spent <= instance.programmes[0].budget
    per_unit: dict[str, int] = defaultdict(int)
    load: dict[tuple[str, int], int] = defaultdict(int)
    unit_of = {o.id: o.unit_id for o in instance.offers}
    for a in solution.assignments:
        per_unit[unit_of[a.offer_id]] += a.grant
        for m in range(month_index(a.start), month_index(a.start) + a.months):
            load[(a.supervisor_id, m)] += 1
    for c in instance.commitments:
        per_unit[c.unit_id] += c.grant
        for m in range(month_index(c.start), month_index(c.start) + c.months):
            load[(c.supervisor_id or "", m)] += 1
    assert max(per_unit.values(), default=0) <= 2 * GRANT
    capacity = {s.id: s.capacity for s in instance.supervisors}
    assert all(n <= capacity[sid] for (sid, _), n in load.items())


def test_an_accepted_placement_holds_its_money_and_supervisor_in_later_rounds(region: Service) -> None:
    service = region
    first = run_round(service, "k-1")
    assert first["result"]["placements"] == 3  # money for three: two at O1 (S1's two seats), one at O2
    _ok(service.call("coord07", "POST", f"{BASE}/rounds/{first['id']}/publish"))
    at_o1 = next(p for p in proposals(service, first["id"]) if p["offer_ref"] == "O1")
    accepted = _ok(answer(service, first["id"], at_o1, True))
    assert accepted["answer"] == "accepted"

    # The commitment: visible to the coordinator and to U1's clinic, not to U2's.
    [commitment] = _ok(service.call("coord07", "GET", f"{BASE}/commitments"))["items"]
    assert (commitment["candidate_id"], commitment["supervisor_id"], commitment["held"]) == (
        at_o1["candidate_ref"],
        "S1",
        GRANT,
    )
    assert [c["id"] for c in _ok(service.call("clinic07_u1", "GET", f"{BASE}/commitments"))["items"]] == [
        commitment["id"]
    ]
    assert _ok(service.call("clinic07_u2", "GET", f"{BASE}/commitments"))["items"] == []
    assert service.call("clinic07_u2", "GET", f"{BASE}/commitments/{commitment['id']}").status_code == 404

    # The next round counts it: 2 x 204,000 left in P1, one seat of S1, 204,000 of U1's cap.
    second = run_round(service, "k-2")
    instance = snapshot(service, second["id"])
    [held] = instance.commitments
    assert (held.programme_id, held.supervisor_id, held.grant, held.months) == ("P1", "S1", GRANT, 6)
    solution = stored_solution(service, second["id"])
    assert verify(instance, solution) == []
    limits_hold(instance, solution)
    assert second["result"]["placements"] == 2
    money = second["result"]["money"][0]
    assert (money["committed"], money["granted"], money["left"]) == (GRANT, 2 * GRANT, 0)

    # verify fails when the commitment is left out of the solve: the forgetful answer overdraws P1 and S1.
    forgetful = solve(instance.model_copy(update={"commitments": ()}))
    assert forgetful.placements == 3
    broken = {v.rule for v in verify(instance, forgetful)}
    assert "budget" in broken and "supervisor_capacity" in broken


def test_acceptance_after_a_later_round_used_the_money_makes_that_round_outdated(region: Service) -> None:
    service = region
    published = _ok(service.call("coord07", "GET", f"{BASE}/rounds", params={"status": "published"}))["items"][0]
    later = run_round(service, "k-3")  # solved with one commitment; uses the rest of the money
    assert later["result"]["placements"] == 2
    # Meanwhile the clinic of U2 accepts a still pending proposal of the published round.
    pending = next(
        p for p in proposals(service, published["id"]) if p["answer"] == "pending" and p["offer_ref"] == "O2"
    )
    _ok(answer(service, published["id"], pending, True))
    # The later round no longer fits beside it: publishing it is refused, with the reason.
    refused = service.call("coord07", "POST", f"{BASE}/rounds/{later['id']}/publish")
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith(":round-outdated")
    # A re-run sees both commitments and can be published.
    rerun = _ok(
        service.call(
            "coord07", "POST", f"{BASE}/rounds/{later['id']}/rerun", json={}, headers={"Idempotency-Key": "k-4"}
        ),
        202,
    )
    rerun = service.wait_round("coord07", REGION, rerun["id"])
    instance = snapshot(service, rerun["id"])
    assert len(instance.commitments) == 2
    solution = stored_solution(service, rerun["id"])
    assert verify(instance, solution) == []
    limits_hold(instance, solution)
    _ok(service.call("coord07", "POST", f"{BASE}/rounds/{rerun['id']}/publish"))


def test_limits_cannot_be_cut_below_what_is_committed(region: Service) -> None:
    service = region
    cut = service.call("coord07", "PATCH", f"{BASE}/programmes/P1", json={"budget": GRANT})
    assert cut.status_code == 409, cut.text
    assert cut.json()["type"].endswith(":limits-below-commitments")
    assert "budget" in cut.json()["detail"]
    seats = service.call("clinic07_u1", "PATCH", f"{BASE}/supervisors/S1", json={"capacity": 0})
    assert seats.status_code == 409
    leaves = service.call("clinic07_u1", "PATCH", f"{BASE}/supervisors/S1", json={"available_until": "2027-04-30"})
    assert leaves.status_code == 409
    caps = service.call("coord07", "PATCH", f"{BASE}/programmes/P1", json={"unit_caps": {"medium": 1000}})
    assert caps.status_code == 409
    # Nothing was written.
    assert _ok(service.call("coord07", "GET", f"{BASE}/programmes/P1"))["budget"] == 3 * GRANT
    assert _ok(service.call("coord07", "GET", f"{BASE}/supervisors/S1"))["capacity"] == 2
    # Raising a limit is always fine.
    assert service.call("coord07", "PATCH", f"{BASE}/programmes/P1", json={"budget": 3 * GRANT + 1}).status_code == 200
    assert service.call("coord07", "PATCH", f"{BASE}/programmes/P1", json={"budget": 3 * GRANT}).status_code == 200


def test_follow_up_releases_money_and_months_and_the_books_add_up(region: Service) -> None:
    service = region
    rows = _ok(service.call("coord07", "GET", f"{BASE}/commitments"))["items"]
    at_o1 = next(c for c in rows if c["unit_id"] == "U1")
    url = f"{BASE}/commitments/{at_o1['id']}/follow-up"
    # Clinics read, coordinators record.
    assert service.call("clinic07_u1", "POST", url, json={"status": "started"}).status_code == 403
    started = _ok(service.call("coord07", "POST", url, json={"status": "started"}))
    assert started["status"] == "started"
    # Bad follow-up names the field and the rule; nothing changes.
    bad = service.call("coord07", "POST", url, json={"status": "interrupted"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "last_month"
    early = service.call("coord07", "POST", url, json={"status": "interrupted", "last_month": "2026-12-01"})
    assert early.status_code == 422 and early.json()["errors"][0]["type"] == "within_placement"
    over = service.call(
        "coord07", "POST", url, json={"status": "interrupted", "last_month": "2027-04-10", "paid": GRANT + 1}
    )
    assert over.status_code == 422 and over.json()["errors"][0]["type"] == "paid_within_grant"
    back = service.call("coord07", "POST", url, json={"status": "accepted"})
    assert back.status_code == 422  # not a follow-up status at all
    # Interrupted after March and April, 68,000 SEK paid: the rest of the money and S1 from May are free again.
    done = _ok(
        service.call("coord07", "POST", url, json={"status": "interrupted", "last_month": "2027-04-10", "paid": 68_000})
    )
    assert (done["held"], done["held_months"], done["released"]) == (68_000, 2, GRANT - 68_000)
    assert service.call("coord07", "POST", url, json={"status": "completed"}).status_code == 409
    # The coordinator's note is for the region's books: the unit's clinic reads the commitment without it.
    _ok(service.call("coord07", "POST", url, json={"note": "samtal med handledaren 2027-04-12"}))
    assert _ok(service.call("coord07", "GET", f"{BASE}/commitments/{at_o1['id']}"))["note"]
    for read in (f"{BASE}/commitments/{at_o1['id']}", f"{BASE}/commitments"):
        body = _ok(service.call("clinic07_u1", "GET", read))
        assert [c["note"] for c in body.get("items", [body])] == [None]
    books = _ok(service.call("coord07", "GET", f"{BASE}/books", params={"as_of": "2027-02-01"}))
    [p1] = books["programmes"]
    assert p1["budget"] == p1["committed"] + p1["left"]
    assert p1["granted"] == p1["committed"] + p1["released"]
    assert p1["committed"] == p1["paid"] + p1["outstanding"]
    assert p1["paid"] == 68_000 and p1["released"] == GRANT - 68_000
    assert sum(m["planned"] for m in books["months"]) == p1["committed"]
    assert sum(u["committed"] for u in books["units"]) == p1["committed"]
    assert books["totals"]["left"] == p1["left"]
    # The next round may use what was released: S1 again from May, the money left.
    instance = snapshot(service, run_round(service, "k-5")["id"])
    held = {c.supervisor_id: c for c in instance.commitments}
    assert held["S1"].months == 2 and held["S1"].grant == 68_000


def test_books_and_round_results_export_for_spreadsheets(region: Service) -> None:
    service = region
    xlsx = service.call("coord07", "GET", f"{BASE}/books/export", params={"format": "xlsx", "as_of": "2027-02-01"})
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["Program", "Öronmärkningar", "Enheter", "Månader"]
    header = [c.value for c in book["Program"][1]]
    values = dict(zip(header, [c.value for c in book["Program"][2]], strict=True))
    assert values["Program"] == "P1" and isinstance(values["Budget"], int) and values["Budget"] == 3 * GRANT
    assert values["Budget"] == values["Åtaget"] + values["Kvar"]
    text = service.call("coord07", "GET", f"{BASE}/books/export", params={"format": "csv", "table": "months"})
    rows = list(csv.DictReader(io.StringIO(text.content.decode("utf-8-sig"))))
    assert rows and set(rows[0]) == {"Program", "Månad", "Planerat", "Ackumulerat"}
    english = service.call("coord07", "GET", f"{BASE}/books/export", params={"format": "csv", "lang": "en"})
    assert english.content.decode("utf-8-sig").startswith("programme_id,name,status,budget,granted,committed")
    # Only coordinators see the books.
    assert service.call("clinic07_u1", "GET", f"{BASE}/books").status_code == 403
    assert service.call("coord01", "GET", f"{BASE}/books").status_code == 404

    published = _ok(service.call("coord07", "GET", f"{BASE}/rounds", params={"status": "published"}))["items"][0]
    export = service.call(
        "coord07", "GET", f"{BASE}/rounds/{published['id']}/proposals/export", params={"format": "xlsx"}
    )
    sheet = load_workbook(io.BytesIO(export.content))["Förslag"]
    header = [c.value for c in sheet[1]]
    assert header == [
        "Kandidat", "Enhet", "Erbjudande", "Handledare", "Program", "Öronmärkning", "Start", "Månader",
        "Total kostnad", "Bidrag", "Enhetens andel", "Poäng", "Svar",
    ]  # fmt: skip
    lines = [dict(zip(header, [c.value for c in r], strict=True)) for r in sheet.iter_rows(min_row=2)]
    assert len(lines) == len(proposals(service, published["id"]))
    assert all(r["Bidrag"] + r["Enhetens andel"] == r["Total kostnad"] for r in lines)
    # A clinic's export holds its own unit's proposals only.
    mine = service.call(
        "clinic07_u2",
        "GET",
        f"{BASE}/rounds/{published['id']}/proposals/export",
        params={"format": "csv", "lang": "en"},
    )
    units = {r["unit"] for r in csv.DictReader(io.StringIO(mine.content.decode("utf-8-sig")))}
    assert units <= {"U2"}


def test_outlook_per_profession_and_month(region: Service) -> None:
    service = region
    body = _ok(service.call("coord07", "GET", f"{BASE}/outlook", params={"start": "2027-01-01", "months": 3}))
    assert body["start"] == "2027-01" and body["months"] == 3
    march = next(r for r in body["rows"] if r["profession"] == "physician" and r["month"] == "2027-03")
    offers = _ok(service.call("coord07", "GET", f"{BASE}/offers"))["items"]
    assert march["slots"] == sum(o["slots"] for o in offers if o["status"] == "published")
    assert march["shortfall"] == march["ready"] - march["slots_to_date"]
    assert service.call("clinic07_u1", "GET", f"{BASE}/outlook").status_code == 403


def test_acceptance_is_refused_when_the_money_was_cut_since_publication(region: Service) -> None:
    service = region
    latest = run_round(service, "k-6")
    assert latest["result"]["placements"] >= 1
    _ok(service.call("coord07", "POST", f"{BASE}/rounds/{latest['id']}/publish"))
    books = _ok(service.call("coord07", "GET", f"{BASE}/books"))
    committed = books["programmes"][0]["committed"]
    # Pending proposals are not commitments: the budget may be cut to what is committed...
    _ok(service.call("coord07", "PATCH", f"{BASE}/programmes/P1", json={"budget": committed}))
    # ...and then accepting a proposal would overdraw P1: refused with the limit named, nothing written.
    pending = proposals(service, latest["id"])[0]
    refused = answer(service, latest["id"], pending, True)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith(":commitment-overdraws") and "budget" in refused.json()["detail"]
    assert proposals(service, latest["id"])[0]["answer"] == "pending"
    assert _ok(service.call("coord07", "GET", f"{BASE}/commitments"))["total"] == books["programmes"][0]["placements"]
    _ok(service.call("coord07", "PATCH", f"{BASE}/programmes/P1", json={"budget": 3 * GRANT}))
    _ok(answer(service, latest["id"], pending, True))


IDENTITY_WORDS = ("personnummer", "given_name", "family_name", "name", "email", "phone", "address")


def test_a_clinic_reads_its_own_units_commitments_and_their_candidates_needs_only(service: Service) -> None:
    """Region 18 (region 07's data, a region of its own so that the order of the tests does not matter): both units
    accept a placement; each clinic sees its own unit's commitment ids and nothing of the other's, and keeps the
    reduced view of its trainee once the round is closed by the next publication."""
    users = {"coord18": None, "clinic18_u1": "U1", "clinic18_u2": "U2"}
    add_region(service, "18", region_07(), users, name="Region Klinikåtagande")
    base = "/regions/18"
    created = service.call(
        "coord18",
        "POST",
        f"{base}/rounds",
        json={"round_date": "2027-01-15", "time_limit_s": 5, "seed": 1},
        headers={"Idempotency-Key": "clinic-commitments-1"},
    )
    first = service.wait_round("coord18", "18", _ok(created, 202)["id"])
    _ok(service.call("coord18", "POST", f"{base}/rounds/{first['id']}/publish"))
    mine = _ok(service.call("coord18", "GET", f"{base}/rounds/{first['id']}/proposals"))["items"]
    for clinic, offer_ref in (("clinic18_u1", "O1"), ("clinic18_u2", "O2")):
        proposal = next(p for p in mine if p["offer_ref"] == offer_ref)
        _ok(service.call(clinic, "POST", f"{base}/rounds/{first['id']}/proposals/{proposal['id']}/accept"))
    every = _ok(service.call("coord18", "GET", f"{base}/commitments"))["items"]
    by_unit = {u: {c["id"] for c in every if c["unit_id"] == u} for u in ("U1", "U2")}
    assert len(by_unit["U1"]) == len(by_unit["U2"]) == 1
    ref_of = {c["id"]: c["candidate_id"] for c in every}

    for clinic, own, other in (("clinic18_u1", "U1", "U2"), ("clinic18_u2", "U2", "U1")):
        seen = _ok(service.call(clinic, "GET", f"{base}/commitments"))["items"]
        assert {c["id"] for c in seen} == by_unit[own] and {c["unit_id"] for c in seen} == {own}
        assert not [k for c in seen for k in c if any(word in k for word in IDENTITY_WORDS)]
        assert _ok(service.call(clinic, "GET", f"{base}/commitments", params={"unit": other}))["items"] == []
        [other_id] = by_unit[other]
        assert service.call(clinic, "GET", f"{base}/commitments/{other_id}").status_code == 404

    # The next publication closes the first round: the clinic still reads what supervision needs of its trainee
    # (the reduced view), and still nothing of the other unit's.
    created = service.call(
        "coord18",
        "POST",
        f"{base}/rounds",
        json={"round_date": "2027-01-15", "time_limit_s": 5, "seed": 1},
        headers={"Idempotency-Key": "clinic-commitments-2"},
    )
    second = service.wait_round("coord18", "18", _ok(created, 202)["id"])
    _ok(service.call("coord18", "POST", f"{base}/rounds/{second['id']}/publish"))
    assert _ok(service.call("coord18", "GET", f"{base}/rounds/{first['id']}"))["status"] == "closed"
    [own_id], [other_id] = by_unit["U1"], by_unit["U2"]
    trainee = _ok(service.call("clinic18_u1", "GET", f"{base}/candidates/{ref_of[own_id]}"))
    assert set(trainee) == {"id", *CLINIC_CANDIDATE_FIELDS} and trainee["id"] == ref_of[own_id]
    # (A committed candidate waits no more, so the second round proposes them nowhere.)
    assert service.call("clinic18_u1", "GET", f"{base}/candidates/{ref_of[other_id]}").status_code == 404
