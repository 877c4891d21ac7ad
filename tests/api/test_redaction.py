"""Personal identity numbers and names stay out of logs, errors and the audit log: the masking rules, the log
filter, and database errors without their parameters."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from api.core.identity import fake_test_personnummer, luhn_digit
from api.core.redaction import ERASED, NUMBER, IdentityText, Scrubber, install_log_filters, mask_numbers
from models.db import make_engine

PNR = fake_test_personnummer(7)


def test_every_written_form_of_a_valid_number_is_masked_and_nothing_else() -> None:
    coordination = f"19800161-980{luhn_digit('800161980')}"  # samordningsnummer: day + 60
    for form in (PNR, PNR.replace("-", ""), PNR[2:], PNR[2:].replace("-", ""), PNR[2:8] + "+" + PNR[9:], coordination):
        assert mask_numbers(f"ring {form} idag") == f"ring {NUMBER} idag", form
    wrong_check = PNR[:-1] + str((int(PNR[-1]) + 1) % 10)
    for keep in (wrong_check, "1000000000 SEK", "2027-03-01", "offer 123456789012", "HSA SE2321000016-1234"):
        assert mask_numbers(keep) == keep


def test_one_person_is_found_by_number_and_name() -> None:
    person = IdentityText(PNR, "Anna Maria", "Ödmansson")
    text_ = f"Ring anna maria ÖDMANSSON ({PNR[2:].replace('-', '')}); Ödmansson, Anna Maria; Anna sa nej"
    assert person.scrub(text_) == f"Ring {ERASED} ({ERASED}); {ERASED}; Anna sa nej"
    assert person.scrub("Anna sa nej till Ödmansson", name_parts=True) == f"{ERASED} sa nej till {ERASED}"
    assert person.found_in(f"x {PNR} y") and not person.found_in("Annamaria Ödmanssons")


def test_many_people_are_scrubbed_in_one_pass() -> None:
    other = fake_test_personnummer(8)
    people = Scrubber([IdentityText(PNR, "Anna Maria", "Ödmansson"), IdentityText(other, "Bo", "Ek")])
    text_ = (
        f"{PNR[2:].replace('-', '')} och {other}: Anna Maria Ödmansson, Ek, Bo; Bo Eklund; {fake_test_personnummer(9)}"
    )
    assert people.found_in(text_) and not people.found_in("Bo Eklund, Ödmansson")
    assert people.scrub(text_) == f"{ERASED} och {ERASED}: {ERASED}, {ERASED}; Bo Eklund; {fake_test_personnummer(9)}"


class Keep(logging.Handler):
    """Every record, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.text += self.format(record) + "\n"


def test_log_records_lose_numbers_and_query_strings() -> None:
    install_log_filters()
    keep = Keep()
    loggers = [logging.getLogger(name) for name in ("uvicorn.access", "vardmatch.api")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(keep)
        logger.setLevel(logging.INFO)
    try:
        access, api = loggers
        access.info('%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", f"/x?purpose=ring+{PNR}", "1.1", 200)
        try:
            raise ValueError(f"bad value {PNR}")
        except ValueError:
            api.exception("failed for %s", PNR[2:])
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(keep)
            logger.setLevel(level)
    line, error = keep.records
    assert line.getMessage() == '1.2.3.4 - "GET /x HTTP/1.1" 200'
    assert error.getMessage() == f"failed for {NUMBER}"
    assert PNR not in keep.text and PNR[2:] not in keep.text and "ValueError: bad value" in keep.text


def test_database_errors_never_carry_the_values_of_the_statement(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE person (number TEXT UNIQUE)"))
            connection.execute(text("INSERT INTO person VALUES (:n)"), {"n": PNR})
        with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
            connection.execute(text("INSERT INTO person VALUES (:n)"), {"n": PNR})
        assert PNR not in str(caught.value) and "hidden" in str(caught.value)
    finally:
        engine.dispose()
