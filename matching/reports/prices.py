"""Shadow prices from the round's LP relaxation: what one more krona, supervisor seat or slot is worth.

The LP is the round's model (`matching.model.spec`) with integrality dropped. `scipy.optimize.milp` reports no
duals, so it is solved with `scipy.optimize.linprog` (HiGHS), each ranged row written as one or two one-sided
rows. A price is the derivative of the LP optimum (maximised) with respect to the right-hand side of a row. The LP
value is concave in every right-hand side, so a price is at most the gain per unit of a little more and at least
the loss per unit of a little less; the two agree (and the price is exact for small changes) unless the LP is
degenerate at that row.
Extrapolated over a large change, a price over-estimates. Prices of the integer round are not defined; these are
LP estimates, and say so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import Field
from scipy.optimize import Bounds, LinearConstraint, linprog
from scipy.optimize import milp as highs_milp

from matching.model.solution import Out
from matching.model.spec import (
    BUDGET,
    EARMARK,
    GENERAL,
    KINDS,
    OFFER,
    SUPERVISOR,
    UNIT_CAP,
    LinearModel,
    linear_model,
    objective_tiers,
)
from matching.rules.prepare import Prepared
from matching.rules.tables import FloatArray, IntArray

NOISE = 1e-9  # duals smaller than this are floating-point noise
_SLACK = 1e-9  # a row side this close to its activity bound cannot bind

_EFFECTS = {
    "placements": "place about {v} more candidate{s}",
    "waiting": "add about {v} days of waiting time to those placed",
    "score": "raise the total match score by about {v}",
    "weighted": "raise the weighted objective by about {v}",
    "kept": "keep about {v} more earlier proposal{s}",
}


# --- outputs -------------------------------------------------------------------------------------------------------


class ProgrammePrice(Out):
    """What one more krona of a programme's budget (general money, not earmarked) is worth."""

    programme_id: str
    budget: int
    lp_spent: float = Field(description="what the LP optimum grants from the programme, SEK")
    per_krona: float = Field(description="objective gained per krona more budget, for small changes")
    per_100k_sek: float = Field(description="per_krona x 100,000: at most what 100,000 SEK more gains")
    binding: bool = Field(description="the LP prices the budget: more money would raise the objective")


class EarmarkPrice(Out):
    """What an earmark's money is worth."""

    programme_id: str
    earmark_id: str
    amount: int
    per_krona: float = Field(description="objective gained per krona added to the budget and earmarked")
    moved_per_krona: float = Field(
        description="objective gained per krona moved from general money into the earmark (budget unchanged; "
        "negative: the general money is worth more)"
    )


class CapPrice(Out):
    """What one more krona of a programme's cap at one unit is worth."""

    programme_id: str
    unit_id: str
    cap: int
    per_krona: float


class SeatPrice(Out):
    """What one more concurrent seat of a supervisor (in every month) is worth."""

    supervisor_id: str
    unit_id: str
    capacity: int
    per_seat: float = Field(description="0 for a supervisor without seats: their stays are not in the model")


class UnitSeatPrice(Out):
    """A unit's most valuable extra supervisor seat."""

    unit_id: str
    supervisor_id: str
    per_seat: float


class SlotPrice(Out):
    """What one more slot at an offer is worth."""

    offer_id: str
    slots: int
    per_slot: float


class Prices(Out):
    """Shadow prices of one objective over the LP relaxation, in units of that objective (placements: candidates
    placed). A price is exact for a small change where the LP is not degenerate; in general it is at most the gain
    of a little more and at least the loss of a little less."""

    objective: str
    held: list[str] = Field(default=[], description="earlier objectives kept at their LP optimum")
    lp_value: float
    programmes: list[ProgrammePrice] = Field(default=[], description="every programme")
    earmarks: list[EarmarkPrice] = Field(default=[], description="every earmark")
    unit_caps: list[CapPrice] = Field(default=[], description="(programme, unit) caps with a nonzero price")
    supervisors: list[SeatPrice] = Field(default=[], description="every supervisor")
    units: list[UnitSeatPrice] = Field(default=[], description="every unit with a supervisor")
    offers: list[SlotPrice] = Field(default=[], description="every offer")


