"""Soft score of eligible pairs: each component is an integer 0..1000, the total a weighted sum."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
from rapidfuzz import fuzz, process, utils

from matching.input.instance import Instance
from matching.rules.eligibility import Eligible
from matching.rules.tables import IntArray, Tables, distance_km, month_index

COMPONENTS: dict[str, str] = {
    "specialty": "fuzzy fit between the candidate's field and the offer's area, in Swedish and English",
    "language": "CEFR levels above the offer's minimum (two or more levels: full marks)",
    "distance": "closeness of the unit, relative to the candidate's maximum commute",
    "wish": "the candidate's wish rank of this offer or its unit",
    "clinic": "the clinic's rank of this candidate",
    "waiting": "time waited since the candidate became ready (two years or more: full marks)",
    "start": "how soon the placement starts after the candidate is available (a year or more: none)",
}
SCALE = 1000

# Swedish and English names of common specialty areas; a text is compared in both languages.
_SYNONYMS: tuple[tuple[str, str], ...] = (
    ("allmänmedicin", "general practice family medicine"),
    ("internmedicin", "internal medicine"),
    ("kirurgi", "surgery"),
    ("ortopedi", "orthopaedics orthopedics"),
    ("psykiatri", "psychiatry"),
    ("barnmedicin pediatrik", "paediatrics pediatrics"),
    ("geriatrik äldrevård", "geriatrics elderly care"),
    ("akutsjukvård akutmedicin", "emergency medicine"),
    ("anestesi intensivvård", "anaesthesia intensive care"),
    ("kardiologi", "cardiology"),
    ("neurologi", "neurology"),
    ("onkologi", "oncology"),
    ("radiologi röntgen", "radiology"),
    ("obstetrik gynekologi förlossning", "obstetrics gynaecology"),
    ("infektion infektionssjukdomar", "infectious diseases"),
    ("rehabilitering", "rehabilitation"),
    ("tandvård allmäntandvård", "dentistry general dentistry"),
    ("parodontologi", "periodontology"),
    ("ortodonti tandreglering", "orthodontics"),
    ("käkkirurgi", "oral surgery"),
    ("farmaci apotek", "pharmacy"),
    ("laboratoriemedicin", "laboratory medicine"),
    ("hemsjukvård", "home care"),
    ("vårdcentral primärvård", "primary care"),
    ("distriktssköterska", "district nursing"),
    ("barnmorska", "midwifery"),
)


@cache
def _synonym_table() -> list[tuple[str, str]]:
    return [(utils.default_process(sv), utils.default_process(en)) for sv, en in _SYNONYMS]


def bilingual(text: str) -> str:
    """The text with the other language's name of every specialty it mentions appended."""
    plain = utils.default_process(text)
    extra = []
    for sv, en in _synonym_table():
        sv_words, en_words = sv.split(), en.split()
        if any(re.search(rf"\b{re.escape(w)}", plain) for w in sv_words):
            extra.append(en)
        if any(re.search(rf"\b{re.escape(w)}", plain) for w in en_words):
            extra.append(sv)
    return " ".join([plain, *extra])


def specialty_matrix(candidate_texts: list[str], offer_texts: list[str]) -> IntArray:
    """0..1000 fit of every candidate text against every offer text (empty text: neutral 500)."""
    queries = [bilingual(t) for t in candidate_texts]
    choices = [bilingual(t) for t in offer_texts]
    if not queries or not choices:
        return np.zeros((len(queries), len(choices)), dtype=np.int64)
    raw = process.cdist(queries, choices, scorer=fuzz.token_set_ratio, dtype=np.int32, workers=1)
    scores = (np.asarray(raw, dtype=np.int64) * SCALE) // 100
    empty_q = np.array([not t.strip() for t in candidate_texts])
    empty_c = np.array([not t.strip() for t in offer_texts])
    scores[empty_q, :] = SCALE // 2
    scores[:, empty_c] = SCALE // 2
    return scores


