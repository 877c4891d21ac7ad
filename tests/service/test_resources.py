"""CRUD, import/export, errors, login limits and settings."""

from __future__ import annotations

import io

from openpyxl import Workbook, load_workbook

from tests.service.conftest import Service

GOOD = "id,unit_id,profession,available_from,capacity\nS-A,U1,physician,2027-01-01,2\nS-B,U2,nurse,2027-02-01,1\n"
BROKEN = GOOD + "S-C,U9,physician,2027-01-01,1\nS-D,U1,astronaut,2027-01-01,1\nS-E,U1,physician,not-a-date,x\n"


def _import(service: Service, user: str, kind: str, name: str, content: bytes, partial: bool = False):
    return service.call(
        user, "POST", f"/regions/01/{kind}/import", params={"partial": partial}, files={"file": (name, content)}
    )


def test_import_reports_every_broken_row_and_writes_nothing(service: Service) -> None:
    r = _import(service, "coord01", "supervisors", "s.csv", BROKEN.encode())
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    rows = {e["row"] for e in r.json()["errors"]}
    assert rows == {4, 5, 6}
    assert service.call("coord01", "GET", "/regions/01/supervisors/S-A").status_code == 404
    partial = _import(service, "coord01", "supervisors", "s.csv", BROKEN.encode(), partial=True)
    assert partial.status_code == 200 and partial.json()["created"] == 2
    assert service.call("coord01", "GET", "/regions/01/supervisors/S-A").json()["capacity"] == 2


def test_xlsx_round_trip_and_formula_escaping(service: Service) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["id", "name", "hsa_id", "orgnr", "county", "municipality"])
    sheet.append(["U-X", '=HYPERLINK("http://x")', "SE2321000016-UX", "232100-0016", "01", "0180"])
    out = io.BytesIO()
    book.save(out)
    r = _import(service, "coord01", "units", "u.xlsx", out.getvalue())
    assert r.status_code == 200, r.text  # an uploaded formula is read as its (empty) value, never evaluated
    text = (
        'id,name,hsa_id,orgnr,county,municipality\nU-X,"=HYPERLINK(""http://x"")",SE2321000016-UX,232100-0016,01,0180\n'
    )
    assert _import(service, "coord01", "units", "u.csv", text.encode()).json()["updated"] == 1
    csv_text = service.call("coord01", "GET", "/regions/01/units/export", params={"format": "csv"}).text
    assert "'=HYPERLINK" in csv_text
    xlsx = service.call("coord01", "GET", "/regions/01/units/export", params={"format": "xlsx"}).content
    cells = [c for row in load_workbook(io.BytesIO(xlsx)).active.iter_rows(values_only=True) for c in row]
    assert '\'=HYPERLINK("http://x")' in cells, repr(cells[-40:])
    # A clinic's export of candidates never carries identity numbers.
    assert "personnummer" not in service.call("clinic_u1", "GET", "/regions/01/candidates/export").text


def test_crud_and_problem_details(service: Service) -> None:
    offer = {
        "id": "O-9",
        "unit_id": "U1",
        "profession": "physician",
        "start": "2027-03-01",
        "months": 6,
        "supervisor_ids": ["S1"],
        "status": "draft",
    }
    created = service.call("clinic_u1", "POST", "/regions/01/offers", json=offer)
    assert created.status_code == 201, created.text
    assert service.call("clinic_u1", "POST", "/regions/01/offers", json=offer).status_code == 409
    published = service.call("clinic_u1", "POST", "/regions/01/offers/O-9/publish")
    assert published.json()["status"] == "published"
    listed = service.call("coord01", "GET", "/regions/01/offers", params={"status": "published", "limit": 1})
    assert listed.json()["limit"] == 1 and listed.json()["total"] >= 2
    bad = service.call("clinic_u1", "PATCH", "/regions/01/offers/O-9", json={"months": 0, "min_cefr": "Z9"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"months", "min_cefr"}
    assert service.call("clinic_u1", "POST", "/regions/01/offers/O-9/withdraw").json()["status"] == "withdrawn"
    for path in ("/regions/01/offers?limit=100000", "/regions/xx/offers", "/nope"):
        r = service.call("admin", "GET", path)
        assert r.status_code in (404, 422) and r.json()["status"] == r.status_code
    garbage = service.call(
        "coord01", "POST", "/regions/01/candidates", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 422


def test_identity_is_masked_unless_revealed_and_audited(service: Service) -> None:
    masked = service.call("coord01", "GET", "/regions/01/candidates/CAND-A/identity").json()
    assert masked["masked"] and masked["personnummer"].endswith("****")
    full = service.call(
        "coord01", "GET", "/regions/01/candidates/CAND-A/identity", params={"reveal": True, "purpose": "contract"}
    )
    assert not full.json()["masked"]


def test_api_key_works_for_scripts(service: Service) -> None:
    key = service.call("coord01", "POST", "/me/api-keys", params={"name": "script"}).json()["key"]
    with service.client() as client:
        assert client.get("/me", headers={"X-API-Key": key}).json()["username"] == "coord01"
        assert client.get("/me", headers={"X-API-Key": key + "x"}).status_code == 401


def test_login_is_rate_limited(service: Service) -> None:
    with service.client() as client:
        codes = [
            client.post("/auth/token", data={"username": "admin", "password": "wrong"}).status_code for _ in range(6)
        ]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    service.app.state.login_limiter._failures.clear()


def test_health(service: Service) -> None:
    import httpx

    assert httpx.get(service.base_url + "/healthz").json() == {"status": "ok", "database": "ok"}
