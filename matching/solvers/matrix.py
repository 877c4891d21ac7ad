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

`placed` maps columns to the pair they place. The rows are not written here: they are the rows of the round's one
model (`matching.model.spec`) that can bind, with their labels (kind, owner, detail), multiplied by `lift`, the
sparse map from compact columns to spec columns (a placing column sets its pair's `x`, its `y` and its only
supervisor's `z`). A choice the compact form makes by construction (one programme per pair: a pair's `y` columns
are apart by its candidate row) leaves an empty row, which is dropped; pins (the spec's lower bounds on `x`) become
rows. National rounds have about 15,600 rows here against about 150,000 in the spec, which is what makes the LP
fast enough to repeat; `to_spec` maps a compact solution back, and the tests check both forms accept the same ones.

A sub-model keeps some columns and moves the others to the right-hand side at their values
(`matching.solvers.lns.sub_model`): that is a neighbourhood or an independent part; a column-generation master keeps
some columns at zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from matching.model.spec import CANDIDATE, FUNDING_CHOICE, KINDS, Spec, build_spec, objective_tiers
from matching.rules.prepare import Prepared
from matching.rules.tables import BoolArray, FloatArray, IntArray
from matching.solvers.greedy import Pick

# The spec's kinds of row (same indexes), then the rows only the compact form has: a pinned pair placed, and a tier
# held at its value.
ROW_KINDS = (*KINDS, "pin", "held")
KIND = {name: i for i, name in enumerate(ROW_KINDS)}


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
    lift: sp.csr_array  # spec columns x compact columns: the spec's column values of compact ones (`to_spec`)
    detail: IntArray  # per row, the spec's detail (month, earmark, unit), -1 where there is none

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
            detail=np.concatenate([self.detail, np.full(len(rows), -1)]),
        )

    def columns_of(self, picks: list[Pick]) -> FloatArray:
        """The column values of a set of picks (overflow at the least it needs)."""
        w = np.zeros(self.n_cols, dtype=np.float64)
        if not picks:
            return w
        pair = np.array([p.pair for p in picks], dtype=np.int64)
        fund = np.array([p.fund_row for p in picks], dtype=np.int64)
        sup = np.array([p.supervisor for p in picks], dtype=np.int64)
        x_col = np.full(self.n_pairs, -1, dtype=np.int64)
        x_col[self.x_pairs] = np.arange(len(self.x_pairs))
        y_col = np.full(len(self.prep.pairs.fund_pair), -1, dtype=np.int64)
        y_col[self.fund_rows] = self.y_at + np.arange(len(self.fund_rows))
        w[np.where(x_col[pair] >= 0, x_col[pair], y_col[np.maximum(fund, 0)])] = 1.0
        # z columns by (pair, supervisor), sorted as the option rows are (by pair, then supervisor).
        sups = self.prep.supervisors
        width = max(1, len(self.prep.instance.supervisors))
        keys = sups.pair[self.sup_rows] * width + sups.choice[self.sup_rows]
        wanted = pair * width + sup
        at = np.minimum(np.searchsorted(keys, wanted), max(0, len(keys) - 1))
        hit = (keys[at] == wanted) if len(keys) else np.zeros(len(pair), dtype=bool)
        w[self.z_at + at[hit]] = 1.0
        w[self.o_at :] = self.overflow_values(w)
        return w

    def to_spec(self, w: FloatArray) -> FloatArray:
        """The spec's column values (`x`, the `z` and `y` the compact columns carry, overflow) of compact ones."""
        return np.asarray(self.lift @ w, dtype=np.float64)

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


