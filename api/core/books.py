"""A region's books for a programme year: per programme (and earmark, unit, month) the budget, what accepted
placements hold, what was paid and released, what is left, and the money that must still be spent by the
spend-by date. Pure arithmetic over the stored commitments, to the krona.

The identities every book keeps (a property test checks them):
- budget = committed + left                      (committed: what commitments hold now)
- granted = committed + released                 (granted: every accepted grant, as accepted)
- committed = paid + outstanding                 (outstanding: held but not yet reported paid)
- sum over months of planned = committed; sum over units of committed = committed;
- general money used + earmarked money used = committed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from matching.input import instance as engine
from matching.input.instance import DEFAULT_PTJ_MONTHS, Profession
from matching.input.months import last_full_month, month_index, month_label

# Warn when the last start month for using the money is this close.
WARN_MONTHS = 3


@dataclass(frozen=True)
class Entry:
    """One commitment as the books see it."""

    programme_id: str
    earmark_id: str | None
    unit_id: str
    start: date
    grant: int  # as accepted
    held: int  # what it holds now (the grant, or what was paid)
    held_months: int
    paid: int | None


def _spread(amount: int, months: int) -> list[int]:
    """An amount over months in whole kronor: equal parts, the remainder one krona at a time from the first month."""
    if months <= 0:
        return [amount]
    base, rest = divmod(amount, months)
    return [base + (1 if i < rest else 0) for i in range(months)]


def _warning(prog: engine.Programme, left: int, as_of: date) -> tuple[str | None, str | None, date | None]:
    """(kind, sentence, latest start) about money not yet committed and the spend-by date."""
    if left <= 0:
        return None, None, None
    professions = prog.professions or tuple(Profession)
    months = min(DEFAULT_PTJ_MONTHS.get(p, 6) for p in professions)
    last = last_full_month(prog.spend_by)
    if last < month_index(as_of):
        return "lapsed", f"{left:,} SEK was never committed and the spend-by date {prog.spend_by} has passed", None
    latest = last - months + 1
    first_possible = month_index(as_of) + 1
    latest_start = date(latest // 12, latest % 12 + 1, 1)
    if latest < first_possible:
        return (
            "cannot",
            f"{left:,} SEK cannot be used in time: a {months}-month placement starting in {month_label(first_possible)}"
            f" would end after the spend-by date {prog.spend_by}",
            None,
        )
    if latest - month_index(as_of) <= WARN_MONTHS:
        return (
            "soon",
            f"{left:,} SEK is not committed yet: a {months}-month placement must start by {latest_start:%Y-%m} "
            f"to end by the spend-by date {prog.spend_by}",
            latest_start,
        )
    return None, None, latest_start


def _programme_row(prog: engine.Programme, entries: list[Entry], as_of: date) -> dict[str, Any]:
    granted = sum(e.grant for e in entries)
    committed = sum(e.held for e in entries)
    paid = sum(e.paid or 0 for e in entries)
    left = prog.budget - committed
    kind, warning, latest_start = _warning(prog, left, as_of)
    return {
        "programme_id": prog.id,
        "name": prog.name,
        "status": prog.status.value,
        "budget": prog.budget,
        "granted": granted,
        "committed": committed,
        "paid": paid,
        "outstanding": committed - paid,
        "released": granted - committed,
        "left": left,
        "to_spend": prog.budget - paid,
        "spend_by": prog.spend_by,
        "latest_start": latest_start,
        "warning_kind": kind,
        "warning": warning,
        "placements": len(entries),
    }


def _earmark_rows(prog: engine.Programme, entries: list[Entry]) -> list[dict[str, Any]]:
    rows = []
    for earmark in prog.earmarks:
        committed = sum(e.held for e in entries if e.earmark_id == earmark.id)
        drawn = min(earmark.amount, committed)
        rows.append(
            {
                "programme_id": prog.id,
                "earmark_id": earmark.id,
                "amount": earmark.amount,
                "committed": committed,
                "drawn": drawn,
                "overflow": committed - drawn,
                "left": earmark.amount - drawn,
            }
        )
    return rows


def _unit_rows(prog: engine.Programme, units: dict[str, engine.Unit], entries: list[Entry]) -> list[dict[str, Any]]:
    per_unit: dict[str, int] = defaultdict(int)
    for e in entries:
        per_unit[e.unit_id] += e.held
    rows = []
    for uid, committed in sorted(per_unit.items()):
        unit = units.get(uid)
        cap = prog.unit_caps.for_size(unit.size_class) if unit else None
        rows.append(
            {
                "programme_id": prog.id,
                "unit_id": uid,
                "size_class": unit.size_class.value if unit else None,
                "cap": cap,
                "committed": committed,
                "left": None if cap is None else cap - committed,
            }
        )
    return rows


def _month_rows(prog: engine.Programme, entries: list[Entry]) -> list[dict[str, Any]]:
    planned: dict[int, int] = defaultdict(int)
    for e in entries:
        first = month_index(e.start)
        for i, amount in enumerate(_spread(e.held, e.held_months)):
            planned[first + i] += amount
    rows, total = [], 0
    for month in sorted(planned):
        total += planned[month]
        rows.append(
            {"programme_id": prog.id, "month": month_label(month), "planned": planned[month], "cumulative": total}
        )
    return rows


def region_books(
    programmes: list[engine.Programme], units: list[engine.Unit], entries: list[Entry], as_of: date
) -> dict[str, Any]:
    """The books of a region's programmes: programme rows with totals, earmarks, unit caps and months."""
    by_programme: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_programme[e.programme_id].append(e)
    unit_map = {u.id: u for u in units}
    out: dict[str, Any] = {"as_of": as_of, "programmes": [], "earmarks": [], "units": [], "months": []}
    for prog in programmes:
        mine = by_programme.get(prog.id, [])
        out["programmes"].append(_programme_row(prog, mine, as_of))
        out["earmarks"] += _earmark_rows(prog, mine)
        out["units"] += _unit_rows(prog, unit_map, mine)
        out["months"] += _month_rows(prog, mine)
    keys = ("budget", "granted", "committed", "paid", "outstanding", "released", "left", "to_spend")
    out["totals"] = {k: sum(p[k] for p in out["programmes"]) for k in keys}
    return out


