"""The one translation catalogue: every text of the pages has a Swedish translation, and the API's sentences are
translated with their values carried over (no browser needed)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from api.web import i18n
from api.web.forms import Field
from matching.input.instance import Policy, Weights
from matching.reports.statement import objective_statement

WEB = Path(i18n.__file__).parent


def _msgids() -> set[str]:
    found = extract_from_dir(
        str(WEB),
        method_map=[("templates/**.html", "jinja2"), ("**.py", "python")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    )
    return {msg if isinstance(msg, str) else msg[0] for _, _, msg, _, _ in found}


def test_every_text_of_the_pages_has_a_swedish_translation() -> None:
    ids = _msgids()
    assert len(ids) > 150  # the extraction really read the templates
    missing = sorted(m for m in ids if m not in i18n.catalogue("sv").messages)
    assert not missing


def test_api_sentences_are_translated_with_their_values() -> None:
    token = i18n.current_locale.set("sv")
    try:
        lines = objective_statement(Policy(weights=Weights(), time_limit_s=7, seed=3))
        swedish = [i18n.sentence(line) for line in lines]
        assert swedish[0] == (
            "I prioritetsordning försöker omgången: placera så många kandidater som möjligt; "
            "sedan maximera den totala matchningspoängen."
        )
        assert swedish[1].startswith("Matchningspoäng = 3 × specialitet + 1 × språknivå över minimum")
        assert "slumpfrö 3, tidsgräns 7 s" in swedish[-1]
        assert i18n.sentence("round 12 not found in region 01") == "omgång 12 hittades inte i region 01"
        assert i18n.sentence("this needs the role admin or coordinator") == (
            "detta kräver rollen administratör eller samordnare"
        )
        assert i18n.sentence("something the catalogue does not know") == "something the catalogue does not know"
        i18n.current_locale.set("en")
        assert i18n.sentence("round 12 not found in region 01") == "round 12 not found in region 01"
    finally:
        i18n.current_locale.reset(token)


def test_cookies_are_secure_outside_development() -> None:
    from api.core.settings import Environment, Settings
    from api.web.session import secure_cookies

    assert not secure_cookies(Settings(environment=Environment.DEVELOPMENT))
    assert secure_cookies(Settings(environment=Environment.TEST))
    assert secure_cookies(Settings(environment=Environment.PRODUCTION, secret_key="s" * 40))


def test_the_most_specific_sentence_pattern_wins() -> None:
    token = i18n.current_locale.set("sv")
    try:
        why = (
            "placed at O034; before: no_money: an eligible offer has room, but no programme that could pay has "
            "budget or cap left: P1, P2"
        )
        assert i18n.sentence(why) == (
            "placerad på O034; tidigare: inga pengar: ett behörigt erbjudande har plats, men inget program som "
            "kunde betala har budget eller tak kvar: P1, P2"
        )
        assert i18n.sentence("programme P1: budget 150,000 -> 9,000,000 SEK") == (
            "program P1: budget 150,000 → 9,000,000 kr"
        )
    finally:
        i18n.current_locale.reset(token)


def _codes_of_fields(fields: list[Field] | tuple[Field, ...]) -> set[str]:
    codes: set[str] = set()
    for field in fields:
        codes |= {field.label, *field.options} | _codes_of_fields(field.columns)
    return codes


def test_every_status_phase_field_and_option_the_pages_show_has_a_swedish_translation() -> None:
    from api.core.snapshot import KINDS
    from api.web.forms import fields_of
    from models.commitments import CommitmentStatus
    from models.jobs import JobStatus
    from models.rounds import RoundStatus

    codes = {s.value for s in RoundStatus} | {s.value for s in JobStatus} | {s.value for s in CommitmentStatus}
    # The progress of a job or round: its phase, and the solver's step (matching/solvers report them).
    codes |= {"starting", "solving", "done", "prepare", "model", "hint", "search", "explain", "bound", "greedy"}
    codes |= {"deferred_acceptance", "optimiser", "optimiser_no_blocking", "OPTIMAL", "FEASIBLE", "INFEASIBLE"}
    for kind in KINDS.values():
        codes |= _codes_of_fields(fields_of(kind.engine_type))
    swedish = i18n.catalogue("sv").messages
    assert "queued" in codes and "tier" not in codes
    assert sorted(c for c in codes if c not in swedish) == []
    token = i18n.current_locale.set("sv")
    try:
        assert i18n.sentence("tier 2 of 2: score") == "nivå 2 av 2: poäng"
        assert i18n.sentence("Input should be greater than or equal to 0") == "Ange minst 0"
    finally:
        i18n.current_locale.reset(token)


def test_the_catalogue_compiles_without_errors() -> None:
    from io import BytesIO

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with (i18n.TRANSLATIONS / "sv" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="sv")
    problems = [(message.id, errors) for message, errors in catalog.check() if errors]
    assert problems == []
    compiled = BytesIO()
    write_mo(compiled, catalog)
    assert len(compiled.getvalue()) > 10_000