@dataclass(frozen=True)
class Scores:
    """Per eligible pair: each component (0..1000) and the weighted total."""

    components: dict[str, IntArray]
    total: IntArray

    def breakdown(self, k: int) -> dict[str, int]:
        """Component values of pair k."""
        return {name: int(values[k]) for name, values in self.components.items()}


def _rank_score(rank: IntArray, length: IntArray) -> IntArray:
    """1000 for first place falling evenly to 1000/length for last; 0 when unranked (rank < 0)."""
    safe = np.maximum(length, 1)
    return np.where(rank >= 0, (SCALE * (safe - rank)) // safe, 0)


def _lookup(keys: IntArray, table: dict[int, int]) -> IntArray:
    """table[key] for each key, -1 where absent (vectorised)."""
    if not table:
        return np.full(len(keys), -1, dtype=np.int64)
    known = np.array(sorted(table), dtype=np.int64)
    values = np.array([table[k] for k in known], dtype=np.int64)
    at = np.clip(np.searchsorted(known, keys), 0, len(known) - 1)
    return np.where(known[at] == keys, values[at], -1)


def score_pairs(instance: Instance, tables: Tables, pairs: Eligible) -> Scores:
    """Score every eligible pair with the policy's weights."""
    c, o = tables.candidates, tables.offers
    cand, offer = pairs.cand, pairs.offer
    n_offers = len(instance.offers)
    comps: dict[str, IntArray] = {}

    cand_texts = sorted({x.specialty for x in instance.candidates})
    offer_texts = sorted({x.specialty for x in instance.offers})
    matrix = specialty_matrix(cand_texts, offer_texts)
    cand_row = np.array([cand_texts.index(x.specialty) for x in instance.candidates], dtype=np.int64)
    offer_col = np.array([offer_texts.index(x.specialty) for x in instance.offers], dtype=np.int64)
    comps["specialty"] = matrix[cand_row[cand], offer_col[offer]] if len(cand) else np.zeros(0, dtype=np.int64)

    comps["language"] = np.minimum(c.cefr[cand] - o.min_cefr[offer], 2) * (SCALE // 2)

    dist = distance_km()[c.municipality[cand], o.municipality[offer]]
    reach = np.maximum(c.max_commute[cand], 1.0)
    comps["distance"] = np.floor(SCALE * np.clip(1.0 - dist / reach, 0.0, 1.0)).astype(np.int64)

    wish_rank: dict[int, int] = {}
    unit_offers: dict[str, list[int]] = {}
    for i, an_offer in enumerate(instance.offers):
        unit_offers.setdefault(an_offer.unit_id, []).append(i)
    wish_len = np.array([len(x.wishes) for x in instance.candidates], dtype=np.int64)
    for ci, person in enumerate(instance.candidates):
        for rank, wish in enumerate(person.wishes):
            for oi in [o.index[wish]] if wish in o.index else unit_offers.get(wish, []):
                wish_rank.setdefault(ci * n_offers + oi, rank)
    comps["wish"] = _rank_score(_lookup(cand * n_offers + offer, wish_rank), wish_len[cand])

    clinic_rank: dict[int, int] = {}
    rank_len = np.array([len(x.clinic_ranking) for x in instance.offers], dtype=np.int64)
    for oi, x in enumerate(instance.offers):
        for rank, cid in enumerate(x.clinic_ranking):
            clinic_rank[c.index[cid] * n_offers + oi] = rank
    comps["clinic"] = _rank_score(_lookup(cand * n_offers + offer, clinic_rank), rank_len[offer])

    waited = instance.round_date.toordinal() - c.ready[cand]
    comps["waiting"] = np.clip((waited * SCALE) // 730, 0, SCALE)

    gap = o.start_month[offer] - np.maximum(c.ready_month[cand], month_index(instance.round_date))
    comps["start"] = np.clip(SCALE - (np.maximum(gap, 0) * SCALE) // 12, 0, SCALE)

    weights = instance.policy.weights
    total = np.zeros(len(cand), dtype=np.int64)
    for name in COMPONENTS:
        comps[name] = comps[name].astype(np.int64)
        total += int(getattr(weights, name)) * comps[name]
    return Scores(components=comps, total=total)