# Swedish column names for the finance export, per table, in column order.
SWEDISH: dict[str, dict[str, str]] = {
    "programmes": {
        "programme_id": "Program",
        "name": "Namn",
        "status": "Status",
        "budget": "Budget",
        "granted": "Beviljat",
        "committed": "Åtaget",
        "paid": "Utbetalt",
        "outstanding": "Åtaget ej utbetalt",
        "released": "Frigjort",
        "left": "Kvar",
        "to_spend": "Att spendera före sista datum",
        "spend_by": "Sista datum",
        "latest_start": "Senaste start",
        "placements": "Placeringar",
        "warning": "Varning",
    },
    "earmarks": {
        "programme_id": "Program",
        "earmark_id": "Öronmärkning",
        "amount": "Belopp",
        "committed": "Åtaget",
        "drawn": "Ur öronmärkningen",
        "overflow": "Ur allmänna medel",
        "left": "Kvar",
    },
    "units": {
        "programme_id": "Program",
        "unit_id": "Enhet",
        "size_class": "Storleksklass",
        "cap": "Tak",
        "committed": "Åtaget",
        "left": "Kvar",
    },
    "months": {"programme_id": "Program", "month": "Månad", "planned": "Planerat", "cumulative": "Ackumulerat"},
}
SHEET_NAMES = {"programmes": "Program", "earmarks": "Öronmärkningar", "units": "Enheter", "months": "Månader"}


def table_rows(books: dict[str, Any], table: str, lang: str) -> list[dict[str, Any]]:
    """One table of the books as export rows: Swedish headers (lang 'sv') or the API's field names ('en')."""
    columns = SWEDISH[table]
    return [{(columns[k] if lang == "sv" else k): row.get(k) for k in columns} for row in books[table]]