def build_matrix(prep: Prepared, spec: Spec | None = None) -> RoundMatrix:
    """The rows of the round's spec that can bind, in the compact columns: `spec.rows` times the matrix that lifts
    compact columns to spec columns (`lift`), with empty rows dropped and redundant lower sides relaxed; pins (the
    spec's column bounds on `x`) become rows. Built from arrays (no Python object per pair)."""
    spec = spec if spec is not None else build_spec(prep, objective_tiers(prep))
    pairs, sups = prep.pairs, prep.supervisors
    n = len(pairs)
    fund_rows = np.flatnonzero(prep.free_programme[pairs.fund_pair] < 0)
    x_pairs = np.flatnonzero(prep.free_programme >= 0)
    modelled = np.flatnonzero(prep.free_supervisor[sups.pair] < 0)
    options = np.bincount(sups.pair[modelled], minlength=n)
    lone = modelled[options[sups.pair[modelled]] == 1]
    lone_of_pair = np.full(n, -1, dtype=np.int64)
    lone_of_pair[sups.pair[lone]] = lone
    single = np.full(n, -1, dtype=np.int64)
    single[sups.pair[lone]] = sups.choice[lone]
    sup_rows = modelled[options[sups.pair[modelled]] > 1]
    marks = [i for i, (g, _) in enumerate(spec.marks) if prep.budget_binding[g]]
    overflow = [spec.marks[i] for i in marks]
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
    lift = _lift(spec, placed, lone_of_pair, sup_rows, fund_rows, marks, (z_at, y_at, o_at, n_cols))
    col_lb = np.zeros(n_cols)
    col_ub = np.ones(n_cols)
    col_ub[o_at:] = spec.var_ub[spec.over_at + np.array(marks, dtype=np.int64)]
    a, lb, ub, kind, owner, detail = _compact_rows(spec, lift, placed, col_ub)
    integer = np.ones(n_cols, dtype=bool)
    integer[o_at:] = False
    return RoundMatrix(
        prep=prep,
        a=a,
        lb=lb,
        ub=ub,
        kind=kind,
        owner=owner,
        col_lb=col_lb,
        col_ub=col_ub,
        integer=integer,
        x_pairs=x_pairs,
        sup_rows=sup_rows,
        fund_rows=fund_rows,
        overflow=overflow,
        placed=placed,
        single_supervisor=single,
        lift=lift,
        detail=detail,
    )


def _lift(
    spec: Spec,
    placed: sp.csr_array,
    lone_of_pair: IntArray,
    sup_rows: IntArray,
    fund_rows: IntArray,
    marks: list[int],
    at: tuple[int, int, int, int],
) -> sp.csr_array:
    """Spec columns x compact columns: a column that places a pair sets the pair's `x`, its funding row's `y` (a
    `y` column) and its only supervisor that can run out (`z`); a `z` or overflow column is its spec column."""
    z_at, y_at, o_at, n_cols = at
    placing = sp.coo_array(placed)
    col, pair = placing.col.astype(np.int64), placing.row.astype(np.int64)
    lone = lone_of_pair[pair]
    is_y = col >= y_at
    rows = [pair, spec.sup_at + lone[lone >= 0], spec.fund_at + fund_rows[col[is_y] - y_at]]
    cols = [col, col[lone >= 0], col[is_y]]
    rows += [spec.sup_at + sup_rows, spec.over_at + np.array(marks, dtype=np.int64)]
    cols += [z_at + np.arange(len(sup_rows)), o_at + np.arange(len(marks))]
    row, column = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_array((np.ones(len(row)), (row, column)), shape=(spec.n_vars, n_cols))


