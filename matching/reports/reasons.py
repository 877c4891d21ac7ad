"""Why each unmatched candidate was left out: a first classification, from the final state of capacity and money."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from matching.model.solution import Assignment, Unmatched
from matching.rules.eligibility import check_pairs
from matching.rules.ledger import Ledger
from matching.rules.prepare import Prepared

CHECK_BATCH = 200_000  # (candidate, offer) pairs checked at once for the candidates without an eligible offer


def _rule_counts(prep: Prepared, candidates: list[int]) -> dict[int, dict[str, int]]:
    """Per candidate, per rule, how many offers of the candidate's profession it excludes (all offers if none share
    it). The candidates' pairs are checked in batches: one call per candidate took most of the explanations' time in
    national rounds."""
    t = prep.tables
    profession = np.array(t.offers.profession, dtype=object)
    every = np.arange(len(prep.instance.offers))
    offers_of: dict[object, np.ndarray] = {}
    for ci in candidates:
        key = t.candidates.profession[ci]
        if key not in offers_of:
            same = np.flatnonzero(profession == key)
            offers_of[key] = same if len(same) else every
    out: dict[int, dict[str, int]] = {}
    batch: list[int] = []
    size = 0
    for position, ci in enumerate(candidates):
        batch.append(ci)
        size += len(offers_of[t.candidates.profession[ci]])
        if size >= CHECK_BATCH or position == len(candidates) - 1:
            out.update(_count_batch(prep, batch, [offers_of[t.candidates.profession[c]] for c in batch]))
            batch, size = [], 0
    return out


def _count_batch(prep: Prepared, candidates: list[int], offers: list[np.ndarray]) -> dict[int, dict[str, int]]:
    """`_rule_counts` for one batch: the candidates' pairs in one check."""
    lengths = np.array([len(o) for o in offers], dtype=np.int64)
    cand = np.repeat(np.array(candidates, dtype=np.int64), lengths)
    checks = check_pairs(prep.instance, prep.tables, cand, np.concatenate(offers).astype(np.int64))
    owner = np.repeat(np.arange(len(candidates)), lengths)
    failed = {name: np.bincount(owner[~mask], minlength=len(candidates)) for name, mask in checks.rules.items()}
    out: dict[int, dict[str, int]] = {}
    for i, ci in enumerate(candidates):
        counts: Counter[str] = Counter()
        for name, per in failed.items():
            if per[i]:
                counts[name] = int(per[i])
        out[ci] = dict(counts)
    return out


def explain_unmatched(prep: Prepared, assignments: list[Assignment], ledger: Ledger) -> list[Unmatched]:
    """A reason for every candidate without a match."""
    inst, pairs = prep.instance, prep.pairs
    matched = {a.candidate_id for a in assignments}
    holders: dict[str, list[Assignment]] = {}
    for a in assignments:
        holders.setdefault(a.offer_id, []).append(a)
    bounds = np.searchsorted(pairs.cand, np.arange(len(inst.candidates) + 1))
    unmatched = np.array([c.id not in matched for c in inst.candidates], dtype=bool)
    rule_counts = _rule_counts(prep, [int(ci) for ci in np.flatnonzero(unmatched & (bounds[:-1] == bounds[1:]))])
    state = _PairState(prep, ledger, unmatched[pairs.cand])
    out = []
    for ci in np.flatnonzero(unmatched):
        cid, rows = inst.candidates[ci].id, np.arange(bounds[ci], bounds[ci + 1])
        if not len(rows):
            rules = rule_counts[int(ci)]
            out.append(
                Unmatched(
                    candidate_id=cid,
                    reason="no_eligible_offer",
                    detail="no offer passes every rule; most excluding: "
                    + ", ".join(f"{r} ({n})" for r, n in sorted(rules.items(), key=lambda kv: -kv[1])[:3]),
                    rules=rules,
                )
            )
        elif (k := int(state.first_paid[ci])) >= 0:
            offer_id = inst.offers[int(pairs.offer[k])].id
            out.append(
                Unmatched(
                    candidate_id=cid,
                    reason="not_selected",
                    detail=f"offer {offer_id} still has room and money; "
                    "the solver stopped before placing this candidate",
                    eligible_offers=len(rows),
                )
            )
        elif starved := state.starved.get(int(ci)):
            out.append(
                Unmatched(
                    candidate_id=cid,
                    reason="no_money",
                    detail="an eligible offer has room, but no programme that could pay has budget or cap left: "
                    + ", ".join(starved),
                    eligible_offers=len(rows),
                    programmes=starved,
                )
            )
        else:
            full = [(int(k), inst.offers[int(pairs.offer[k])].id) for k in rows[state.full[rows]]]
            out.append(_competition(prep, cid, rows, full, holders))
    return out


