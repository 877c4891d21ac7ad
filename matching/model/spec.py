"""The one model of a round: a vectorised, labelled specification built once from `Prepared`.

Columns come in blocks: `x` one per eligible pair (matched or not), `z` one per supervisor option row (this
supervisor takes this pair), `y` one per funding row (this programme pays this pair, drawing on this earmark) and
`overflow` one per (programme, earmark): what the earmark's matches spend beyond the earmark, out of general money.
Rows are one sparse matrix, `lb <= A v <= ub`, each labelled with its kind, owner and detail, and flagged where it
can bind at all (see `matching.rules.prepare`). Objective tiers are typed values per pair, most important first.

Every backend and report reads this: the LP/MIP backend loads the matrix in bulk, CP-SAT adds its rows, shadow
prices name rows by label, the reference MIP is the full matrix, and `violations` checks a solution's columns
against every row. Nothing writes the rows a second time.

The *core* (`Spec.core`) keeps only what can matter: rows that can bind and the columns they need. A pair with a
supervisor (or programme) that can never run out needs no `z` (or `y`) columns: it takes the free one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import LinearConstraint

from matching.input.validate import InvalidInstance, Issue
from matching.model.side import floor_rows
from matching.model.stability import TooManyTerms, no_blocking
from matching.rules.limits import NO_CAP
from matching.rules.prepare import Prepared
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.greedy import pinned_pairs

# Kinds of row, in the order they are written.
CANDIDATE, OFFER = "candidate", "offer"
SUPERVISOR_CHOICE, FUNDING_CHOICE = "supervisor_choice", "funding_choice"
SUPERVISOR = "supervisor"  # one per supervisor and month at which their seats can be tightest
BUDGET, GENERAL, EARMARK, UNIT_CAP = "budget", "general", "earmark", "unit_cap"
FLOOR, NO_BLOCKING = "floor", "no_blocking"
KINDS = (
    CANDIDATE,
    OFFER,
    SUPERVISOR_CHOICE,
    FUNDING_CHOICE,
    SUPERVISOR,
    BUDGET,
    GENERAL,
    EARMARK,
    UNIT_CAP,
    FLOOR,
    NO_BLOCKING,
)
# Owner of a row by kind (detail in brackets): candidate, offer, pair, pair, supervisor (month), programme,
# programme, programme (earmark), programme (unit), floor, pair guarded against blocking.


class Tier(NamedTuple):
    """One objective tier: a value per pair, maximised in order of priority."""

    name: str
    values: IntArray


def kept_pairs(prep: Prepared) -> IntArray:
    """Per pair, 1 when the policy asks to keep it (an earlier proposal), else 0."""
    t, pairs, width = prep.tables, prep.pairs, max(1, len(prep.instance.offers))
    keep = prep.instance.policy.keep
    wanted = [t.candidates.index[p.candidate_id] * width + t.offers.index[p.offer_id] for p in keep]
    return np.isin(pairs.cand * width + pairs.offer, wanted).astype(np.int64)


def objective_tiers(prep: Prepared) -> list[Tier]:
    """Per-pair values of each objective tier, most important first."""
    policy = prep.instance.policy
    score = prep.scores.total
    kept = kept_pairs(prep) if policy.keep else None
    if policy.objective == "weighted":
        bonus = policy.keep_value * kept if kept is not None else 0
        return [Tier("weighted", score + policy.placement_value + bonus)]
    # Keeping earlier proposals outranks everything: a re-run changes only what it must.
    tiers = [Tier("kept", kept)] if kept is not None else []
    tiers.append(Tier("placements", np.ones(len(score), dtype=np.int64)))
    if policy.waiting_priority:
        tiers.append(Tier("waiting", prep.waiting_days.astype(np.int64)))
    tiers.append(Tier("score", score))
    return tiers


@dataclass
class _Coo:
    """Rows written block by block in coordinate form."""

    rows: list[IntArray] = field(default_factory=list)
    cols: list[IntArray] = field(default_factory=list)
    vals: list[FloatArray] = field(default_factory=list)
    lb: list[FloatArray] = field(default_factory=list)
    ub: list[FloatArray] = field(default_factory=list)
    kind: list[npt.NDArray[np.int8]] = field(default_factory=list)
    owner: list[IntArray] = field(default_factory=list)
    detail: list[IntArray] = field(default_factory=list)
    binding: list[BoolArray] = field(default_factory=list)
    n_rows: int = 0

    def block(
        self,
        kind: str,
        row: IntArray,
        col: IntArray,
        val: FloatArray | IntArray | float,
        *,
        owner: IntArray,
        lb: FloatArray | float,
        ub: FloatArray | float,
        binding: BoolArray | bool,
        detail: IntArray | int = -1,
    ) -> None:
        """Rows 0..len(owner)-1 of a new block; entry i adds val[i] * v[col[i]] to block row row[i]."""
        n = len(owner)
        self.rows.append(np.asarray(row, dtype=np.int64) + self.n_rows)
        self.cols.append(np.asarray(col, dtype=np.int64))
        self.vals.append(np.broadcast_to(np.asarray(val, dtype=np.float64), (len(self.cols[-1]),)))
        self.lb.append(np.broadcast_to(np.asarray(lb, dtype=np.float64), (n,)))
        self.ub.append(np.broadcast_to(np.asarray(ub, dtype=np.float64), (n,)))
        self.kind.append(np.full(n, KINDS.index(kind), dtype=np.int8))
        self.owner.append(np.asarray(owner, dtype=np.int64))
        self.detail.append(np.broadcast_to(np.asarray(detail, dtype=np.int64), (n,)))
        self.binding.append(np.broadcast_to(np.asarray(binding, dtype=bool), (n,)))
        self.n_rows += n


def _cat(parts: Sequence[npt.NDArray[Any]], dtype: type) -> Any:
    """The parts as one array of `dtype` (empty when there are none)."""
    # copy=False: the concatenation is already a new array; a second copy of the round's ~100 M entries (stress
    # scale) would add gigabytes to the peak.
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


@dataclass(frozen=True)
class Rows:
    """The constraint rows lb <= A v <= ub with their labels."""

    matrix: sp.csr_matrix  # float64; csr_matrix (not csr_array) because OR-Tools' bulk loader takes that type
    lb: FloatArray
    ub: FloatArray
    kind: npt.NDArray[np.int8]  # index into KINDS
    owner: IntArray
    detail: IntArray  # month, earmark or unit; -1 where there is none
    binding: BoolArray  # the row can bind (some solution would break it if it were left out)

    def __len__(self) -> int:
        return len(self.lb)


@dataclass(frozen=True)
class Core:
    """The part of a spec that can matter: binding rows over the columns they need."""

    columns: IntArray  # spec columns kept, in order
    rows: IntArray  # spec rows kept, in order
    matrix: sp.csr_matrix
    lb: FloatArray
    ub: FloatArray
    var_lb: FloatArray
    var_ub: FloatArray
    integer: BoolArray


@dataclass(frozen=True)
class Spec:
    """Every variable, row and objective tier of a round (see the module docstring)."""

    prep: Prepared
    rows: Rows
    tiers: list[Tier]
    marks: list[tuple[int, int]]  # per overflow column: (programme, earmark)
    var_lb: FloatArray
    var_ub: FloatArray
    integer: BoolArray
    needed: BoolArray  # per column: some binding row needs it

    # --- blocks ---------------------------------------------------------------------------------------------------

    @property
    def n_pairs(self) -> int:
        """Columns of the x block."""
        return len(self.prep.pairs)

    @property
    def sup_at(self) -> int:
        """First column of the z block."""
        return self.n_pairs

    @property
    def fund_at(self) -> int:
        """First column of the y block."""
        return self.sup_at + len(self.prep.supervisors.pair)

    @property
    def over_at(self) -> int:
        """First column of the overflow block."""
        return self.fund_at + len(self.prep.pairs.fund_pair)

    @property
    def n_vars(self) -> int:
        """All columns."""
        return len(self.var_lb)

    # --- rows by label --------------------------------------------------------------------------------------------

    def where(self, kind: str, owner: int | None = None, detail: int | None = None) -> IntArray:
        """Indexes of the rows of one kind (and owner, and detail)."""
        mask = self.rows.kind == KINDS.index(kind)
        if owner is not None:
            mask &= self.rows.owner == owner
        if detail is not None:
            mask &= self.rows.detail == detail
        return np.flatnonzero(mask).astype(np.int64)

    def label(self, row: int) -> str:
        """A row in words, e.g. "budget of programme P1" or "seats of supervisor S3 in 2027-03"."""
        from matching.input.months import month_label

        inst = self.prep.instance
        kind, owner, detail = KINDS[int(self.rows.kind[row])], int(self.rows.owner[row]), int(self.rows.detail[row])
        pairs = self.prep.pairs
        if kind == CANDIDATE:
            return f"one offer for candidate {inst.candidates[owner].id}"
        if kind == OFFER:
            return f"slots of offer {inst.offers[owner].id}"
        if kind in (SUPERVISOR_CHOICE, FUNDING_CHOICE, NO_BLOCKING):
            pair = f"{inst.candidates[int(pairs.cand[owner])].id} at {inst.offers[int(pairs.offer[owner])].id}"
            what = {SUPERVISOR_CHOICE: "one supervisor for", FUNDING_CHOICE: "one programme paying for"}
            return f"{what.get(kind, 'no blocking pair')} {pair}"
        if kind == SUPERVISOR:
            return f"seats of supervisor {inst.supervisors[owner].id} in {month_label(detail)}"
        if kind == FLOOR:
            floor = inst.policy.floors[owner]
            return f"floor {floor.group}={floor.value}"
        prog = inst.programmes[owner].id
        if kind == EARMARK:
            return f"earmark {inst.programmes[owner].earmarks[detail].id} of programme {prog}"
        if kind == UNIT_CAP:
            return f"cap of programme {prog} at unit {inst.units[detail].id}"
        return f"{'budget' if kind == BUDGET else 'general money'} of programme {prog}"

    # --- objective and solutions ----------------------------------------------------------------------------------

    def objective(self, values: IntArray | FloatArray) -> FloatArray:
        """Per column, the coefficient that maximises `values` of the pairs."""
        c = np.zeros(self.n_vars, dtype=np.float64)
        c[: self.n_pairs] = np.asarray(values, dtype=np.float64)
        return c

    def vector(self, pair: IntArray, supervisor: IntArray, fund_row: IntArray) -> FloatArray:
        """The column values of a solution: chosen pairs with their supervisor index and funding row."""
        prep = self.prep
        v = np.zeros(self.n_vars, dtype=np.float64)
        pair = np.asarray(pair, dtype=np.int64)
        v[pair] = 1.0
        opts = prep.supervisors
        n_sup = max(1, len(prep.instance.supervisors))
        keys = opts.pair * n_sup + opts.choice  # sorted: option rows are sorted by pair, then supervisor
        at = np.searchsorted(keys, pair * n_sup + np.asarray(supervisor, dtype=np.int64))
        found = at < len(keys)
        found[found] = keys[at[found]] == (pair * n_sup + np.asarray(supervisor, dtype=np.int64))[found]
        v[self.sup_at + at[found]] = 1.0
        fund_row = np.asarray(fund_row, dtype=np.int64)
        v[self.fund_at + fund_row] = 1.0
        grant = prep.pairs.fund_grant
        limits = prep.tables.limits
        for i, (g, k) in enumerate(self.marks):
            drawn = fund_row[(prep.pairs.fund_programme[fund_row] == g) & (prep.pairs.fund_earmark[fund_row] == k)]
            v[self.over_at + i] = max(0.0, float(grant[drawn].sum()) - float(limits.earmark_left[g][k]))
        return v

    def choices(self, v: FloatArray) -> tuple[IntArray, IntArray, IntArray]:
        """Chosen pairs (x > 0.5) with, for each, the supervisor and funding row whose column is largest; a free
        supervisor or programme where the solution left the pair's choice open."""
        chosen = np.flatnonzero(v[: self.n_pairs] > 0.5).astype(np.int64)
        return chosen, self._pick(v, chosen, True), self._pick(v, chosen, False)

    def _pick(self, v: FloatArray, chosen: IntArray, supervisor: bool) -> IntArray:
        """Per chosen pair, its supervisor index (or funding row) with the largest column, else the free one."""
        prep = self.prep
        owner = prep.supervisors.pair if supervisor else prep.pairs.fund_pair
        start = self.sup_at if supervisor else self.fund_at
        value = v[start : start + len(owner)]
        best = np.full(self.n_pairs, -1, dtype=np.int64)
        if len(owner):
            # Largest value per pair: sort by (pair, -value) and take each pair's first row (earlier rows win ties).
            order = np.lexsort((np.arange(len(owner)), -np.round(value, 6), owner))
            first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
            usable = first[value[first] > 0.5]
            best[owner[usable]] = usable
        row = best[chosen]
        if supervisor:
            named = prep.supervisors.choice[np.maximum(row, 0)] if len(prep.supervisors.choice) else row
            return np.where(row >= 0, named, prep.free_supervisor[chosen]).astype(np.int64)
        return np.where(row >= 0, row, prep.free_programme[chosen]).astype(np.int64)

    def violations(self, v: FloatArray, tolerance: float = 1e-6) -> IntArray:
        """Rows that the column values break."""
        activity = self.rows.matrix @ v
        return np.flatnonzero((activity < self.rows.lb - tolerance) | (activity > self.rows.ub + tolerance)).astype(
            np.int64
        )

    # --- the part that matters ------------------------------------------------------------------------------------

    def core(self) -> Core:
        """Binding rows over the columns they need (every x column is kept, so tiers read the same)."""
        columns = np.flatnonzero(self.needed).astype(np.int64)
        rows = np.flatnonzero(self.rows.binding).astype(np.int64)
        matrix = self.rows.matrix[rows][:, columns].tocsr()
        return Core(
            columns=columns,
            rows=rows,
            matrix=sp.csr_matrix(matrix),
            lb=self.rows.lb[rows],
            ub=self.rows.ub[rows],
            var_lb=self.var_lb[columns],
            var_ub=self.var_ub[columns],
            integer=self.integer[columns],
        )


