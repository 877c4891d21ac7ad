"""Import in the browser: a file with one bad row shows the row in a table and writes nothing; a good file is
imported."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.web.conftest import api_token, check_accessible, login


def _offers_file(base_url: str, folder: Path, bad: bool) -> Path:
    """Two new offers made from exported ones (the export's columns are the import's); one broken if asked."""
    headers = api_token(base_url, "samordnare")
    exported = httpx.get(f"{base_url}/api/v1/regions/01/offers/export?format=csv", headers=headers, timeout=30)
    reader = csv.DictReader(io.StringIO(exported.text))
    rows = [row for row, _ in zip(reader, range(2), strict=False)]
    suffix = "BAD" if bad else "OK"
    for i, row in enumerate(rows):
        row["id"] = f"O-IMP-{suffix}-{i}"
        row.pop("version", None)
    if bad:
        rows[1]["months"] = "sex"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path = folder / f"offers-{suffix}.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def test_an_import_with_a_bad_row_shows_it_and_writes_nothing(page: Page, base_url: str, tmp_path: Path) -> None:
    login(page, "samordnare")
    page.goto("/regions/01/import")
    check_accessible(page)
    page.select_option("#kind", "offers")
    page.set_input_files("#file", str(_offers_file(base_url, tmp_path, bad=True)))
    page.click("#upload")
    errors = page.locator("table.errors tbody tr")
    expect(errors).to_have_count(1)
    assert "3" in errors.first.inner_text() and "months" in errors.first.inner_text()  # row 3 of the file
    check_accessible(page)
    headers = api_token(base_url, "samordnare")
    assert httpx.get(f"{base_url}/api/v1/regions/01/offers/O-IMP-BAD-0", headers=headers).status_code == 404
    page.select_option("#kind", "offers")
    page.set_input_files("#file", str(_offers_file(base_url, tmp_path, bad=False)))
    page.click("#upload")
    expect(page.locator("#report [role=status]")).to_contain_text("2 nya")
    assert httpx.get(f"{base_url}/api/v1/regions/01/offers/O-IMP-OK-1", headers=headers).status_code == 200
