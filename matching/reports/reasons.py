"""Why each unmatched candidate was left out: a first classification, from the final state of capacity and money."""

from __future__ import annotations

from collections import Counter

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
    fund_bounds = np.searchsorted(pairs.fund_pair, np.arange(len(pairs) + 1))  # funding rows are sorted by pair
    without = [ci for ci, cand in enumerate(inst.candidates) if cand.id not in matched and bounds[ci] == bounds[ci + 1]]
    rule_counts = _rule_counts(prep, without)
    checked = _Checked(ledger)
    out = []
    for ci, cand in enumerate(inst.candidates):
        if cand.id in matched:
            continue
        rows = np.arange(bounds[ci], bounds[ci + 1])
        if not len(rows):
            rules = rule_counts[ci]
            out.append(
                Unmatched(
                    candidate_id=cand.id,
                    reason="no_eligible_offer",
                    detail="no offer passes every rule; most excluding: "
                    + ", ".join(f"{r} ({n})" for r, n in sorted(rules.items(), key=lambda kv: -kv[1])[:3]),
                    rules=rules,
                )
            )
            continue
        out.append(_classify(prep, cand.id, rows, holders, ledger, fund_bounds, checked))
    return out


class _Checked:
    """The ledger's answers, asked once: the ledger does not change while the unmatched are explained, and at stress
    scale (40,000 unmatched candidates with 100 pairs each) asking it again for every pair took minutes."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.supervisor: dict[tuple[str, int, int], bool] = {}
        self.money: dict[tuple[str, str, int], bool] = {}

    def supervisor_free(self, offer_id: str, start: int, months: int) -> bool:
        """Some supervisor of the offer has a free seat for the whole stay."""
        key = (offer_id, start, months)
        if key not in self.supervisor:
            self.supervisor[key] = self.ledger.free_supervisor(offer_id, start, months) is not None
        return self.supervisor[key]

    def money_fits(self, programme_id: str, offer_id: str, grant: int) -> bool:
        """The programme can still pay the grant at the offer."""
        key = (programme_id, offer_id, grant)
        if key not in self.money:
            self.money[key] = self.ledger.money_fits(programme_id, offer_id, grant)
        return self.money[key]


def _classify(
    prep: Prepared,
    cid: str,
    rows: np.ndarray,
    holders: dict[str, list[Assignment]],
    ledger: Ledger,
    fund_bounds: np.ndarray,
    checked: _Checked,
) -> Unmatched:
    inst, pairs = prep.instance, prep.pairs
    starved: set[str] = set()
    full_offers: list[tuple[int, str]] = []
    for k in rows:
        offer = inst.offers[int(pairs.offer[k])]
        if ledger.offer_used[offer.id] >= offer.slots:
            full_offers.append((int(k), offer.id))
            continue
        start = int(prep.tables.offers.start_month[pairs.offer[k]])
        if not checked.supervisor_free(offer.id, start, int(pairs.months[k])):
            continue
        funders = np.arange(fund_bounds[k], fund_bounds[k + 1])
        progs = [inst.programmes[int(pairs.fund_programme[r])].id for r in funders]
        grants = [int(pairs.fund_grant[r]) for r in funders]
        if any(checked.money_fits(p, offer.id, g) for p, g in zip(progs, grants, strict=True)):
            return Unmatched(
                candidate_id=cid,
                reason="not_selected",
                detail=f"offer {offer.id} still has room and money; the solver stopped before placing this candidate",
                eligible_offers=len(rows),
            )
        starved.update(progs)
    if starved:
        return Unmatched(
            candidate_id=cid,
            reason="no_money",
            detail="an eligible offer has room, but no programme that could pay has budget or cap left: "
            + ", ".join(sorted(starved)),
            eligible_offers=len(rows),
            programmes=sorted(starved),
        )
    return _competition(prep, cid, rows, full_offers, holders)


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