# --- the model for scipy's solvers ---------------------------------------------------------------------------------


@dataclass
class LinearRows:
    """The spec's rows plus rows added for one use (tiers held at a level), for scipy.optimize."""

    spec: Spec
    extra_cols: list[IntArray] = field(default_factory=list)
    extra_vals: list[FloatArray] = field(default_factory=list)
    extra_lb: list[float] = field(default_factory=list)
    extra_ub: list[float] = field(default_factory=list)

    def add(self, cols: IntArray, vals: IntArray | FloatArray, lb: float, ub: float) -> None:
        """One more row: lb <= sum(vals * v[cols]) <= ub."""
        self.extra_cols.append(np.asarray(cols, dtype=np.int64))
        self.extra_vals.append(np.asarray(vals, dtype=np.float64))
        self.extra_lb.append(float(lb))
        self.extra_ub.append(float(ub))

    @property
    def lb(self) -> FloatArray:
        """Lower sides of every row."""
        return np.concatenate([self.spec.rows.lb, np.array(self.extra_lb, dtype=np.float64)])

    @property
    def ub(self) -> FloatArray:
        """Upper sides of every row."""
        return np.concatenate([self.spec.rows.ub, np.array(self.extra_ub, dtype=np.float64)])

    def matrix(self) -> sp.csr_matrix:
        """Every row's coefficients."""
        if not self.extra_cols:
            return self.spec.rows.matrix
        row = np.concatenate([np.full(len(c), i, dtype=np.int64) for i, c in enumerate(self.extra_cols)])
        extra = sp.csr_matrix(
            (np.concatenate(self.extra_vals), (row, np.concatenate(self.extra_cols))),
            shape=(len(self.extra_cols), self.spec.n_vars),
        )
        return sp.csr_matrix(sp.vstack([self.spec.rows.matrix, extra], format="csr"))

    def constraint(self) -> LinearConstraint:
        """The rows as one scipy constraint."""
        return LinearConstraint(self.matrix(), self.lb, self.ub)


