"""CSV and XLSX as a coordinator uses them: what the service exports imports back unchanged (every kind, both
formats), Excel's Swedish CSV (cp1252, semicolons) is read, formula characters (full-width too) are escaped, a
control character never breaks an export, and an export edited while the object changed is caught."""

from __future__ import annotations

import io
import threading
import zipfile
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from api.core import tabular
from models import Region, Unit
from models.db import make_engine
from tests.factories import candidate, offer, programme, supervisor, unit
from tests.service.conftest import PASSWORD, Service

R = "/regions/05"
KINDS = ("units", "supervisors", "programmes", "candidates", "offers")
# One object of every kind with every kind of cell: nested objects, lists, lists of objects, dates, booleans, None.
RICH: dict[str, list[dict[str, Any]]] = {
    "units": [unit("RU1", name='Vårdcentral Åre, "Norr"; hus 2', size_class="small"), unit("RU2")],
    "supervisors": [supervisor("RS1", "RU1", specialist=True, available_until="2028-06-30"), supervisor("RS2", "RU2")],
    "programmes": [
        programme(
            "RP1",
            status="paused",
            cutoff="2027-02-01",
            professions=["physician", "nurse"],
            unit_caps={"small": 135000, "large": 60000},
            earmarks=[{"id": "E1", "amount": 100000, "professions": ["nurse"]}],
            residence_counties=["01", "03"],
            cofunding_share=0.5,
        )
    ],
    "candidates": [
        candidate("RC1", wishes=["RO1", "RU2"], ladder={"ptj_decision_ref": "5.1-123/2026"}, part_time=0.75),
        candidate("RC2", specialty="=1+1", applied_on="2026-12-01", available_until="2028-01-01", wishes=[]),
    ],
    "offers": [
        offer("RO1", "RU1", ("RS1",), clinic_ranking=["RC2", "RC1"], status="draft", specialty="＝SUM(A1)"),
        offer("RO2", "RU2", ("RS2",), required_stage="practical_test", slots=2),
    ],
}


def _upload(service: Service, kind: str, name: str, content: bytes, user: str = "coord05", **params: Any) -> Any:
    return service.call(user, "POST", f"{R}/{kind}/import", params=params, files={"file": (name, content)})


def _all(service: Service, kind: str) -> list[dict[str, Any]]:
    return service.call("coord05", "GET", f"{R}/{kind}", params={"limit": 200}).json()["items"]


@pytest.fixture(scope="module")
def region(service: Service) -> str:
    """Region 05 with a coordinator and one rich object of every kind."""
    assert service.call("admin", "POST", "/regions", json={"code": "05", "name": "Region Rund"}).status_code == 201
    user = {"username": "coord05", "password": PASSWORD, "role": "coordinator", "region": "05"}
    assert service.call("admin", "POST", "/users", json=user).status_code == 201
    # Candidates before offers (a clinic ranks candidates who exist), their wishes for offers after them.
    for kind in KINDS:
        for body in RICH[kind]:
            first = (
                {**body, "wishes": [w for w in body["wishes"] if w.startswith("RU")]} if kind == "candidates" else body
            )
            r = service.call("admin", "POST", f"{R}/{kind}", json=first)
            assert r.status_code == 201, (kind, r.text)
    r = service.call("admin", "PATCH", f"{R}/candidates/RC1", json={"wishes": RICH["candidates"][0]["wishes"]})
    assert r.status_code == 200, r.text
    return "05"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_export_imports_back_unchanged(service: Service, region: str, kind: str, fmt: str) -> None:
    before = _all(service, kind)
    exported = service.call("coord05", "GET", f"{R}/{kind}/export", params={"format": fmt})
    assert exported.status_code == 200
    r = _upload(service, kind, f"{kind}.{fmt}", exported.content)
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": len(before), "created": 0, "updated": 0, "unchanged": len(before), "errors": []}
    assert _all(service, kind) == before


def test_an_edited_export_updates_and_a_stale_one_is_caught(service: Service, region: str) -> None:
    exported = service.call("coord05", "GET", f"{R}/offers/export").text
    edited = exported.replace("RO2,RU2,ptj,physician", "RO2,RU2,ptj,physician").replace(",2,RS2,", ",3,RS2,")
    assert edited != exported
    r = _upload(service, "offers", "offers.csv", edited.encode())
    assert r.status_code == 200 and (r.json()["updated"], r.json()["unchanged"]) == (1, 1), r.text
    assert service.call("coord05", "GET", f"{R}/offers/RO2").json()["slots"] == 3
    # The first export is now stale for RO2: importing it would undo the change without anyone noticing.
    stale = _upload(service, "offers", "offers.csv", exported.encode())
    assert stale.status_code == 422 and stale.json()["type"].endswith("import-rejected")
    [error] = stale.json()["errors"]
    assert (error["id"], error["field"], error["type"]) == ("RO2", "version", "stale_version")
    assert service.call("coord05", "GET", f"{R}/offers/RO2").json()["slots"] == 3


