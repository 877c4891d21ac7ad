"""Spreadsheet cells: formula characters escaped and read back exactly, and no text an export carries can fail
an XLSX download."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from api.core.tabular import cell_text, escape_cell, to_xlsx_sheets


def test_every_formula_start_is_escaped_and_reads_back_exactly() -> None:
    for text in ("=1+1", "+46", "-3", "@SUM", "\tx", "＝HYPERLINK()", "＋1", "－1", "＠x", "'quoted", "''=x"):
        escaped = escape_cell(text)
        assert escaped == "'" + text and cell_text(escaped) == text.strip()
    assert escape_cell("Vårdcentral") == "Vårdcentral" and escape_cell(3) == 3


def test_a_control_character_never_fails_an_xlsx_export() -> None:
    book = load_workbook(io.BytesIO(to_xlsx_sheets({"t": [{"name": "a\x01b", "n": 2}]})))
    assert [list(r) for r in book["t"].iter_rows(values_only=True)] == [["name", "n"], ["a\ufffdb", 2]]