@dataclass
class LinearModel:
    """The spec for scipy.optimize.milp / linprog (minimisation), with room for held tiers."""

    spec: Spec
    rows: LinearRows

    @property
    def prep(self) -> Prepared:
        """The prepared round."""
        return self.spec.prep

    @property
    def var_lb(self) -> FloatArray:
        """Column lower bounds (pins at 1)."""
        return self.spec.var_lb

    @property
    def var_ub(self) -> FloatArray:
        """Column upper bounds."""
        return self.spec.var_ub

    @property
    def integrality(self) -> IntArray:
        """1 for integer columns, 0 for continuous ones."""
        return self.spec.integer.astype(np.int64)

    @property
    def n_vars(self) -> int:
        """All columns."""
        return self.spec.n_vars

    @property
    def sup_at(self) -> int:
        """First supervisor column."""
        return self.spec.sup_at

    @property
    def fund_at(self) -> int:
        """First funding column."""
        return self.spec.fund_at

    def objective(self, values: IntArray) -> FloatArray:
        """Minimisation costs that maximise `values` over the pair columns."""
        return -self.spec.objective(values)


def linear_model(prep: Prepared) -> LinearModel:
    """The round's full model (every row and column) for scipy's HiGHS."""
    spec = build_spec(prep, objective_tiers(prep))
    return LinearModel(spec, LinearRows(spec))


