"""Independent parts of a round: pairs that share no row that can bind.

Two pairs are linked when some row of the model holds both (a candidate, an offer with more pairs than slots, a
supervisor's seats, a programme's money, a side rule). Regional programmes and commute limits often split a national
round into parts that can be solved one by one: the connected components of the rows-and-columns graph.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from matching.rules.tables import IntArray
from matching.solvers.matrix import RoundMatrix


def column_components(m: RoundMatrix) -> tuple[int, IntArray]:
    """The number of independent parts and, per column, the part it belongs to."""
    n_rows, n_cols = m.a.shape
    if not n_cols:
        return 0, np.zeros(0, dtype=np.int64)
    incidence = sp.coo_array(m.a)
    # Bipartite graph: columns 0..n_cols-1, rows after them.
    graph = sp.coo_array(
        (np.ones(len(incidence.row)), (incidence.col, n_cols + incidence.row)), shape=(n_cols + n_rows,) * 2
    )
    _count, label = connected_components(graph, directed=False)
    col_label = label[:n_cols]
    # Renumber the parts that hold columns 0..k-1 (rows without columns make parts of their own).
    parts, col_label = np.unique(col_label, return_inverse=True)
    return len(parts), col_label.astype(np.int64)


def pair_components(m: RoundMatrix) -> tuple[int, IntArray]:
    """Per pair, its independent part (every column of a pair is in the same part)."""
    count, label = column_components(m)
    pair_label = np.zeros(m.n_pairs, dtype=np.int64)
    col_pair = m.column_pair
    has = col_pair >= 0
    pair_label[col_pair[has]] = label[has]
    return count, pair_label