# --- which model row is which --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowMap:
    """Per row of the model: its kind, owner and detail, and its bounds lb <= A x <= ub."""

    # owner: candidate, offer, pair, supervisor, programme, floor or no-blocking row index; detail: the supervisor
    # row's start month, the earmark index or the unit index; -1 where there is none.

    kind: npt.NDArray[np.str_]
    owner: IntArray
    detail: IntArray
    lb: FloatArray
    ub: FloatArray

    def where(self, kind: str, owner: int | None = None, detail: int | None = None) -> IntArray:
        """Indexes of the rows of one kind (and owner, and detail)."""
        mask = self.kind == kind
        if owner is not None:
            mask &= self.owner == owner
        if detail is not None:
            mask &= self.detail == detail
        return np.flatnonzero(mask).astype(np.int64)


def model_rows(model: LinearModel) -> RowMap:
    """The labels of every row of the model (read from the spec, which writes each row once)."""
    rows = model.spec.rows
    return RowMap(
        kind=np.array(KINDS)[rows.kind] if len(rows) else np.zeros(0, dtype=str),
        owner=rows.owner,
        detail=rows.detail,
        lb=rows.lb,
        ub=rows.ub,
    )


# --- the LP and its duals ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Duals:
    value: float
    row: FloatArray  # per model row: d(max objective) / d(rhs of its binding side)
    x: FloatArray