# --- building -----------------------------------------------------------------------------------------------------


def build_spec(prep: Prepared, tiers: list[Tier]) -> Spec:
    """The round's model (InvalidInstance when the no-blocking rows are too large, rule stable_model_size)."""
    pairs, opts = prep.pairs, prep.supervisors
    n, n_sup, n_fund = len(pairs), len(opts.pair), len(pairs.fund_pair)
    marks = [(g, k) for g, prog in enumerate(prep.instance.programmes) for k in range(len(prog.earmarks))]
    sup_at, fund_at = n, n + n_sup
    over_at = fund_at + n_fund
    n_vars = over_at + len(marks)
    sup_modelled = prep.free_supervisor[opts.pair] < 0 if n_sup else np.zeros(0, dtype=bool)
    fund_modelled = prep.free_programme[pairs.fund_pair] < 0 if n_fund else np.zeros(0, dtype=bool)
    coo = _Coo()
    _assignment_rows(prep, coo)
    _choice_rows(coo, SUPERVISOR_CHOICE, n, opts.pair, sup_at, prep.free_supervisor < 0)
    _choice_rows(coo, FUNDING_CHOICE, n, pairs.fund_pair, fund_at, prep.free_programme < 0)
    _seat_rows(prep, coo, sup_at, sup_modelled)
    _money_rows(prep, coo, fund_at, over_at, marks)
    _side_rows(prep, coo)
    matrix = sp.csr_matrix(
        (
            _cat(coo.vals, np.float64),
            (_cat(coo.rows, np.int64), _cat(coo.cols, np.int64)),
        ),
        shape=(coo.n_rows, n_vars),
    )
    rows = Rows(
        matrix=matrix,
        lb=_cat(coo.lb, np.float64),
        ub=_cat(coo.ub, np.float64),
        kind=_cat(coo.kind, np.int8),
        owner=_cat(coo.owner, np.int64),
        detail=_cat(coo.detail, np.int64),
        binding=_cat(coo.binding, bool),
    )
    var_lb = np.zeros(n_vars, dtype=np.float64)
    var_ub = np.ones(n_vars, dtype=np.float64)
    limits = prep.tables.limits
    for i, (g, _) in enumerate(marks):
        var_ub[over_at + i] = float(limits.budget_left(g) + 1)
    var_lb[pinned_pairs(prep)] = 1.0
    integer = np.ones(n_vars, dtype=bool)
    integer[over_at:] = False
    needed = np.ones(n_vars, dtype=bool)
    needed[sup_at:fund_at] = sup_modelled
    needed[fund_at:over_at] = fund_modelled
    needed[over_at:] = np.array([bool(prep.budget_binding[g]) for g, _ in marks], dtype=bool)
    return Spec(prep, rows, tiers, marks, var_lb, var_ub, integer, needed)


