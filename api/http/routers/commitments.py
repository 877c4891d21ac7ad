"""Commitments and the region's books: accepted placements, their follow-up, the books of the programme year with
their export, the pipeline outlook, and the export of a round's proposals."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import select

from api.core import books, commitments, rounds, tabular
from api.core.errors import NotFound
from api.core.schemas import Page
from api.core.services import page_of, region_for
from api.http.deps import CoordinatorOrAdmin, Offset, RowId, SessionDep, SubjectDep
from api.http.errors import problem_responses
from matching.input import instance as engine
from matching.reports.outlook import Outlook, outlook
from models import Commitment, Programme, Proposal, Region, Unit
from models import queries as q

router = APIRouter(prefix="/regions/{region}", tags=["commitments"])
ERRORS = problem_responses(400, 401, 403, 404, 409, 422)
Format = Annotated[str, Query(pattern="^(csv|xlsx)$", description="csv (one table) or xlsx (every table)")]
Lang = Annotated[str, Query(pattern="^(sv|en)$", description="column names: Swedish (sv) or the API's fields (en)")]


class CommitmentRead(BaseModel):
    """An accepted placement: what it was granted, what it still holds and what follow-up recorded."""

    id: int
    round_id: int
    proposal_id: int
    candidate_id: str
    unit_id: str
    offer_id: str
    supervisor_id: str
    programme_id: str
    earmark_id: str | None
    start: date
    months: int
    total_cost: int
    grant: int
    unit_share: int
    status: str
    last_month: date | None
    paid: int | None
    held: int
    held_months: int
    released: int
    note: str | None  # the coordinator's follow-up note; null for clinic users (not theirs to read)
    version: int
    created_at: Any
    updated_at: Any


class Totals(BaseModel):
    """Money of the books (per programme, or summed over the region's programmes)."""

    budget: int
    granted: int
    committed: int
    paid: int
    outstanding: int
    released: int
    left: int
    to_spend: int


class ProgrammeBook(Totals):
    """One programme's book."""

    programme_id: str
    name: str
    status: str
    spend_by: date
    latest_start: date | None
    warning_kind: str | None
    warning: str | None
    placements: int


class EarmarkBook(BaseModel):
    """An earmark: what commitments drew on it and what spilled into general money."""

    programme_id: str
    earmark_id: str
    amount: int
    committed: int
    drawn: int
    overflow: int
    left: int


class UnitBook(BaseModel):
    """What a programme has committed to one unit, against the cap for its size class."""

    programme_id: str
    unit_id: str
    size_class: str | None
    cap: int | None
    committed: int
    left: int | None


class MonthBook(BaseModel):
    """Money committed to a month (each placement's held money spread over its months)."""

    programme_id: str
    month: str
    planned: int
    cumulative: int


class Books(BaseModel):
    """The region's books."""

    region: str
    as_of: date
    programmes: list[ProgrammeBook]
    earmarks: list[EarmarkBook]
    units: list[UnitBook]
    months: list[MonthBook]
    totals: Totals


def _engine_objects(session: Any, table: Any, model: type[Any], region_id: int) -> list[Any]:
    rows = session.scalars(select(table).where(table.region_id == region_id).order_by(table.id))
    return [model.model_validate({"id": row.ref, **row.data}) for row in rows]


def _books(session: Any, reg: Region, as_of: date | None) -> dict[str, Any]:
    entries = []
    for row in commitments.region_commitments(session, reg.id):
        money, months = commitments.held(row)
        entries.append(
            books.Entry(row.programme_ref, row.earmark_ref, row.unit_ref, row.start, row.grant, money, months, row.paid)
        )
    result = books.region_books(
        _engine_objects(session, Programme, engine.Programme, reg.id),
        _engine_objects(session, Unit, engine.Unit, reg.id),
        entries,
        as_of or date.today(),
    )
    return {"region": reg.code, **result}


@router.get("/commitments", response_model=Page[CommitmentRead], responses=ERRORS)
def list_commitments(
    region: str,
    session: SessionDep,
    subject: SubjectDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
    status: Annotated[str | None, Query(pattern="^(accepted|started|completed|interrupted|not_started)$")] = None,
    programme: Annotated[str | None, Query(max_length=64)] = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    """Accepted placements of the region (a clinic sees its own unit's), oldest first."""
    reg = region_for(session, subject, region)
    statement = q.commitments_readable_by(subject).where(Commitment.region_id == reg.id)
    for column, value in (
        (Commitment.status, status),
        (Commitment.programme_ref, programme),
        (Commitment.unit_ref, unit),
    ):
        if value is not None:
            statement = statement.where(column == value)
    return page_of(session, statement, Commitment.id, limit, offset, commitments.view_for(subject))


@router.get("/commitments/{commitment_id}", response_model=CommitmentRead, responses=ERRORS)
def get_commitment(region: str, commitment_id: RowId, session: SessionDep, subject: SubjectDep) -> Any:
    """One accepted placement with what it holds."""
    reg = region_for(session, subject, region)
    row = session.scalar(
        q.commitments_readable_by(subject).where(Commitment.id == commitment_id, Commitment.region_id == reg.id)
    )
    if row is None:
        raise NotFound(f"commitment {commitment_id} not found in region {reg.code}")
    return commitments.view_for(subject)(row)


@router.post("/commitments/{commitment_id}/follow-up", response_model=CommitmentRead, responses=ERRORS)
def follow_up(
    region: str, commitment_id: RowId, body: commitments.FollowUp, session: SessionDep, subject: CoordinatorOrAdmin
) -> Any:
    """Record what happened: started, completed, interrupted (with the last month) or not started, and the amount
    paid. Money and supervisor months released go back to later rounds at once."""
    reg = region_for(session, subject, region)
    return commitments.view(commitments.follow_up(session, subject, reg, commitment_id, body))


@router.get("/books", response_model=Books, responses=ERRORS)
def get_books(
    region: str,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    as_of: Annotated[date | None, Query(description="the date warnings are judged at (default: today)")] = None,
) -> Any:
    """The region's books: per programme, earmark, unit and month the budget, committed, paid, released and left,
    and what must still be spent by the spend-by date (with a warning when it cannot be in time)."""
    return _books(session, region_for(session, subject, region), as_of)


@router.get("/books/export", response_class=Response, responses={200: tabular.DOWNLOAD_RESPONSE, **ERRORS})
def export_books(
    region: str,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    format: Format = "xlsx",
    table: Annotated[str, Query(pattern="^(programmes|earmarks|units|months)$", description="CSV: which table")] = (
        "programmes"
    ),
    lang: Lang = "sv",
    as_of: Annotated[date | None, Query()] = None,
) -> Response:
    """The books for a finance officer: XLSX with a sheet per table, or one table as CSV; amounts as numbers."""
    reg = region_for(session, subject, region)
    result = _books(session, reg, as_of)
    order = [table, *(t for t in books.SHEET_NAMES if t != table)]
    sheets = {
        (books.SHEET_NAMES[t] if lang == "sv" else t): books.table_rows(result, t, lang)
        for t in (order if format == "csv" else books.SHEET_NAMES)
    }
    return tabular.download(sheets, f"books-{reg.code}", format)


@router.get("/outlook", response_model=Outlook, responses=ERRORS)
def get_outlook(
    region: str,
    session: SessionDep,
    subject: CoordinatorOrAdmin,
    start: Annotated[date | None, Query(description="first month (default: this month)")] = None,
    months: Annotated[int, Query(ge=1, le=36)] = 12,
) -> Any:
    """Per profession and month: candidates who will be ready, free slots, supervisor seats and money left, and the
    shortfall or surplus of places. A forecast from stored data, not a solve."""
    reg = region_for(session, subject, region)
    first = start or date.today()
    return outlook(rounds.region_instance(session, reg, first), first, months)


ROUND_COLUMNS = {
    "candidate_ref": "Kandidat",
    "unit_ref": "Enhet",
    "offer_ref": "Erbjudande",
    "supervisor_ref": "Handledare",
    "programme_ref": "Program",
    "earmark_ref": "Öronmärkning",
    "start": "Start",
    "months": "Månader",
    "total_cost": "Total kostnad",
    "grant": "Bidrag",
    "unit_share": "Enhetens andel",
    "score": "Poäng",
    "answer": "Svar",
}


@router.get(
    "/rounds/{round_id}/proposals/export",
    response_class=Response,
    responses={200: tabular.DOWNLOAD_RESPONSE, **ERRORS},
)
def export_proposals(
    region: str, round_id: RowId, session: SessionDep, subject: SubjectDep, format: Format = "xlsx", lang: Lang = "sv"
) -> Response:
    """Every proposal of the round you may see (a clinic: its unit's, once published) with unit, offer, supervisor,
    programme, earmark, months, total cost, grant, the unit's share and the answer. No identities."""
    reg = region_for(session, subject, region)
    row = rounds.get_round(session, subject, reg, round_id)
    statement = q.proposals_readable_by(subject).where(Proposal.round_id == row.id)
    units = {u.id: u.ref for u in session.scalars(select(Unit).where(Unit.region_id == reg.id))}
    rows = []
    for p in session.scalars(statement.order_by(Proposal.id)):
        values = {name: getattr(p, name, None) for name in ROUND_COLUMNS}
        values["unit_ref"] = units.get(p.unit_id)
        rows.append({(ROUND_COLUMNS[k] if lang == "sv" else k.removesuffix("_ref")): v for k, v in values.items()})
    return tabular.download({"Förslag" if lang == "sv" else "proposals": rows}, f"round-{row.id}", format)
