"""The round as one sparse matrix, for the strategies that work on rows and columns (column generation, Lagrangian
relaxation, neighbourhood search, decomposition).

Columns, in four blocks:

- `x`: one per pair whose money can never run out (it takes a free programme);
- `z`: one per supervisor option of a pair with several supervisors who can all run out of seats (a pair with one
  such supervisor carries its seats itself; a pair with a free supervisor takes that one);
- `y`: one per funding row of every other pair. Such a pair has no `x`: each of its `y` columns places it (carries
  its candidate, offer, seat and side entries), so the LP needs no `x = sum y` rows and column generation can price
  (pair, programme) columns one by one;
- `o`: per (programme, earmark) of a programme whose budget binds, the earmarked spending that overflows into the
  programme's general money (earmarks are spent first).

`placed` maps columns to the pair they place. Rows, each with a kind and an owner: a candidate at most once, an
offer within its slots, a pair's supervisor choice (`placed - sum z = 0`), a supervisor's seats in a month, a
programme's budget, its general money and each earmark, a (programme, unit) cap, pins and the policy's side rows.
Only what can bind is modelled (the analysis of `matching.rules.prepare`). The one model of the round is
`matching.model.spec`; this is its compact form for strategies that price and restrict columns: national rounds
have 15,600 rows here against about 150,000 with an `x` and a choice row per pair, which is what makes the LP
fast enough to repeat.

A sub-model keeps some columns and moves the others to the right-hand side at their values
(`matching.solvers.lns.sub_model`): that is a neighbourhood or an independent part; a column-generation master keeps
some columns at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from matching.model.side import side_rows
from matching.rules.prepare import Prepared
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.greedy import Pick, pinned_pairs

ROW_KINDS = (
    "candidate",
    "offer",
    "supervisor_choice",
    "seats",
    "budget",
    "general",
    "earmark",
    "unit_cap",
    "pin",
    "side",
    "held",
)
KIND = {name: i for i, name in enumerate(ROW_KINDS)}


@dataclass
class _Triplets:
    """Rows collected as (row, column, value) triplets, with bounds and labels where `bounds` is set."""

    rows: list[IntArray] = field(default_factory=list)
    cols: list[IntArray] = field(default_factory=list)
    vals: list[FloatArray] = field(default_factory=list)
    lb: list[FloatArray] = field(default_factory=list)
    ub: list[FloatArray] = field(default_factory=list)
    kind: list[IntArray] = field(default_factory=list)
    owner: list[IntArray] = field(default_factory=list)
    count: int = 0

    def block(
        self,
        row: npt.NDArray[Any],
        col: npt.NDArray[Any],
        val: npt.NDArray[Any],
        lb: npt.NDArray[Any] | float,
        ub: npt.NDArray[Any] | float,
        kind: str,
        owner: npt.NDArray[Any],
        n_rows: int,
        *,
        bounds: bool = True,
    ) -> None:
        """`n_rows` new rows; entry i goes to new row `row[i]` (0-based within the block)."""
        self.rows.append(np.asarray(row, dtype=np.int64) + self.count)
        self.cols.append(np.asarray(col, dtype=np.int64))
        self.vals.append(np.asarray(val, dtype=np.float64))
        if bounds:
            self.lb.append(np.broadcast_to(np.asarray(lb, dtype=np.float64), (n_rows,)).copy())
            self.ub.append(np.broadcast_to(np.asarray(ub, dtype=np.float64), (n_rows,)).copy())
            self.kind.append(np.full(n_rows, KIND[kind], dtype=np.int64))
            self.owner.append(np.broadcast_to(np.asarray(owner, dtype=np.int64), (n_rows,)).copy())
        self.count += n_rows

    def skip(self, n_rows: int) -> None:
        """Rows with no entries here (their entries and labels are in the other set)."""
        self.count += n_rows

    def matrix(self, n_cols: int) -> sp.csr_array:
        """The entries as a CSR matrix of `count` rows."""
        return sp.csr_array(
            (self.cat(self.vals, np.float64), (self.cat(self.rows, np.int64), self.cat(self.cols, np.int64))),
            shape=(self.count, n_cols),
        )

    @staticmethod
    def cat(parts: list[npt.NDArray[Any]], dtype: type) -> npt.NDArray[Any]:
        """Concatenated parts (empty when none)."""
        return np.concatenate([*parts, np.zeros(0, dtype=dtype)]).astype(dtype)


@dataclass(frozen=True)
class RoundMatrix:
    """`lb <= A w <= ub` over the columns x, z, y, o (see the module docstring), with column bounds."""

    prep: Prepared
    a: sp.csr_array
    lb: FloatArray
    ub: FloatArray
    kind: IntArray  # per row, an index into ROW_KINDS
    owner: IntArray  # per row: the candidate, offer, pair, supervisor, programme, ... it belongs to
    col_lb: FloatArray
    col_ub: FloatArray
    integer: BoolArray
    x_pairs: IntArray  # x columns: pairs with a programme that never runs out of money
    sup_rows: IntArray  # z columns: indexes into prep.supervisors
    fund_rows: IntArray  # y columns: indexes into prep.pairs.fund_*
    overflow: list[tuple[int, int]]  # o columns: (programme, earmark)
    placed: sp.csr_array  # pairs x columns: 1 where the column places the pair (its x, or one of its y)
    single_supervisor: IntArray  # per pair, its only supervisor that can run out of seats, else -1

    @property
    def n_pairs(self) -> int:
        """Number of eligible pairs."""
        return len(self.prep.pairs)

    @property
    def z_at(self) -> int:
        """First z column."""
        return len(self.x_pairs)

    @property
    def y_at(self) -> int:
        """First y column."""
        return self.z_at + len(self.sup_rows)

    @property
    def o_at(self) -> int:
        """First o column."""
        return self.y_at + len(self.fund_rows)

    @property
    def n_cols(self) -> int:
        """Number of columns."""
        return self.o_at + len(self.overflow)

    @property
    def column_pair(self) -> IntArray:
        """Per column the pair it belongs to (-1 for overflow columns)."""
        sups, pairs = self.prep.supervisors, self.prep.pairs
        tail = np.full(len(self.overflow), -1, dtype=np.int64)
        return np.concatenate([self.x_pairs, sups.pair[self.sup_rows], pairs.fund_pair[self.fund_rows], tail])

    def objective(self, values: IntArray | FloatArray) -> FloatArray:
        """Per column, the value (given per pair) of placing its pair."""
        return np.asarray(self.placed.T @ np.asarray(values, dtype=np.float64), dtype=np.float64)

    def pair_values(self, w: FloatArray) -> FloatArray:
        """Per pair, how much of it the column values place."""
        return np.asarray(self.placed @ w, dtype=np.float64)

    def with_rows(self, rows: list[tuple[IntArray, FloatArray, float, float]], kind: str = "held") -> RoundMatrix:
        """The matrix with rows over pairs added (`held`: earlier tiers kept at their value)."""
        if not rows:
            return self
        extra = sp.csr_array(
            (
                np.concatenate([v for _, v, _, _ in rows]),
                (np.repeat(np.arange(len(rows)), [len(p) for p, *_ in rows]), np.concatenate([p for p, *_ in rows])),
            ),
            shape=(len(rows), self.n_pairs),
        )
        return _replace(
            self,
            a=sp.csr_array(sp.vstack([self.a, extra @ self.placed], format="csr")),
            lb=np.concatenate([self.lb, [r[2] for r in rows]]),
            ub=np.concatenate([self.ub, [r[3] for r in rows]]),
            kind=np.concatenate([self.kind, np.full(len(rows), KIND[kind])]),
            owner=np.concatenate([self.owner, np.arange(len(rows))]),
        )

    def columns_of(self, picks: list[Pick]) -> FloatArray:
        """The column values of a set of picks (overflow at the least it needs)."""
        w = np.zeros(self.n_cols, dtype=np.float64)
        if not picks:
            return w
        x_col = np.full(self.n_pairs, -1, dtype=np.int64)
        x_col[self.x_pairs] = np.arange(len(self.x_pairs))
        y_col = np.full(len(self.prep.pairs.fund_pair), -1, dtype=np.int64)
        y_col[self.fund_rows] = self.y_at + np.arange(len(self.fund_rows))
        sups = self.prep.supervisors
        z_key = {(int(sups.pair[r]), int(sups.choice[r])): self.z_at + j for j, r in enumerate(self.sup_rows.tolist())}
        for p in picks:
            col = x_col[p.pair] if x_col[p.pair] >= 0 else y_col[p.fund_row]
            w[col] = 1.0
            z = z_key.get((p.pair, p.supervisor))
            if z is not None:
                w[z] = 1.0
        w[self.o_at :] = self.overflow_values(w)
        return w

    def overflow_values(self, w: FloatArray) -> FloatArray:
        """The least overflow of each (programme, earmark) that the funding columns of `w` need."""
        pairs, limits = self.prep.pairs, self.prep.tables.limits
        grant = pairs.fund_grant[self.fund_rows] * w[self.y_at : self.o_at]
        out = np.zeros(len(self.overflow), dtype=np.float64)
        prog, mark = pairs.fund_programme[self.fund_rows], pairs.fund_earmark[self.fund_rows]
        for i, (g, k) in enumerate(self.overflow):
            spent = float(grant[(prog == g) & (mark == k)].sum())
            out[i] = max(0.0, spent - float(limits.earmark_left[g][k]))
        return out

    def picks_of(self, w: FloatArray) -> list[Pick]:
        """Picks from integral column values: placed pairs with their supervisor and funding row."""
        prep = self.prep
        chosen = np.flatnonzero(self.pair_values(w) > 0.5)
        sup = np.where(self.single_supervisor >= 0, self.single_supervisor, prep.free_supervisor)
        z = np.flatnonzero(w[self.z_at : self.y_at] > 0.5)
        sup[prep.supervisors.pair[self.sup_rows[z]]] = prep.supervisors.choice[self.sup_rows[z]]
        fund = prep.free_programme.copy()
        y = np.flatnonzero(w[self.y_at : self.o_at] > 0.5)
        fund[prep.pairs.fund_pair[self.fund_rows[y]]] = self.fund_rows[y]
        return [Pick(int(k), int(sup[k]), int(fund[k])) for k in chosen]

    def violation(self, w: FloatArray) -> float:
        """The largest amount by which `w` breaks a row or a column bound."""
        aw = self.a @ w
        rows = max(float(np.max(self.lb - aw, initial=0.0)), float(np.max(aw - self.ub, initial=0.0)))
        cols = max(float(np.max(self.col_lb - w, initial=0.0)), float(np.max(w - self.col_ub, initial=0.0)))
        return max(rows, cols)


def _replace(m: RoundMatrix, **changes: object) -> RoundMatrix:
    fields = {name: getattr(m, name) for name in m.__dataclass_fields__}
    fields.update(changes)
    return RoundMatrix(**fields)


def build_matrix(prep: Prepared) -> RoundMatrix:
    """Every row of the round that can bind, as one CSR matrix built from arrays (no Python object per pair)."""
    pairs, sups = prep.pairs, prep.supervisors
    n = len(pairs)
    fund_rows = np.flatnonzero(prep.free_programme[pairs.fund_pair] < 0)
    x_pairs = np.flatnonzero(prep.free_programme >= 0)
    modelled = np.flatnonzero(prep.free_supervisor[sups.pair] < 0)
    options = np.bincount(sups.pair[modelled], minlength=n)
    single = np.full(n, -1, dtype=np.int64)
    lone = modelled[options[sups.pair[modelled]] == 1]
    single[sups.pair[lone]] = sups.choice[lone]
    sup_rows = modelled[options[sups.pair[modelled]] > 1]
    overflow = [
        (g, k)
        for g, prog in enumerate(prep.instance.programmes)
        if prep.budget_binding[g]
        for k in range(len(prog.earmarks))
    ]
    z_at = len(x_pairs)
    y_at = z_at + len(sup_rows)
    o_at = y_at + len(fund_rows)
    n_cols = o_at + len(overflow)
    placed = sp.csr_array(
        (
            np.ones(len(x_pairs) + len(fund_rows)),
            (
                np.concatenate([x_pairs, pairs.fund_pair[fund_rows]]),
                np.concatenate([np.arange(z_at), y_at + np.arange(len(fund_rows))]),
            ),
        ),
        shape=(n, n_cols),
    )
    by_pair, by_col = _Triplets(), _Triplets()
    _assignment(prep, by_pair, by_col)
    _supervisor_rows(prep, by_pair, by_col, sup_rows, lone, z_at)
    _money(prep, by_pair, by_col, fund_rows, y_at, o_at, overflow)
    _side(prep, by_pair, by_col)
    a = sp.csr_array(by_pair.matrix(n) @ placed + by_col.matrix(n_cols))
    col_ub = np.ones(n_cols)
    col_ub[o_at:] = [float(prep.tables.limits.budget_left(g)) for g, _ in overflow]
    integer = np.ones(n_cols, dtype=bool)
    integer[o_at:] = False
    return RoundMatrix(
        prep=prep,
        a=a,
        lb=by_pair.cat(by_pair.lb, np.float64),
        ub=by_pair.cat(by_pair.ub, np.float64),
        kind=by_pair.cat(by_pair.kind, np.int64),
        owner=by_pair.cat(by_pair.owner, np.int64),
        col_lb=np.zeros(n_cols),
        col_ub=col_ub,
        integer=integer,
        x_pairs=x_pairs,
        sup_rows=sup_rows,
        fund_rows=fund_rows,
        overflow=overflow,
        placed=placed,
        single_supervisor=single,
    )


def _assignment(prep: Prepared, by_pair: _Triplets, by_col: _Triplets) -> None:
    """Each candidate at most once; each offer within its slots (only offers with more pairs than slots)."""
    pairs = prep.pairs
    n_c = len(prep.instance.candidates)
    k = np.arange(len(pairs))
    by_pair.block(pairs.cand, k, np.ones(len(k)), -np.inf, 1.0, "candidate", np.arange(n_c), n_c)
    by_col.skip(n_c)
    slots = prep.tables.offers.slots
    crowded = np.bincount(pairs.offer, minlength=len(slots)) > slots
    row_of = np.cumsum(crowded) - 1
    use = crowded[pairs.offer]
    owners = np.flatnonzero(crowded)
    by_pair.block(
        row_of[pairs.offer[use]], k[use], np.ones(int(use.sum())), -np.inf, slots[owners], "offer", owners, len(owners)
    )
    by_col.skip(len(owners))


def _supervisor_rows(
    prep: Prepared, by_pair: _Triplets, by_col: _Triplets, sup_rows: IntArray, lone: IntArray, z_at: int
) -> None:
    """A pair with several supervisors who can run out takes one (`placed - sum z = 0`); a supervisor's trainees in
    a month stay within the free seats, where more could come than there are seats."""
    sups = prep.supervisors
    owners, row = np.unique(sups.pair[sup_rows], return_inverse=True)
    by_pair.block(
        np.arange(len(owners)), owners, np.ones(len(owners)), 0.0, 0.0, "supervisor_choice", owners, len(owners)
    )
    by_col.block(
        row,
        z_at + np.arange(len(sup_rows)),
        -np.ones(len(sup_rows)),
        0.0,
        0.0,
        "supervisor_choice",
        owners,
        len(owners),
        bounds=False,
    )
    z_col = np.full(len(sups.pair), -1, dtype=np.int64)
    z_col[sup_rows] = z_at + np.arange(len(sup_rows))
    lone_row = np.zeros(len(sups.pair), dtype=bool)
    lone_row[lone] = True
    p_rows: list[IntArray] = []
    p_pairs: list[IntArray] = []
    c_rows: list[IntArray] = []
    c_cols: list[IntArray] = []
    rhs: list[float] = []
    seat_owner: list[int] = []
    for seat in prep.seat_rows:
        on_pair = seat.rows[lone_row[seat.rows]]
        on_z = z_col[seat.rows]
        on_z = on_z[on_z >= 0]
        if len(on_pair) + len(on_z) <= seat.seats:
            continue
        p_rows.append(np.full(len(on_pair), len(rhs)))
        p_pairs.append(sups.pair[on_pair])
        c_rows.append(np.full(len(on_z), len(rhs)))
        c_cols.append(on_z)
        rhs.append(float(max(0, seat.seats)))
        seat_owner.append(seat.supervisor)
    if not rhs:
        return
    flat_p, flat_c = np.concatenate(p_pairs), np.concatenate(c_cols)
    count = len(rhs)
    by_pair.block(
        np.concatenate(p_rows),
        flat_p,
        np.ones(len(flat_p)),
        -np.inf,
        np.array(rhs),
        "seats",
        np.array(seat_owner),
        count,
    )
    by_col.block(
        np.concatenate(c_rows),
        flat_c,
        np.ones(len(flat_c)),
        0.0,
        0.0,
        "seats",
        np.array(seat_owner),
        count,
        bounds=False,
    )


def _money(
    prep: Prepared,
    by_pair: _Triplets,
    by_col: _Triplets,
    fund_rows: IntArray,
    y_at: int,
    o_at: int,
    overflow: list[tuple[int, int]],
) -> None:
    """Budgets (earmarks spent first, the overflow drawing on general money) and (programme, unit) caps."""
    pairs, limits = prep.pairs, prep.tables.limits
    prog = pairs.fund_programme[fund_rows]
    mark = pairs.fund_earmark[fund_rows]
    grant = pairs.fund_grant[fund_rows].astype(np.float64)
    unit = prep.tables.offers.unit[pairs.offer[pairs.fund_pair[fund_rows]]]
    cols = y_at + np.arange(len(fund_rows))
    o_col = {gk: o_at + i for i, gk in enumerate(overflow)}
    rows: list[tuple[IntArray, FloatArray, float, str, int]] = []
    for g in np.flatnonzero(prep.budget_binding).tolist():
        mine = prog == g
        if not mine.any():
            continue
        rows.append((cols[mine], grant[mine], float(limits.budget_left(g)), "budget", g))
        marks = len(limits.earmark_left[g])
        if not marks:
            continue
        plain = mine & (mark < 0)
        over = np.array([o_col[(g, k)] for k in range(marks)], dtype=np.int64)
        general = np.concatenate([grant[plain], np.ones(marks)])
        rows.append((np.concatenate([cols[plain], over]), general, float(limits.general_left[g]), "general", g))
        for k in range(marks):
            drawn = mine & (mark == k)
            # Spending on the earmark beyond what is left of it is overflow: spend(k) - overflow(k) <= left(k).
            spend = np.concatenate([grant[drawn], [-1.0]])
            rows.append(
                (np.concatenate([cols[drawn], [over[k]]]), spend, float(limits.earmark_left[g][k]), "earmark", g)
            )
    binding = prep.unit_cap_binding[prog, unit]
    n_units = max(1, len(prep.instance.units))
    for key in np.unique(prog[binding] * n_units + unit[binding]).tolist():
        at = binding & (prog * n_units + unit == key)
        rows.append((cols[at], grant[at], float(limits.unit_cap_left.reshape(-1)[key]), "unit_cap", key))
    for cols_i, vals, rhs, kind, owner in rows:
        by_pair.block(np.zeros(0), np.zeros(0), np.zeros(0), -np.inf, rhs, kind, np.array([owner]), 1)
        by_col.block(np.zeros(len(cols_i)), cols_i, vals, 0.0, 0.0, kind, np.array([owner]), 1, bounds=False)


def _side(prep: Prepared, by_pair: _Triplets, by_col: _Triplets) -> None:
    """Pins (placed at least once) and the policy's side rows (floors, no blocking pairs)."""
    pins = np.asarray(pinned_pairs(prep), dtype=np.int64)
    by_pair.block(np.arange(len(pins)), pins, np.ones(len(pins)), 1.0, np.inf, "pin", pins, len(pins))
    by_col.skip(len(pins))
    for i, (cols, coef, rhs) in enumerate(side_rows(prep)):
        by_pair.block(np.zeros(len(cols)), cols, coef, float(rhs), np.inf, "side", np.array([i]), 1)
        by_col.skip(1)


def row_kind_counts(m: RoundMatrix) -> dict[str, int]:
    """How many rows of each kind (for logs and benchmarks)."""
    counts = np.bincount(m.kind, minlength=len(ROW_KINDS))
    return {name: int(c) for name, c in zip(ROW_KINDS, counts, strict=True) if c}