def _counts(keys: IntArray, size: int) -> IntArray:
    return np.bincount(keys, minlength=size).astype(np.int64)


def _assignment_rows(prep: Prepared, coo: _Coo) -> None:
    """Each candidate at most one offer, each offer at most its slots."""
    pairs = prep.pairs
    n, n_cands, n_offers = len(pairs), len(prep.instance.candidates), len(prep.instance.offers)
    k = np.arange(n)
    slots = prep.tables.offers.slots
    coo.block(
        CANDIDATE,
        pairs.cand,
        k,
        1.0,
        owner=np.arange(n_cands),
        lb=0.0,
        ub=1.0,
        binding=_counts(pairs.cand, n_cands) > 1,
    )
    at_offer = _counts(pairs.offer, n_offers)
    coo.block(
        OFFER,
        pairs.offer,
        k,
        1.0,
        owner=np.arange(n_offers),
        lb=0.0,
        ub=slots.astype(np.float64),
        binding=at_offer > slots,
    )


def _choice_rows(coo: _Coo, kind: str, n: int, pair_of_row: IntArray, first: int, binding: BoolArray) -> None:
    """A chosen pair takes exactly one of its option rows; an unchosen pair none."""
    entries = len(pair_of_row)
    row = np.concatenate([np.arange(n), pair_of_row])
    col = np.concatenate([np.arange(n), first + np.arange(entries)])
    val = np.concatenate([-np.ones(n), np.ones(entries)])
    coo.block(kind, row, col, val, owner=np.arange(n), lb=0.0, ub=0.0, binding=binding)