def _compact_rows(
    spec: Spec, lift: sp.csr_array, placed: sp.csr_array, col_ub: FloatArray
) -> tuple[sp.csr_array, FloatArray, FloatArray, IntArray, IntArray, IntArray]:
    """The spec's rows that can bind (and every candidate row: with `x` gone, only it keeps a pair's funding columns
    apart) over the compact columns, plus a row per pinned pair."""
    rows = spec.rows
    keep = (rows.binding | (rows.kind == KINDS.index(CANDIDATE))) & (rows.kind != KINDS.index(FUNDING_CHOICE))
    a = _product(rows.matrix, np.flatnonzero(keep), lift)
    lb, ub = rows.lb[keep], rows.ub[keep]
    # A row the compact columns leave empty (a choice the compact form makes by construction) is dropped.
    full = (np.diff(a.indptr) > 0) | (lb > 0) | (ub < 0)
    a = sp.csr_array(a[full])
    lb, ub = lb[full], ub[full]
    kind = rows.kind[keep][full].astype(np.int64)
    owner, detail = rows.owner[keep][full], rows.detail[keep][full]
    pins = np.flatnonzero(spec.var_lb[: spec.n_pairs] > 0)
    if len(pins):
        a = sp.csr_array(sp.vstack([a, placed[pins]], format="csr"))
        lb = np.concatenate([lb, np.ones(len(pins))])
        ub = np.concatenate([ub, np.full(len(pins), np.inf)])
        kind = np.concatenate([kind, np.full(len(pins), KIND["pin"])])
        owner = np.concatenate([owner, pins])
        detail = np.concatenate([detail, np.full(len(pins), -1)])
    # A lower side that no column values within bounds can break is left out (rows of non-negative entries).
    lowest = a.minimum(0) @ col_ub
    lb = np.where(lowest >= lb, -np.inf, lb)
    first = _distinct_rows(a, lb, ub)
    a = sp.csr_array(a[first])
    return (
        a,
        lb[first].astype(np.float64),
        ub[first].astype(np.float64),
        kind[first],
        owner[first].astype(np.int64),
        detail[first].astype(np.int64),
    )


PRODUCT_ROWS = 1_000_000  # spec rows multiplied at a time (bounds the peak memory of a stress-scale round)


def _product(matrix: sp.csr_matrix, rows: IntArray, lift: sp.csr_array) -> sp.csr_array:
    """`matrix[rows] @ lift` without explicit zeros, a block of rows at a time."""
    blocks = []
    for start in range(0, max(1, len(rows)), PRODUCT_ROWS):
        block = sp.csr_array(sp.csr_array(matrix[rows[start : start + PRODUCT_ROWS]]) @ lift)
        block.eliminate_zeros()
        blocks.append(block)
    return sp.csr_array(sp.vstack(blocks, format="csr")) if len(blocks) > 1 else blocks[0]


def _distinct_rows(a: sp.csr_array, lb: FloatArray, ub: FloatArray) -> IntArray:
    """Indexes of the first of each set of rows with the same entries, their bounds tightened to the set's tightest
    (`lb` and `ub` are changed in place). A programme without earmarks has a general-money row equal to its budget
    row, for example; a repeated row only makes the LP degenerate."""
    if not a.shape[0]:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(0)
    width = a.shape[1]
    # Two random projections of each row's entries: rows with equal entries have equal keys (and only those, but for
    # a chance of about 1e-30).
    keys = [a @ rng.random(width) for _ in range(2)]
    order = np.lexsort((*keys, np.diff(a.indptr)))
    sorted_keys = np.stack([np.diff(a.indptr)[order], *(k[order] for k in keys)])
    new = np.r_[True, (sorted_keys[:, 1:] != sorted_keys[:, :-1]).any(axis=0)]
    group = np.cumsum(new) - 1
    # The row kept is the one whose upper bound the set takes (the first such): its label (kind, owner) must name
    # the limit the row holds. An offer's slots row that equals its only supervisor's seat row with fewer seats
    # is a seat row: the Lagrangian relaxation keeps offer rows in its flow at their slots and prices seat rows, so
    # a seat limit labelled as an offer would vanish from it.
    by_ub = np.lexsort((np.arange(len(order)), ub[order], group))
    head = order[by_ub[np.r_[True, group[by_ub][1:] != group[by_ub][:-1]]]]
    tight_lb = np.full(len(head), -np.inf)
    tight_ub = np.full(len(head), np.inf)
    np.maximum.at(tight_lb, group, lb[order])
    np.minimum.at(tight_ub, group, ub[order])
    lb[head], ub[head] = tight_lb, tight_ub
    return np.sort(head)


def row_kind_counts(m: RoundMatrix) -> dict[str, int]:
    """How many rows of each kind (for logs and benchmarks)."""
    counts = np.bincount(m.kind, minlength=len(ROW_KINDS))
    return {name: int(c) for name, c in zip(ROW_KINDS, counts, strict=True) if c}