def test_a_row_of_another_region_is_refused(service: Service, region: str) -> None:
    text = service.call("coord05", "GET", f"{R}/units/export").text.replace(",05,", ",01,")
    r = _upload(service, "units", "units.csv", text.encode())
    assert r.status_code == 422
    assert {(e["field"], e["type"]) for e in r.json()["errors"]} == {("region", "region")}


def test_excel_csv_from_swedish_windows_is_read(service: Service, region: str) -> None:
    """Excel's 'CSV (semikolonavgränsad)' on Swedish Windows: cp1252 bytes, semicolons, no BOM."""
    # Excel also drops the leading zeros of codes it took for numbers: county 01 is 1, municipality 0180 is 180.
    text = (
        "id;name;hsa_id;orgnr;county;municipality\r\n"
        "RU9;Vårdcentral Älvsjö – Söder;SE2321000016-RU9;232100-0016;1;180\r\n"
    )
    r = _upload(service, "units", "units.csv", text.encode("cp1252"))
    assert r.status_code == 200, r.text
    assert service.call("coord05", "GET", f"{R}/units/RU9").json()["name"] == "Vårdcentral Älvsjö – Söder"


def test_formula_characters_full_width_too_are_escaped_and_read_back(service: Service, region: str) -> None:
    csv_text = service.call("coord05", "GET", f"{R}/offers/export").text
    assert "'＝SUM(A1)" in csv_text
    book = load_workbook(io.BytesIO(service.call("coord05", "GET", f"{R}/candidates/export?format=xlsx").content))
    cells = [c for row in book.active.iter_rows(values_only=True) for c in row]
    assert "'=1+1" in cells and "=1+1" not in cells
    assert service.call("coord05", "GET", f"{R}/offers/RO1").json()["specialty"] == "＝SUM(A1)"


def test_a_control_character_is_refused_on_write_and_never_breaks_an_export(service: Service, region: str) -> None:
    r = service.call("coord05", "PATCH", f"{R}/units/RU2", json={"name": "Vård\x01central"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["name"]
    text = "id,name,hsa_id,orgnr,county,municipality\nRU8,Bad\x1bname,SE2321000016-RU8,232100-0016,01,0180\n"
    refused = _upload(service, "units", "units.csv", text.encode())
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "name"
    # A row stored before the rule (written here behind the API's back) still exports, the character replaced.
    engine = make_engine(service.url)
    with engine.begin() as connection:
        region_id = connection.scalar(select(Region.id).where(Region.code == "05"))
        data = connection.scalar(select(Unit.data).where(Unit.region_id == region_id, Unit.ref == "RU2"))
        connection.execute(
            update(Unit)
            .where(Unit.region_id == region_id, Unit.ref == "RU2")
            .values(data={**data, "name": "Old\x01name"})
        )
    engine.dispose()
    for fmt in ("csv", "xlsx"):
        exported = service.call("coord05", "GET", f"{R}/units/export", params={"format": fmt})
        assert exported.status_code == 200, exported.text
    cells = [
        c
        for row in load_workbook(io.BytesIO(exported.content)).active.iter_rows(values_only=True)
        for c in row
        if isinstance(c, str)
    ]
    assert "Old\ufffdname" in cells


def test_uploads_past_the_limits_are_refused_before_they_are_read(service: Service, region: str) -> None:
    """A small workbook that would inflate to 60 MB, and a CSV of more rows than one import takes: 413."""
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b" " * 60_000_000)
    assert len(bomb.getvalue()) < 200_000
    r = _upload(service, "units", "units.xlsx", bomb.getvalue())
    assert r.status_code == 413 and r.json()["type"].endswith("payload-too-large"), r.text
    many = "id\n" + "".join(f"X{i}\n" for i in range(20_001))
    r = _upload(service, "units", "units.csv", many.encode())
    assert r.status_code == 413 and "20000 rows" in r.json()["detail"]


def test_an_import_does_not_stall_other_requests(service: Service) -> None:
    """While 5,000 candidates are imported, reads keep being answered, and they see the region as it was until the
    import commits (the import runs in a worker thread; run on the event loop it held every other request until
    it was done)."""
    rows = [tabular.flatten(candidate(f"BULK{i:05d}")) for i in range(5_000)]
    content = tabular.to_csv(rows)
    before = service.call("coord01", "GET", "/regions/01/candidates", params={"limit": 1}).json()["total"]
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run_import() -> None:
        outcome["response"] = service.call(
            "coord01", "POST", "/regions/01/candidates/import", files={"file": ("bulk.csv", content)}
        )
        done.set()

    worker = threading.Thread(target=run_import)
    worker.start()
    totals = []
    with service.client("coord01") as client:
        while not done.is_set():
            totals.append(client.get("/regions/01/candidates", params={"limit": 1}).json()["total"])
    worker.join()
    assert outcome["response"].status_code == 200 and outcome["response"].json()["created"] == 5_000
    during = totals.count(before)
    assert during >= 10, f"only {during} read(s) answered while the import ran"
    assert set(totals) <= {before, before + 5_000}