class _PairState:
    """Where the unmatched candidates' pairs stand in the final state, for all of them at once: the ledger does not
    change while they are explained, and at stress scale (40,000 unmatched candidates with 100 pairs each) a loop
    over their pairs took most of a minute.

    - `full`: the pair's offer has no slot left;
    - `first_paid`: per candidate, its first pair whose offer has a slot and a free supervisor for the stay, and a
      programme that can still pay its grant (-1: none); such a candidate was only not selected;
    - `starved`: per candidate without such a pair, the programmes (sorted ids) that could pay one of its pairs with
      a slot and a supervisor but have no budget or cap left for it."""

    def __init__(self, prep: Prepared, ledger: Ledger, asked: np.ndarray) -> None:
        inst, pairs = prep.instance, prep.pairs
        offer_full = np.array([ledger.offer_used[o.id] >= o.slots for o in inst.offers], dtype=bool)
        self.full = offer_full[pairs.offer]
        room = np.flatnonzero(asked & ~self.full)
        seated = np.zeros(len(pairs), dtype=bool)
        seated[room[_supervisor_free(prep, ledger, room)]] = True
        fund = np.flatnonzero(seated[pairs.fund_pair])
        paid_row = pairs.fund_grant[fund] <= _largest_grants(prep, ledger, fund)
        paid = np.unique(pairs.fund_pair[fund[paid_row]])
        self.first_paid = np.full(len(inst.candidates), -1, dtype=np.int64)
        cands, first = np.unique(pairs.cand[paid], return_index=True)  # pairs are sorted by candidate
        self.first_paid[cands] = paid[first]
        unpaid = fund[self.first_paid[pairs.cand[pairs.fund_pair[fund]]] < 0]
        m = len(inst.programmes)
        owner, programme = np.divmod(
            np.unique(pairs.cand[pairs.fund_pair[unpaid]] * m + pairs.fund_programme[unpaid]), m
        )
        self.starved: dict[int, list[str]] = {}
        for ci, g in zip(owner.tolist(), programme.tolist(), strict=True):
            self.starved.setdefault(ci, []).append(inst.programmes[g].id)
        for ids in self.starved.values():
            ids.sort()


def _supervisor_free(prep: Prepared, ledger: Ledger, rows: np.ndarray) -> np.ndarray:
    """For each of the pairs `rows`: some supervisor of its offer has a free seat for the whole stay."""
    pairs, offers, start = prep.pairs, prep.instance.offers, prep.tables.offers.start_month
    return _asked_once(
        pairs.offer[rows],
        pairs.months[rows],
        int(pairs.months.max(initial=0)) + 1,
        lambda o, m: ledger.free_supervisor(offers[o].id, int(start[o]), m) is not None,
    ).astype(bool)


def _largest_grants(prep: Prepared, ledger: Ledger, fund: np.ndarray) -> np.ndarray:
    """For each of the funding rows `fund`: the most its programme can still pay at its offer."""
    pairs, inst = prep.pairs, prep.instance
    return _asked_once(
        pairs.fund_programme[fund],
        pairs.offer[pairs.fund_pair[fund]],
        len(inst.offers),
        lambda g, o: ledger.largest_grant(inst.programmes[g].id, inst.offers[o].id),
    )


def _asked_once(first: np.ndarray, second: np.ndarray, span: int, ask: Callable[[int, int], int]) -> np.ndarray:
    """`ask(first[i], second[i])` for every i (second < span), asked of the ledger once per distinct pair of
    arguments: the ledger does not change while the unmatched are explained."""
    unique, back = np.unique(first * span + second, return_inverse=True)
    major, minor = np.divmod(unique, span)
    answers = [ask(a, b) for a, b in zip(major.tolist(), minor.tolist(), strict=True)]
    return np.array(answers, dtype=np.int64)[back]


def _competition(
    prep: Prepared, cid: str, rows: np.ndarray, full_offers: list[tuple[int, str]], holders: dict[str, list[Assignment]]
) -> Unmatched:
    """Out-competed at a full offer (by the closest rival), or no capacity at all."""
    best: tuple[int, str, Assignment] | None = None
    for k, offer_id in full_offers:
        mine = int(prep.scores.total[k])
        for rival in holders.get(offer_id, []):
            gap = rival.score - mine
            if best is None or gap < best[0]:
                best = (gap, offer_id, rival)
    if best is None:
        return Unmatched(
            candidate_id=cid,
            reason="no_capacity",
            detail="every eligible offer is out of slots or supervisor seats",
            eligible_offers=len(rows),
        )
    gap, offer_id, rival = best
    how = _rival_hold(prep, rival, gap)
    return Unmatched(
        candidate_id=cid,
        reason="out_competed",
        detail=f"offer {offer_id} went to {rival.candidate_id}, who {how}",
        eligible_offers=len(rows),
        competitor_id=rival.candidate_id,
        score_gap=gap,
    )


def _rival_hold(prep: Prepared, rival: Assignment, gap: int) -> str:
    """Why the rival holds the offer: the coordinator's pin, an earlier proposal kept, or the score."""
    pair = (rival.candidate_id, rival.offer_id)
    policy = prep.instance.policy
    if pair in {(p.candidate_id, p.offer_id) for p in policy.pins}:
        return "was pinned there"
    if gap >= 0:
        return f"scored {gap} more"
    if pair in {(p.candidate_id, p.offer_id) for p in policy.keep}:
        return f"scored {-gap} less but kept their earlier place there"
    return f"scored {-gap} less but had no other placement"
