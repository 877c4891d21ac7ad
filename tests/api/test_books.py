"""The books' arithmetic: spreading money over months to the krona, and the spend-by warnings."""

from __future__ import annotations

from datetime import date

from api.core.books import Entry, region_books
from matching.input.instance import Programme, Unit
from tests.factories import programme, unit


def _programme(**kw: object) -> Programme:
    return Programme.model_validate(programme(**kw))


def _entry(held: int, months: int = 6, grant: int | None = None, paid: int | None = None) -> Entry:
    return Entry("P1", None, "U1", date(2027, 3, 1), grant or held, held, months, paid)


def test_months_spread_to_the_krona() -> None:
    books = region_books([_programme()], [Unit.model_validate(unit())], [_entry(100_001, months=3)], date(2027, 1, 1))
    assert [m["planned"] for m in books["months"]] == [33_334, 33_334, 33_333]
    assert [m["month"] for m in books["months"]] == ["2027-03", "2027-04", "2027-05"]
    assert books["months"][-1]["cumulative"] == 100_001


def test_spend_by_warnings() -> None:
    prog = _programme(spend_by="2027-12-31", professions=["physician"])  # a physician's PTJ lasts 6 months
    units = [Unit.model_validate(unit())]

    def warning(as_of: date) -> tuple[str | None, date | None]:
        row = region_books([prog], units, [_entry(200_000)], as_of)["programmes"][0]
        return row["warning_kind"], row["latest_start"]

    assert warning(date(2027, 1, 15)) == (None, date(2027, 7, 1))
    assert warning(date(2027, 4, 15)) == ("soon", date(2027, 7, 1))  # July is the last start, three months away
    assert warning(date(2027, 7, 15)) == ("cannot", None)  # August to January would end after the spend-by date
    assert warning(date(2028, 1, 15)) == ("lapsed", None)
    # Everything committed: nothing to warn about.
    full = region_books([prog], units, [_entry(1_000_000)], date(2027, 11, 1))["programmes"][0]
    assert (full["left"], full["warning"]) == (0, None)


def test_paid_and_released_money() -> None:
    entries = [_entry(68_000, months=2, grant=204_000, paid=68_000), _entry(204_000)]
    row = region_books([_programme()], [Unit.model_validate(unit())], entries, date(2027, 1, 1))["programmes"][0]
    assert (row["granted"], row["committed"], row["paid"], row["outstanding"], row["released"], row["left"]) == (
        408_000,
        272_000,
        68_000,
        204_000,
        136_000,
        728_000,
    )
    assert row["to_spend"] == 1_000_000 - 68_000


def test_commitments_of_a_closed_programme_stay_counted() -> None:
    closed = _programme(status="closed", cutoff="2027-06-01")
    row = region_books([closed], [Unit.model_validate(unit())], [_entry(204_000)], date(2028, 2, 1))["programmes"][0]
    assert (row["status"], row["committed"], row["left"]) == ("closed", 204_000, 796_000)