def _activity_range(matrix: sp.csr_array, lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per row, the least and most A x can be within the variable bounds."""
    coo = matrix.tocoo()
    a, r, c = coo.data, coo.row, coo.col
    with np.errstate(invalid="ignore"):
        least = np.where(a > 0, a * lo[c], a * hi[c])
        most = np.where(a > 0, a * hi[c], a * lo[c])
    least[a == 0] = 0.0
    most[a == 0] = 0.0
    n = matrix.shape[0]
    low = np.bincount(r, weights=least, minlength=n).astype(np.float64)
    return low, np.bincount(r, weights=most, minlength=n).astype(np.float64)


def _solve_duals(model: LinearModel, values: IntArray, time_limit: float) -> _Duals | None:
    """Solve the LP with linprog and map its marginals back to one dual per model row."""
    rows = model.rows.constraint()
    matrix = sp.csr_array(rows.A)
    lb, ub = np.asarray(rows.lb, dtype=np.float64), np.asarray(rows.ub, dtype=np.float64)
    least, most = _activity_range(matrix, model.var_lb, model.var_ub)
    eq = lb == ub
    # A side that the variable bounds already imply can never bind; leaving it out keeps degenerate duals off it
    # (its price is 0: more room there is worth nothing).
    upper = np.flatnonzero(~eq & np.isfinite(ub) & ~(ub >= most - _SLACK))
    lower = np.flatnonzero(~eq & np.isfinite(lb) & ~(lb <= least + _SLACK))
    equal = np.flatnonzero(eq)
    a_ub = sp.vstack([matrix[upper], -matrix[lower]], format="csr") if len(upper) + len(lower) else None
    b_ub = np.concatenate([ub[upper], -lb[lower]]) if a_ub is not None else None
    res = linprog(
        model.objective(values),
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=matrix[equal] if len(equal) else None,
        b_eq=lb[equal] if len(equal) else None,
        bounds=np.column_stack([model.var_lb, model.var_ub]),
        method="highs",
        options={"time_limit": max(0.05, time_limit), "disp": False},
    )
    if int(res.status) != 0 or res.x is None:
        return None
    # linprog minimises -values and reports d(min)/d(b): the maximum moves the other way. A lower side was written
    # as -A x <= -lb, so its sign flips twice.
    dual = np.zeros(len(lb), dtype=np.float64)
    ineq = np.asarray(res.ineqlin.marginals, dtype=np.float64) if a_ub is not None else np.zeros(0)
    dual[upper] -= ineq[: len(upper)]
    dual[lower] += ineq[len(upper) :]
    if len(equal):
        dual[equal] = -np.asarray(res.eqlin.marginals, dtype=np.float64)
    dual[np.abs(dual) < NOISE] = 0.0
    return _Duals(value=-float(res.fun), row=dual, x=np.asarray(res.x, dtype=np.float64))


def _clean(v: float) -> float:
    return 0.0 if abs(v) < NOISE else float(v)


# --- public API ----------------------------------------------------------------------------------------------------


def shadow_prices(
    prep: Prepared,
    values: IntArray | None = None,
    *,
    at_least: tuple[tuple[IntArray, int], ...] = (),
    objective: str = "placements",
    time_limit: float = 30.0,
    held: tuple[str, ...] = (),
) -> Prices | None:
    """Shadow prices of budgets, earmarks, unit caps, supervisor seats and slots for maximising `values` (default:
    one per pair, i.e. placements) over the LP relaxation, each (tier values, total) of `at_least` kept at or above
    its total (`held` names them in the result); None when HiGHS does not finish in time or the LP is infeasible."""
    pair_values = np.ones(len(prep.pairs), dtype=np.int64) if values is None else np.asarray(values, dtype=np.int64)
    model = linear_model(prep)
    rowmap = model_rows(model)
    if not len(prep.pairs):
        zero = _Duals(0.0, np.zeros(len(rowmap.kind)), np.zeros(0))
        return _prices(prep, rowmap, zero, None, objective, held)
    for tier_values, total in at_least:
        # The same holding row as matching.solvers.relaxation.relax.
        model.rows.add(np.arange(len(prep.pairs)), np.asarray(tier_values, dtype=np.float64), total - 0.5, np.inf)
    duals = _solve_duals(model, pair_values, time_limit)
    if duals is None:
        return None
    return _prices(prep, rowmap, duals, model, objective, held)


def _prices(
    prep: Prepared, rowmap: RowMap, duals: _Duals, model: LinearModel | None, objective: str, held: tuple[str, ...]
) -> Prices:
    inst = prep.instance
    dual = duals.row[: len(rowmap.kind)]
    programmes, earmarks, caps = _money_prices(prep, rowmap, dual, _spent(prep, duals, model))
    seat = np.zeros(len(inst.supervisors))
    sup_rows = rowmap.where(SUPERVISOR)
    np.add.at(seat, rowmap.owner[sup_rows], dual[sup_rows])
    supervisors = [
        SeatPrice(supervisor_id=s.id, unit_id=s.unit_id, capacity=s.capacity, per_seat=_clean(float(seat[i])))
        for i, s in enumerate(inst.supervisors)
    ]
    slot = dual[rowmap.where(OFFER)]
    offers = [
        SlotPrice(offer_id=o.id, slots=o.slots, per_slot=_clean(float(slot[i]))) for i, o in enumerate(inst.offers)
    ]
    return Prices(
        objective=objective,
        held=list(held),
        lp_value=duals.value,
        programmes=programmes,
        earmarks=earmarks,
        unit_caps=caps,
        supervisors=supervisors,
        units=_best_seats(supervisors),
        offers=offers,
    )


def _spent(prep: Prepared, duals: _Duals, model: LinearModel | None) -> FloatArray:
    """Per programme, what the LP optimum grants."""
    pairs = prep.pairs
    spent = np.zeros(len(prep.instance.programmes), dtype=np.float64)
    if model is not None:
        y = duals.x[model.fund_at : model.fund_at + len(pairs.fund_pair)]
        np.add.at(spent, pairs.fund_programme, y * pairs.fund_grant)
    return spent


def _money_prices(
    prep: Prepared, rowmap: RowMap, dual: FloatArray, spent: FloatArray
) -> tuple[list[ProgrammePrice], list[EarmarkPrice], list[CapPrice]]:
    inst = prep.instance
    money = np.flatnonzero(np.isin(rowmap.kind, [BUDGET, GENERAL, EARMARK, UNIT_CAP]))
    row = {(str(rowmap.kind[i]), int(rowmap.owner[i]), int(rowmap.detail[i])): int(i) for i in money}

    def price(kind: str, g: int, detail: int = -1) -> float:
        """The row's dual; 0 where the row is not written (a programme that can pay no pair)."""
        i = row.get((kind, g, detail))
        return 0.0 if i is None else float(dual[i])

    programmes, earmarks, caps = [], [], []
    for g, prog in enumerate(inst.programmes):
        # One more krona of budget raises the total row and the general-money row alike.
        budget_dual, general_dual = price(BUDGET, g), price(GENERAL, g)
        per_krona = _clean(budget_dual + general_dual)
        programmes.append(
            ProgrammePrice(
                programme_id=prog.id,
                budget=prog.budget,
                lp_spent=round(float(spent[g]), 2),
                per_krona=per_krona,
                per_100k_sek=_clean(per_krona * 100_000),
                binding=per_krona > 0,
            )
        )
        for k, earmark in enumerate(prog.earmarks):
            # The earmark row is overflow - spend >= -amount: a larger amount lowers its lower side.
            loosen = -price(EARMARK, g, k)
            earmarks.append(
                EarmarkPrice(
                    programme_id=prog.id,
                    earmark_id=earmark.id,
                    amount=earmark.amount,
                    per_krona=_clean(budget_dual + loosen),
                    moved_per_krona=_clean(loosen - general_dual),
                )
            )
        for u, unit in enumerate(inst.units):
            per_krona = _clean(price(UNIT_CAP, g, u))
            if per_krona != 0:
                cap = prog.unit_caps.for_size(unit.size_class)
                assert cap is not None
                caps.append(CapPrice(programme_id=prog.id, unit_id=unit.id, cap=cap, per_krona=per_krona))
    return programmes, earmarks, caps


def _best_seats(supervisors: list[SeatPrice]) -> list[UnitSeatPrice]:
    """Per unit with supervisors, its supervisor whose extra seat is worth most (the first listed on ties)."""
    best: dict[str, SeatPrice] = {}
    for s in supervisors:
        if s.unit_id not in best or s.per_seat > best[s.unit_id].per_seat:
            best[s.unit_id] = s
    return [UnitSeatPrice(unit_id=u, supervisor_id=s.supervisor_id, per_seat=s.per_seat) for u, s in best.items()]


def round_prices(prep: Prepared, time_limit: float = 30.0) -> list[Prices]:
    """Shadow prices of every objective tier of the round (`objective_tiers`), each later tier with
    the earlier ones held at their LP optimum (rounded down); stops at the first tier HiGHS does not finish."""
    deadline = time.monotonic() + time_limit
    out: list[Prices] = []
    held: tuple[tuple[IntArray, int], ...] = ()
    for name, values in objective_tiers(prep):
        prices = shadow_prices(
            prep,
            values,
            at_least=held,
            objective=name,
            time_limit=max(0.05, deadline - time.monotonic()),
            held=tuple(p.objective for p in out),
        )
        if prices is None:
            break
        out.append(prices)
        held = (*held, (values, math.floor(prices.lp_value + 1e-6)))
    return out


# --- plain language ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """One more unit of a resource: 100,000 SEK of a budget, earmark or cap, one supervisor seat or one slot."""

    rate: float  # the price times the step: what the step is worth at most
    subject: str
    kind: str  # programme, earmark, cap, seat or slot
    key: tuple[str, ...]  # the ids that name the resource
    size: float


def _steps(p: Prices) -> list[_Step]:
    """The positive prices of `p` as steps, largest first."""
    per = 100_000
    steps = [
        _Step(g.per_krona * per, f"Programme {g.programme_id}: 100,000 SEK more", "programme", (g.programme_id,), per)
        for g in p.programmes
    ]
    steps += [
        _Step(
            e.per_krona * per,
            f"Programme {e.programme_id}, earmark {e.earmark_id}: 100,000 SEK more",
            "earmark",
            (e.programme_id, e.earmark_id),
            per,
        )
        for e in p.earmarks
    ]
    steps += [
        _Step(
            c.per_krona * per,
            f"Programme {c.programme_id}'s cap at unit {c.unit_id}: 100,000 SEK more",
            "cap",
            (c.programme_id, c.unit_id),
            per,
        )
        for c in p.unit_caps
    ]
    steps += [
        _Step(
            u.per_seat, f"Unit {u.unit_id}: one more supervisor seat ({u.supervisor_id})", "seat", (u.supervisor_id,), 1
        )
        for u in p.units
    ]
    steps += [_Step(o.per_slot, f"Offer {o.offer_id}: one more slot", "slot", (o.offer_id,), 1) for o in p.offers]
    return sorted((s for s in steps if s.rate > NOISE), key=lambda s: (-s.rate, s.subject))


def _about(v: float) -> str:
    """A rounded number for a sentence: 12,345 / 2.5 / 1 / 0.7 / 0.046."""
    if v >= 9.95:
        return f"{round(v):,}"
    if v >= 0.095:
        text = f"{v:.1f}"
        return text[:-2] if text.endswith(".0") else text
    return f"{v:.2g}"


def _sentence(p: Prices, subject: str, v: float, checked: bool) -> str:
    number = _about(v)
    template = _EFFECTS.get(p.objective, "raise the objective " + p.objective + " by about {v}")
    effect = template.format(v=number, s="" if number == "1" else "s")
    # An unchecked price extrapolates the marginal rate, which by concavity is the most the step can give.
    verb = "would" if checked else "could"
    effect = effect if checked else effect.replace("about", "up to about", 1)
    kept = f"{' and '.join(p.held)} kept; " if p.held else ""
    return f"{subject} {verb} {effect} ({kept}LP estimate)"


class _Resolver:
    """The LP of one Prices object, re-solved with one resource raised by one step."""

    def __init__(self, prep: Prepared, tiers: dict[str, IntArray], levels: dict[str, int], p: Prices) -> None:
        self.prep, self.values, self.base = prep, tiers[p.objective], p.lp_value
        self.model = linear_model(prep)
        self.rows = model_rows(self.model)
        for name in p.held:
            # The same holding rows as round_prices.
            self.model.rows.add(np.arange(len(prep.pairs)), tiers[name].astype(np.float64), levels[name] - 0.5, np.inf)
        self.deadline = math.inf

    def _value(self, lb: FloatArray, ub: FloatArray) -> float:
        matrix = self.model.rows.constraint().A
        res = highs_milp(
            self.model.objective(self.values),
            integrality=np.zeros(self.model.n_vars),
            bounds=Bounds(self.model.var_lb, self.model.var_ub),
            constraints=LinearConstraint(matrix, lb, ub),
            options={"time_limit": max(0.05, self.deadline - time.monotonic()), "disp": False},
        )
        return -float(res.fun) if int(res.status) == 0 else math.nan

    def _rows(self, kind: str, owner: int, detail: int = -1) -> IntArray:
        rows = self.rows.where(kind)
        rows = rows[self.rows.owner[rows] == owner]
        return np.asarray(rows[self.rows.detail[rows] == detail] if detail >= 0 else rows, dtype=np.int64)

    def gain(self, step: _Step) -> float:
        """The LP's gain from the step (nan when HiGHS does not finish)."""
        inst, t = self.prep.instance, self.prep.tables
        lb, ub = np.array(self.model.rows.lb), np.array(self.model.rows.ub)
        g = next((i for i, q in enumerate(inst.programmes) if q.id == step.key[0]), -1)
        if step.kind == "programme":
            ub[self._rows(BUDGET, g)] += step.size
            ub[self._rows(GENERAL, g)] += step.size
        elif step.kind == "earmark":
            k = next(i for i, e in enumerate(inst.programmes[g].earmarks) if e.id == step.key[1])
            ub[self._rows(BUDGET, g)] += step.size
            lb[self._rows(EARMARK, g, k)] -= step.size
        elif step.kind == "cap":
            ub[self._rows(UNIT_CAP, g, next(i for i, u in enumerate(inst.units) if u.id == step.key[1]))] += step.size
        elif step.kind == "seat":
            ub[self._rows(SUPERVISOR, t.supervisor_index[step.key[0]])] += step.size
        else:
            ub[self._rows(OFFER, t.offers.index[step.key[0]])] += step.size
        return self._value(lb, ub) - self.base


def plain_prices(
    prices: list[Prices], top: int = 5, *, prep: Prepared | None = None, time_limit: float = 30.0
) -> list[str]:
    """Short sentences for the largest positive prices of each objective, ranked by what one step is worth (100,000
    SEK, one supervisor seat or one slot).

    Without `prep` a sentence extrapolates the price over the step, which is the most the step can give ("could ...
    up to about"). With `prep` (and `prices` from `round_prices(prep)`) the 2 x `top` largest steps of each objective
    are re-solved on the LP within `time_limit` seconds: the sentence then gives the LP's actual gain ("would ...
    about"), and steps that gain nothing are left out. That matters where the LP is degenerate: a full offer whose
    only supervisor is also full prices the seat or the slot, not both, though neither alone places anyone. Steps
    not re-solved in time are told as without `prep`.
    """
    deadline = time.monotonic() + time_limit
    tiers = dict(objective_tiers(prep)) if prep is not None else {}
    levels = {q.objective: math.floor(q.lp_value + 1e-6) for q in prices}
    lines: list[str] = []
    for p in prices:
        steps = _steps(p)
        if prep is None or not len(prep.pairs) or not {p.objective, *p.held} <= tiers.keys():
            lines.extend(_sentence(p, s.subject, s.rate, checked=False) for s in steps[:top])
            continue
        resolver = _Resolver(prep, tiers, levels, p)
        resolver.deadline = deadline
        told: list[tuple[float, str, bool]] = []
        for s in steps[: 2 * top]:
            gain = resolver.gain(s) if time.monotonic() < deadline else math.nan
            if math.isnan(gain):
                told.append((s.rate, s.subject, False))
            elif gain > 1e-6:
                told.append((gain, s.subject, True))
        told.sort(key=lambda t: (-t[0], t[1]))
        lines.extend(_sentence(p, subject, v, checked) for v, subject, checked in told[:top])
    return lines
