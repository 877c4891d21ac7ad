"""Keeping personal identity numbers and names out of logs, error messages, the audit log and stored text.

Two tools: `mask_numbers` replaces anything that is a valid personnummer or samordningsnummer (Luhn and date
checked, so amounts and ids are left alone) by a placeholder; `IdentityText` finds one person's number, in every
written form, and their name in any text, for erasure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.core.identity import normalise

ERASED = "[raderad]"
NUMBER = "[personnummer]"
# 10 or 12 digits with an optional separator: the shapes a personnummer is written in.
_CANDIDATE_NUMBER = re.compile(r"(?<!\d)(\d{6}|\d{8})([-+ ]?)(\d{4})(?!\d)")


def mask_numbers(text: str) -> str:
    """The text with every valid personnummer or samordningsnummer replaced by a placeholder."""

    def replace(match: re.Match[str]) -> str:
        date_part, _, serial = match.groups()
        return NUMBER if normalise(f"{date_part}-{serial}") else match.group(0)

    return _CANDIDATE_NUMBER.sub(replace, text)


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """A copy of a JSON-like value with `change` applied to every string in it (keys included)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {change(k) if isinstance(k, str) else k: map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(v, change) for v in value]
    return value


def _words(name: str) -> list[str]:
    return [re.escape(w) for w in name.split() if w]


@dataclass(frozen=True)
class IdentityText:
    """One person's identity values, to find and remove in free text."""

    personnummer: str  # normalised: YYYYMMDD-NNNN
    given_name: str
    family_name: str

    def _number(self) -> str:
        century, short, serial = self.personnummer[:2], self.personnummer[2:8], self.personnummer[9:]
        return rf"(?<!\d)(?:{century})?{short}[-+ ]?{serial}(?!\d)"

    def full_names(self) -> list[str]:
        given, family = r"\s+".join(_words(self.given_name)), r"\s+".join(_words(self.family_name))
        if not given or not family:
            return []
        return [rf"\b{given}\s+{family}\b", rf"\b{family}\s*,?\s+{given}\b"]

    def pattern(self, *, name_parts: bool = False) -> re.Pattern[str]:
        """The number in any written form and the full name; with `name_parts`, every word of the name too."""
        options = [self._number(), *self.full_names()]
        if name_parts:
            words = [*_words(self.given_name), *_words(self.family_name)]
            options += [rf"\b{w}\b" for w in words if len(w) > 1]
        return re.compile("|".join(options), re.IGNORECASE)

    def scrub(self, text: str, *, name_parts: bool = False) -> str:
        """The text without this person's number and name (and any other valid personnummer)."""
        return mask_numbers(self.pattern(name_parts=name_parts).sub(ERASED, text))

    def found_in(self, text: str) -> bool:
        """True if the number or the full name occurs in the text."""
        return self.pattern().search(text) is not None


_NUMBER_SHAPE = re.compile(r"(?<!\d)(\d{2})?(\d{6})([-+ ]?)(\d{4})(?!\d)")


class Scrubber:
    """Many people's numbers and full names, found in long texts: a plain substring test first (their birth dates,
    their family names), the patterns only where one occurs, so that erasure and retention go through every stored
    round quickly whatever the number of people."""

    def __init__(self, people: list[IdentityText]) -> None:
        self.numbers = {p.personnummer[2:8] + p.personnummer[9:] for p in people}
        self.dates = {p.personnummer[2:8] for p in people}
        self.by_word: dict[str, list[re.Pattern[str]]] = {}
        for person in people:
            names = person.full_names()
            if names:
                pattern = re.compile("|".join(names), re.IGNORECASE)
                for word in person.family_name.lower().split():
                    self.by_word.setdefault(word, []).append(pattern)

    def _names(self, text: str) -> list[re.Pattern[str]]:
        lowered = text.lower()
        return [p for word, patterns in self.by_word.items() if word in lowered for p in patterns]

    def _has_date(self, text: str) -> bool:
        return any(d in text for d in self.dates)

    def _number(self, match: re.Match[str]) -> str:
        return ERASED if match.group(2) + match.group(4) in self.numbers else match.group(0)

    def found_in(self, text: str) -> bool:
        """True if any of the people's numbers or full names occurs in the text."""
        if self._has_date(text) and any(m.group(2) + m.group(4) in self.numbers for m in _NUMBER_SHAPE.finditer(text)):
            return True
        return any(p.search(text) for p in self._names(text))

    def scrub(self, text: str) -> str:
        """The text with every one of their numbers and full names replaced."""
        if self._has_date(text):
            text = _NUMBER_SHAPE.sub(self._number, text)
        for pattern in self._names(text):
            text = pattern.sub(ERASED, text)
        return text


class _MaskRecord(logging.Filter):
    """Masks personal identity numbers in a log record's message and traceback; drops query strings from access
    lines (a purpose typed into a URL must not reach the log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        # Mask the format and each argument apart: formatters such as uvicorn's read the arguments themselves.
        if isinstance(record.msg, str):
            record.msg = mask_numbers(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_numbers(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask_numbers(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_numbers(logging.Formatter().formatException(record.exc_info))
        return True


LOGGERS = ("vardmatch.api", "uvicorn.access", "uvicorn.error")


def install_log_filters() -> None:
    """Attach the masking filter to the service's loggers (once)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _MaskRecord) for f in logger.filters):
            logger.addFilter(_MaskRecord())


def fields_with_numbers(value: Any, path: str = "") -> list[str]:
    """Dotted paths of the strings in a JSON-like value that hold a valid personnummer or samordningsnummer."""
    if isinstance(value, str):
        return [path or "(value)"] if mask_numbers(value) != value else []
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in fields_with_numbers(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list | tuple):
        return [f for i, v in enumerate(value) for f in fields_with_numbers(v, f"{path}[{i}]")]
    return []
