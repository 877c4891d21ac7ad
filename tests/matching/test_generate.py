"""The instance generator: valid, deterministic, realistically shaped, sparse, and money binding as promised."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from matching.generators.generate import ROUND_DATE, SCALES, generate, generate_scale
from matching.input.codes import is_hsa_id, is_orgnr, municipalities
from matching.input.instance import Instance, OfferKind, Ownership, Profession, ProgrammeStatus
from matching.input.validate import load_instance
from matching.rules import eligibility
from matching.rules.eligibility import Eligible, check_pairs, eligible_pairs
from matching.rules.tables import build_tables, month_index


def _roundtrip(instance: Instance) -> Instance:
    """The instance through its JSON form and full validation (raises InvalidInstance on any problem)."""
    return load_instance(instance.model_dump(mode="json"))


@pytest.fixture(scope="module")
def regional() -> Instance:
    return generate_scale("regional", 0)


@pytest.fixture(scope="module")
def regional_pairs(regional: Instance) -> Eligible:
    return eligible_pairs(regional)


@pytest.mark.parametrize("size", [(30, 15), (120, 60)])
def test_valid_over_many_seeds(size: tuple[int, int]) -> None:
    for seed in range(50):
        instance = generate(*size, seed=seed)
        assert _roundtrip(instance).model_dump() == instance.model_dump()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"candidates": 1, "offers": 1},
        {"candidates": 3, "offers": 2, "programmes": 1},
        {"candidates": 40, "offers": 20, "counties": ("09",)},  # Gotland: one municipality
        {"candidates": 40, "offers": 20, "counties": ("25", "01"), "programmes": 9},
        {"candidates": 60, "offers": 30, "binding_budgets": False, "programmes": 6},
        {"candidates": 300, "offers": 100, "pairs_per_candidate": 5.0},
    ],
)
def test_valid_at_the_edges(kwargs: dict[str, object]) -> None:
    for seed in range(5):
        _roundtrip(generate(seed=seed, **kwargs))  # type: ignore[arg-type]


def test_same_arguments_give_the_same_instance() -> None:
    first = generate(200, 100, seed=7, programmes=4, pairs_per_candidate=8.0)
    again = generate(200, 100, seed=7, programmes=4, pairs_per_candidate=8.0)
    assert first.model_dump() == again.model_dump()
    assert generate(200, 100, seed=8, programmes=4).model_dump() != first.model_dump()


def test_ids_are_opaque_and_codes_valid(regional: Instance) -> None:
    patterns = {
        "candidates": r"C\d{6}",
        "offers": r"O\d{5}",
        "units": r"U\d{4}",
        "supervisors": r"S\d{5}",
        "programmes": r"P\d{2}",
    }
    for field, pattern in patterns.items():
        assert all(re.fullmatch(pattern, o.id) for o in getattr(regional, field)), field
    assert all(is_hsa_id(u.hsa_id) and is_orgnr(u.orgnr) for u in regional.units)
    stockholm = generate(60, 30, seed=0, counties=("01",))
    assert {u.orgnr for u in stockholm.units if u.ownership is Ownership.REGION} == {"232100-0016"}


def test_counties_by_size_and_by_request() -> None:
    assert len({c.residence_county for c in generate(500, 300, seed=3).candidates}) == 1
    national = generate_scale("national", 0)
    assert len({u.county for u in national.units}) == 21
    chosen = generate(200, 100, seed=2, counties=("12", "14"))
    places = {c.residence_municipality for c in chosen.candidates} | {u.municipality for u in chosen.units}
    assert {municipalities()[code].county for code in places} == {"12", "14"}
    assert {c.residence_county for c in chosen.candidates} == {"12", "14"}


def test_realistic_structure(regional: Instance) -> None:
    professions = Counter(c.profession for c in regional.candidates)
    top = {p for p, _ in professions.most_common(3)}
    assert top == {Profession.PHYSICIAN, Profession.NURSE, Profession.DENTIST}
    assert len(professions) >= 6
    kinds = Counter(o.kind for o in regional.offers)
    assert kinds.most_common(1)[0][0] is OfferKind.PTJ and len(kinds) >= 3
    ptj = [o for o in regional.offers if o.kind is OfferKind.PTJ]
    assert {o.months for o in ptj if o.profession is Profession.NURSE} >= {3}
    assert min(o.months for o in ptj if o.profession is Profession.PHYSICIAN) == 6
    starts = [month_index(o.start) - month_index(ROUND_DATE) for o in regional.offers]
    assert min(starts) >= 1 and max(starts) <= 18
    assert {o.slots for o in regional.offers} == {1, 2, 3}
    uses = Counter(sid for o in regional.offers for sid in o.supervisor_ids)
    supervisors = {s.id: s for s in regional.supervisors}
    assert max(uses.values()) >= 2  # supervisors are shared by several offers of their unit
    assert all(supervisors[sid].unit_id == o.unit_id for o in regional.offers for sid in o.supervisor_ids)
    assert {s.capacity for s in regional.supervisors} == {1, 2}
    assert any(s.available_until is not None for s in regional.supervisors)
    assert 0.1 < sum(bool(c.wishes) for c in regional.candidates) / len(regional.candidates) < 0.6
    assert any(o.clinic_ranking for o in regional.offers)
    assert len({c.max_commute_km for c in regional.candidates}) > 3
    assert (
        20
        <= min(c.max_commute_km for c in regional.candidates)
        <= max(c.max_commute_km for c in regional.candidates)
        <= 100
    )


def test_programmes(regional: Instance) -> None:
    assert len(regional.programmes) == 5
    assert len(generate(120, 60, seed=0).programmes) == 2
    assert len(generate(100, 700, seed=0).programmes) == 7
    paused = [p for p in regional.programmes if p.status is ProgrammeStatus.PAUSED]
    assert len(paused) == 1 and paused[0].cutoff is not None and paused[0].cutoff < ROUND_DATE
    assert any(p.cofunding_share == 0.5 for p in regional.programmes)
    assert any(p.residence_counties for p in regional.programmes)
    assert any(p.earmarks for p in regional.programmes)
    assert any(p.unit_caps.small is not None for p in regional.programmes)
    assert any(p.candidate_cap is not None for p in regional.programmes)


def test_eligible_pairs_exist_and_are_sparse(regional: Instance, regional_pairs: Eligible) -> None:
    n, m = len(regional.candidates), len(regional.offers)
    per_candidate = np.bincount(regional_pairs.cand, minlength=n)
    assert len(regional_pairs) > n  # several offers per candidate on average
    assert len(regional_pairs) < 0.1 * n * m
    assert 0.5 < (per_candidate > 0).mean() < 1.0  # most candidates have an offer, not all
    assert len(np.unique(regional_pairs.offer)) > 0.5 * m


def test_rules_exclude_a_realistic_share(regional: Instance) -> None:
    tables = build_tables(regional)
    cand = np.repeat(np.arange(len(regional.candidates)), len(regional.offers))
    offer = np.tile(np.arange(len(regional.offers)), len(regional.candidates))
    same = (
        np.array([c.profession for c in regional.candidates], dtype=object)[cand]
        == np.array([o.profession for o in regional.offers], dtype=object)[offer]
    )
    checks = check_pairs(regional, tables, cand[same], offer[same])
    for rule in ("ladder_stage", "language", "special_authorisation", "availability", "commute", "supervisor"):
        failing = 1.0 - checks.rules[rule].mean()
        assert 0.02 < failing < 0.8, rule
    assert checks.eligible.any()


def _most_each_programme_could_pay(instance: Instance, pairs: Eligible) -> list[int]:
    """Per programme: every slot of every offer it may pay filled at the largest grant it would pay there."""
    slots = np.array([o.slots for o in instance.offers], dtype=np.int64)
    result = []
    for g in range(len(instance.programmes)):
        rows = pairs.fund_programme == g
        largest = np.zeros(len(instance.offers), dtype=np.int64)
        np.maximum.at(largest, pairs.offer[pairs.fund_pair[rows]], pairs.fund_grant[rows])
        result.append(int((largest * slots).sum()))
    return result


def test_ample_budgets_never_bind() -> None:
    instance = generate(300, 150, seed=4, programmes=5, binding_budgets=False)
    pairs = eligible_pairs(instance)
    most = _most_each_programme_could_pay(instance, pairs)
    assert sum(most) > 0
    for programme, spend in zip(instance.programmes, most, strict=True):
        assert spend <= programme.budget, programme.id
        assert not programme.earmarks and programme.candidate_cap is None
        assert programme.unit_caps.small is programme.unit_caps.medium is programme.unit_caps.large is None


def test_binding_budgets_bind_and_change_only_money() -> None:
    binding = generate(300, 150, seed=4, programmes=5)
    ample = generate(300, 150, seed=4, programmes=5, binding_budgets=False)
    assert binding.model_dump(exclude={"programmes"}) == ample.model_dump(exclude={"programmes"})
    binding_pairs = eligible_pairs(binding)
    most = _most_each_programme_could_pay(binding, binding_pairs)
    short = [p.id for p, spend in zip(binding.programmes, most, strict=True) if spend > p.budget]
    assert len(short) >= 3
    assert sum(p.budget for p in binding.programmes) < 0.7 * sum(most)
    ample_pairs = eligible_pairs(ample)
    ample_set = set(zip(ample_pairs.cand.tolist(), ample_pairs.offer.tolist(), strict=True))
    binding_set = set(zip(binding_pairs.cand.tolist(), binding_pairs.offer.tolist(), strict=True))
    assert binding_set <= ample_set  # caps only take pairs away


@pytest.mark.parametrize("target", [10.0, 40.0])
def test_pairs_per_candidate_is_met(target: float) -> None:
    instance = generate(1500, 600, seed=1, pairs_per_candidate=target)
    mean = len(eligible_pairs(instance)) / len(instance.candidates)
    assert 0.7 * target <= mean <= 1.3 * target


def test_scales() -> None:
    assert SCALES["stress"] == (50000, 20000) and SCALES["tiny"] == (30, 15)
    tiny = generate_scale("tiny", 3)
    assert (len(tiny.candidates), len(tiny.offers)) == SCALES["tiny"]
    with pytest.raises(ValueError, match="unknown scale"):
        generate_scale("galactic", 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"candidates": 0, "offers": 5},
        {"candidates": 5, "offers": 0},
        {"candidates": 5, "offers": 5, "programmes": 0},
        {"candidates": 5, "offers": 5, "counties": ("99",)},
        {"candidates": 5, "offers": 5, "pairs_per_candidate": 0.0},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate(seed=0, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eligible_pairs_are_those_every_rule_passes_over_every_candidate_and_offer(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commute first, in chunks of candidates, then the other rules on what is near: the same pairs, costs and
    funding rows as every rule checked on every candidate x offer at once."""
    instance = generate(160, 90, seed=seed, programmes=3)
    tables = build_tables(instance)
    n, m = len(instance.candidates), len(instance.offers)
    checks = check_pairs(instance, tables, np.repeat(np.arange(n), m), np.tile(np.arange(m), n))
    expected = eligibility._eligible_rows(checks)
    assert 0 < len(expected) < 0.2 * n * m
    monkeypatch.setattr(eligibility, "_CHUNK", 500)  # a few candidates per chunk: many chunks per profession
    found = eligible_pairs(instance, tables)
    for name in ("cand", "offer", "months", "total_cost", "fund_pair", "fund_programme", "fund_grant", "fund_earmark"):
        assert np.array_equal(getattr(found, name), getattr(expected, name)), name