def _seat_rows(prep: Prepared, coo: _Coo, sup_at: int, modelled: BoolArray) -> None:
    """Each supervisor's concurrent trainees within the free seats, at every month where they can be tightest."""
    seats = prep.seat_rows
    if not seats:
        return
    lengths = np.array([len(s.rows) for s in seats], dtype=np.int64)
    members = np.concatenate([s.rows for s in seats]).astype(np.int64)
    row = np.repeat(np.arange(len(seats)), lengths)
    free = np.array([max(0, s.seats) for s in seats], dtype=np.float64)
    # A row binds when more modelled option rows could use its seats than it has.
    users = np.bincount(row, weights=modelled[members].astype(np.float64), minlength=len(seats))
    coo.block(
        SUPERVISOR,
        row,
        sup_at + members,
        1.0,
        owner=np.array([s.supervisor for s in seats], dtype=np.int64),
        lb=0.0,
        ub=free,
        binding=users > free,
        detail=np.array([s.month for s in seats], dtype=np.int64),
    )


def _money_rows(prep: Prepared, coo: _Coo, fund_at: int, over_at: int, marks: list[tuple[int, int]]) -> None:
    """Budgets with earmarks spent first (their overflow drawn from general money), and per-unit caps by size class,
    each counting what earlier rounds' commitments left."""
    pairs, limits = prep.pairs, prep.tables.limits
    n_prog, n_units = len(prep.instance.programmes), len(prep.instance.units)
    prog, mark = pairs.fund_programme, pairs.fund_earmark
    grant = pairs.fund_grant.astype(np.float64)
    rows = np.arange(len(pairs.fund_pair))
    paying = np.unique(prog)
    slot = np.full(n_prog, -1, dtype=np.int64)
    slot[paying] = np.arange(len(paying))
    budget_left = np.array([float(limits.budget_left(int(g))) for g in paying], dtype=np.float64)
    binds = prep.budget_binding[paying]
    coo.block(BUDGET, slot[prog], fund_at + rows, grant, owner=paying, lb=0.0, ub=budget_left, binding=binds)
    # General money: grants without an earmark plus every earmark's overflow.
    plain = rows[mark[rows] < 0]
    mark_prog = np.array([g for g, _ in marks], dtype=np.int64)
    over_cols = np.flatnonzero(slot[mark_prog] >= 0) if len(marks) else np.zeros(0, dtype=np.int64)
    coo.block(
        GENERAL,
        np.concatenate([slot[prog[plain]], slot[mark_prog[over_cols]]]),
        np.concatenate([fund_at + plain, over_at + over_cols]),
        np.concatenate([grant[plain], np.ones(len(over_cols))]),
        owner=paying,
        lb=-math.inf,
        ub=limits.general_left[paying].astype(np.float64),
        binding=binds,
    )
    # Earmark k of g: overflow >= spend - left, i.e. overflow - spend >= -left (for paying programmes only).
    kept = [i for i, (g, _) in enumerate(marks) if slot[g] >= 0]
    mark_row = np.full((n_prog, max([1, *(k + 1 for _, k in marks)])), -1, dtype=np.int64)
    for r, i in enumerate(kept):
        mark_row[marks[i][0], marks[i][1]] = r
    drawn = rows[mark[rows] >= 0]
    drawn = drawn[mark_row[prog[drawn], mark[drawn]] >= 0]
    coo.block(
        EARMARK,
        np.concatenate([np.arange(len(kept)), mark_row[prog[drawn], mark[drawn]]]),
        np.concatenate([over_at + np.array(kept, dtype=np.int64), fund_at + drawn]),
        np.concatenate([np.ones(len(kept)), -grant[drawn]]),
        owner=np.array([marks[i][0] for i in kept], dtype=np.int64),
        lb=-np.array([float(limits.earmark_left[marks[i][0]][marks[i][1]]) for i in kept], dtype=np.float64),
        ub=math.inf,
        binding=np.array([bool(prep.budget_binding[marks[i][0]]) for i in kept], dtype=bool),
        detail=np.array([marks[i][1] for i in kept], dtype=np.int64),
    )
    unit = prep.tables.offers.unit[pairs.offer[pairs.fund_pair]]
    cap = limits.unit_cap_left[prog, unit] if len(rows) else np.zeros(0, dtype=np.int64)
    capped = rows[cap != NO_CAP]
    keys, at = np.unique(prog[capped] * max(1, n_units) + unit[capped], return_inverse=True)
    g_of, u_of = keys // max(1, n_units), keys % max(1, n_units)
    coo.block(
        UNIT_CAP,
        at.reshape(-1),
        fund_at + capped,
        grant[capped],
        owner=g_of,
        lb=0.0,
        ub=limits.unit_cap_left[g_of, u_of].astype(np.float64),
        binding=prep.unit_cap_binding[g_of, u_of],
        detail=u_of,
    )


def _side_rows(prep: Prepared, coo: _Coo) -> None:
    """Floors per group, and rows against blocking pairs when the policy forbids them."""
    floors = floor_rows(prep)
    if floors:
        coo.block(
            FLOOR,
            np.concatenate([np.full(len(p), i, dtype=np.int64) for i, (p, _, _) in enumerate(floors)]),
            np.concatenate([p for p, _, _ in floors]),
            np.concatenate([c for _, c, _ in floors]).astype(np.float64),
            owner=np.arange(len(floors)),
            lb=np.array([float(r) for _, _, r in floors]),
            ub=math.inf,
            binding=True,
        )
    if prep.instance.policy.forbid_blocking:
        try:
            rows = no_blocking(prep)
        except TooManyTerms as exc:
            raise InvalidInstance([Issue("policy", None, "forbid_blocking", "stable_model_size", str(exc))]) from None
        coo.block(
            NO_BLOCKING,
            rows.row,
            rows.col,
            rows.coef.astype(np.float64),
            owner=rows.pair,
            lb=rows.rhs.astype(np.float64),
            ub=math.inf,
            binding=True,
        )
