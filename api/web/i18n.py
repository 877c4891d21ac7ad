"""One translation catalogue for the pages and for the API's texts shown on them.

Messages are written in English in the code and templates (the msgids) and translated from the gettext catalogue
`translations/<locale>/LC_MESSAGES/messages.po`, read with Babel when the app starts (no compile step). Swedish is
the default language; English is the msgids themselves.

The API's own sentences (problem titles and details, the objective statement, price lines, why-not causes) are
built with numbers and ids in them. Their msgids in the catalogue carry `{placeholders}`: such an entry matches a
whole sentence as a pattern and its msgstr is filled with the same values, so one catalogue covers them too.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES = ("sv", "en")
DEFAULT_LOCALE = "sv"
TRANSLATIONS = Path(__file__).parent / "translations"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

current_locale: ContextVar[str] = ContextVar("vardmatch_locale", default=DEFAULT_LOCALE)


@dataclass
class Catalogue:
    """The exact messages and the sentence patterns of one locale."""

    messages: dict[str, str] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern[str], str, str]] = field(default_factory=list)  # (regex, msgstr, msgid)


def _pattern(msgid: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(msgid)
    # split() alternates text and placeholder names: text at even positions, names at odd.
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.*?)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$", re.DOTALL)


@cache
def catalogue(locale: str) -> Catalogue:
    """The locale's catalogue (empty for English, whose texts are the msgids)."""
    path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    result = Catalogue()
    if not path.exists():
        return result
    with path.open("rb") as handle:
        po = read_po(handle, locale=locale)
    for message in po:
        if not message.id or not message.string or message.fuzzy:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        msgstr = message.string if isinstance(message.string, str) else message.string[0]
        result.messages[msgid] = msgstr
        if _PLACEHOLDER.search(msgid):
            result.patterns.append((_pattern(msgid), msgstr, msgid))
    # The most specific pattern first: the one with the most fixed text around its placeholders.
    result.patterns.sort(key=lambda item: -len(_PLACEHOLDER.sub("", item[2])))
    return result


def gettext(message: str) -> str:
    """The message in the current locale."""
    return catalogue(current_locale.get()).messages.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Singular or plural in the current locale (Swedish and English share the rule n == 1)."""
    return gettext(singular if n == 1 else plural)


def sentence(text: str | None) -> str:
    """A sentence of the API in the current locale: an exact message, else a pattern with its values carried over,
    else each part between '; ' (or ' + ') on its own; untranslatable text is shown as it is."""
    if not text:
        return ""
    cat = catalogue(current_locale.get())
    if text in cat.messages:
        return cat.messages[text]
    for pattern, target, _ in cat.patterns:
        match = pattern.match(text)
        if match:
            return _fill(target, {k: sentence(v) for k, v in match.groupdict().items()})
    for separator in ("; ", " + "):
        if separator in text:
            return separator.join(sentence(part) for part in text.split(separator))
    return text


def _fill(target: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), target)


def pick_locale(asked: str | None) -> str:
    """A supported locale, Swedish unless English was chosen."""
    return asked if asked in LOCALES else DEFAULT_LOCALE
